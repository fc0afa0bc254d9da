//! Storage behind one interface, with an embedded SQLite default.
//!
//! Why SQLite: it is the most tested embedded database there is, it is
//! transactional and crash-safe (WAL with `synchronous=FULL`: a committed
//! write survives power loss; archive writes alone wait less, see
//! [`SqliteStorage::sync_later`]), it needs no service running, and operators
//! can inspect it with the `sqlite3` tool. `rusqlite` with the `bundled`
//! feature compiles the library in, so a fresh machine needs nothing else.
//! A PostgreSQL backend for clustering will implement the same trait.

use anyhow::{bail, Context, Result};
use rookery_core::sasl::{ScramKeys, StoredCredentials};
use rookery_core::{StorageAnswer, StorageRequest};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

mod archive;
mod documents;
mod offline;
mod roster;

/// An account's address, already prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub domain: String,
}

impl Account {
    /// Parse and prepare `user@domain`.
    pub fn parse(jid: &str) -> Result<Account> {
        let bare = jid::BareJid::new(jid).with_context(|| format!("{jid:?} is not a valid JID"))?;
        let Some(node) = bare.node() else {
            bail!("{jid:?} has no user part (expected user@domain)");
        };
        Ok(Account {
            username: node.as_str().to_owned(),
            domain: bare.domain().as_str().to_owned(),
        })
    }
}

/// What every storage backend provides: the core's queries, plus account
/// administration for the command line.
pub trait Storage: Send {
    fn execute(&mut self, query: &StorageRequest) -> StorageAnswer;
    /// Run queries in order, committed together (one commit for a burst
    /// of writes); the answers in the same order. Each query fails or
    /// succeeds on its own.
    fn execute_all(&mut self, queries: &[StorageRequest]) -> Vec<StorageAnswer> {
        queries.iter().map(|q| self.execute(q)).collect()
    }
    /// A query panicked: undo whatever it left half done.
    fn after_panic(&mut self) {}
    /// Create an account; fails if it exists.
    fn create_account(&mut self, account: &Account, credentials: &StoredCredentials) -> Result<()>;
    /// Replace an account's credentials; fails if it does not exist.
    fn set_credentials(&mut self, account: &Account, credentials: &StoredCredentials)
        -> Result<()>;
    /// Delete an account; fails if it does not exist.
    fn delete_account(&mut self, account: &Account) -> Result<()>;
}

pub struct SqliteStorage {
    db: Connection,
    archives: archive::Archives,
    /// Whether commits do not wait for the disk, as set for the last
    /// group commit ([`SqliteStorage::sync_later`]).
    syncs_later: bool,
}

const SCHEMA_VERSION: i64 = 10;

/// Each step takes the schema one version up, in its own transaction: a
/// database starts at the step after its version.
const MIGRATIONS: [fn(&Connection) -> rusqlite::Result<()>; SCHEMA_VERSION as usize] = [
    create_accounts,
    roster::migrate_to_2,
    offline::migrate_to_3,
    offline::migrate_to_4,
    roster::migrate_to_5,
    documents::migrate_to_6,
    archive::migrate_to_7,
    archive::migrate_to_8,
    roster::migrate_to_9,
    archive::migrate_to_10,
];

/// Schema 1: accounts and their SCRAM keys.
fn create_accounts(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE accounts (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             salt BLOB NOT NULL,
             iterations INTEGER NOT NULL,
             sha1_stored_key BLOB NOT NULL,
             sha1_server_key BLOB NOT NULL,
             sha256_stored_key BLOB NOT NULL,
             sha256_server_key BLOB NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 1;
         COMMIT;",
    )
}

impl SqliteStorage {
    /// Open (creating if needed) `<data_dir>/rookery.sqlite`.
    pub fn open(data_dir: &Path) -> Result<SqliteStorage> {
        crate::files::private_dir(data_dir)?;
        let path = data_dir.join("rookery.sqlite");
        // Owner-only before SQLite opens it: its journal files take the
        // database's mode.
        crate::files::private_file(&path)?;
        let db = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        for journal in ["rookery.sqlite-wal", "rookery.sqlite-shm"] {
            crate::files::restrict_if_present(&data_dir.join(journal))?;
        }
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if !(0..=SCHEMA_VERSION).contains(&version) {
            bail!(
                "{} has schema version {v}, newer than this Rookery knows",
                path.display(),
                v = version
            );
        }
        for step in &MIGRATIONS[version as usize..] {
            step(&db)?;
        }
        let mut storage = SqliteStorage {
            db,
            archives: Default::default(),
            syncs_later: false,
        };
        // Messages a stopped server archived without making their entries.
        storage.index_pending()?;
        Ok(storage)
    }

    fn load_credentials(
        &self,
        username: &str,
        domain: &str,
    ) -> rusqlite::Result<Option<StoredCredentials>> {
        // Cached: every login runs it, and parsing the SQL cost as much as
        // running it.
        self.db
            .prepare_cached(
                "SELECT salt, iterations, sha1_stored_key, sha1_server_key, sha256_stored_key, sha256_server_key
                 FROM accounts WHERE domain = ?1 AND username = ?2",
            )?
            .query_row(params![domain, username], |r| {
                    Ok(StoredCredentials {
                        salt: r.get(0)?,
                        iterations: r.get(1)?,
                        sha1: ScramKeys {
                            stored_key: r.get(2)?,
                            server_key: r.get(3)?,
                        },
                        sha256: ScramKeys {
                            stored_key: r.get(4)?,
                            server_key: r.get(5)?,
                        },
                    })
            })
            .optional()
    }

    fn write(
        &mut self,
        sql: &str,
        account: &Account,
        c: &StoredCredentials,
    ) -> rusqlite::Result<usize> {
        self.db.execute(sql, account_params(account, c))
    }

    /// Create many accounts in one transaction: all of them, or none if
    /// any exists already.
    pub fn create_accounts(&mut self, accounts: &[(Account, StoredCredentials)]) -> Result<()> {
        self.sync_later(false)?;
        let tx = self.db.transaction()?;
        {
            let mut insert = tx.prepare(INSERT)?;
            for (a, c) in accounts {
                match insert.execute(account_params(a, c)) {
                    Ok(_) => {}
                    Err(e) if is_duplicate_key(&e) => {
                        bail!(
                            "{}@{} already exists; no account created",
                            a.username,
                            a.domain
                        )
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The parameters of [`INSERT`] and the credentials update, in their order.
fn account_params<'a>(a: &'a Account, c: &'a StoredCredentials) -> [&'a dyn rusqlite::ToSql; 8] {
    [
        &a.domain,
        &a.username,
        &c.salt,
        &c.iterations,
        &c.sha1.stored_key,
        &c.sha1.server_key,
        &c.sha256.stored_key,
        &c.sha256.server_key,
    ]
}

/// Whether an insert failed on the primary key (the account exists), not
/// on another constraint.
fn is_duplicate_key(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Whether `username@domain` has an account.
fn account_exists(db: &Connection, domain: &str, username: &str) -> rusqlite::Result<bool> {
    Ok(db
        .prepare_cached("SELECT 1 FROM accounts WHERE domain = ?1 AND username = ?2")?
        .query_row(params![domain, username], |_| Ok(()))
        .optional()?
        .is_some())
}

const INSERT: &str =
    "INSERT INTO accounts (domain, username, salt, iterations, sha1_stored_key, sha1_server_key,
     sha256_stored_key, sha256_server_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

impl Storage for SqliteStorage {
    fn execute_all(&mut self, queries: &[StorageRequest]) -> Vec<StorageAnswer> {
        if let Err(e) = self.sync_later(queries.iter().all(StorageRequest::may_sync_later)) {
            return vec![StorageAnswer::Failed(e.to_string()); queries.len()];
        }
        self.group_commit(queries)
    }

    fn after_panic(&mut self) {
        if !self.db.is_autocommit() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        self.archives.forget_all();
    }

    fn execute(&mut self, query: &StorageRequest) -> StorageAnswer {
        let answer = match query {
            StorageRequest::CreateAccount {
                username,
                domain,
                password,
                iterations,
            } => Ok(self.register(username, domain, &password.0, *iterations)),
            StorageRequest::SetPassword {
                user,
                password,
                iterations,
            } => Ok(self.change_password(user, &password.0, *iterations)),
            StorageRequest::DeleteAccount { user } => Ok(written(
                Account::of(user).and_then(|account| self.delete_account(&account)),
            )),
            StorageRequest::LoadCredentials { username, domain } => self
                .load_credentials(username, domain)
                .map(StorageAnswer::Credentials),
            StorageRequest::VerifyPlain {
                username,
                domain,
                password,
                stand_in,
            } => self.load_credentials(username, domain).map(|found| {
                StorageAnswer::PlainVerified(rookery_core::sasl::verify_plain(
                    found.as_ref(),
                    username,
                    password,
                    stand_in,
                ))
            }),
            StorageRequest::LoadRoster { user } => {
                self.load_roster(user).map(StorageAnswer::Roster)
            }
            StorageRequest::WriteRoster {
                user,
                changes,
                version,
            } => self
                .write_roster(user, changes, *version)
                .map(|()| StorageAnswer::Written),
            StorageRequest::StoreOffline {
                user,
                sender,
                unless_blocked,
                stanza,
                quota,
                sender_quota,
            } => self
                .store_offline(
                    user,
                    sender,
                    unless_blocked,
                    stanza,
                    (*quota, *sender_quota),
                )
                .map(StorageAnswer::Stored),
            StorageRequest::LoadOffline {
                user,
                after,
                max_bytes,
            } => self
                .load_offline(user, *after, *max_bytes)
                .map(|(messages, more)| StorageAnswer::Offline { messages, more }),
            StorageRequest::DeleteOffline { user, up_to } => self
                .delete_offline(user, *up_to)
                .map(|()| StorageAnswer::Written),
            StorageRequest::StoreLastActivity { user, at, status } => self
                .store_last_activity(user, *at, status)
                .map(|()| StorageAnswer::Written),
            StorageRequest::LoadLastActivity { user } => self
                .load_last_activity(user)
                .map(StorageAnswer::LastActivity),
            StorageRequest::ArchiveMessage {
                seq,
                stanza,
                archives,
                unless_blocked,
                prefs_of,
                max_messages,
                max_bytes,
            } => self
                .archive_message(
                    *seq,
                    stanza,
                    archives,
                    (unless_blocked, prefs_of),
                    (*max_messages, *max_bytes),
                )
                .map(|()| StorageAnswer::Written),
            StorageRequest::QueryArchive { user, query } => {
                self.query_archive(user, query).map(StorageAnswer::Archive)
            }
            StorageRequest::ExpireArchive { before, max } => self
                .expire_archive(*before, *max)
                .map(|(deleted, more)| StorageAnswer::Expired { deleted, more }),
            StorageRequest::LoadDocument { user, store, key } => self
                .load_document(user, *store, key)
                .map(StorageAnswer::Document),
            StorageRequest::LoadDocuments {
                users,
                store,
                keys,
                max_bytes,
            } => self
                .load_documents(users, *store, keys, *max_bytes)
                .map(StorageAnswer::Documents),
            StorageRequest::StoreDocuments {
                user,
                store,
                documents,
                max_documents,
                max_bytes,
            } => self
                .store_documents(user, *store, documents, (*max_documents, *max_bytes))
                .map(StorageAnswer::Stored),
        };
        answer.unwrap_or_else(|e| StorageAnswer::Failed(e.to_string()))
    }

    fn create_account(&mut self, account: &Account, credentials: &StoredCredentials) -> Result<()> {
        self.sync_later(false)?;
        match self.write(INSERT, account, credentials) {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => {
                bail!("{}@{} already exists", account.username, account.domain)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn set_credentials(
        &mut self,
        account: &Account,
        credentials: &StoredCredentials,
    ) -> Result<()> {
        self.sync_later(false)?;
        let changed = self.write(
            "UPDATE accounts SET salt = ?3, iterations = ?4, sha1_stored_key = ?5, sha1_server_key = ?6,
                 sha256_stored_key = ?7, sha256_server_key = ?8 WHERE domain = ?1 AND username = ?2",
            account,
            credentials,
        )?;
        if changed == 0 {
            bail!("{}@{} does not exist", account.username, account.domain);
        }
        Ok(())
    }

    fn delete_account(&mut self, account: &Account) -> Result<()> {
        self.sync_later(false)?;
        // The archive entries made first are those of every message
        // archived before the deletion, whichever process archived it.
        let deleted = self.atomically(|s| {
            s.index_pending()?;
            s.delete_indexed(account)
        });
        if deleted.is_err() {
            // The entries made in it were undone too.
            self.archives.forget_all();
        }
        deleted?;
        self.archives.forget(&account.domain, &account.username);
        Ok(())
    }
}

impl SqliteStorage {
    /// Commits of archive writes alone do not wait for the disk
    /// (`synchronous=NORMAL`): in write-ahead-log mode they survive a
    /// crash or kill of the Rookery process as they are, and a power cut
    /// or a crash of the system loses at most those since the last commit
    /// that did wait (it syncs the log before it, as every checkpoint
    /// does), never the database's consistency. Waiting was a fifth of
    /// archiving's cost on the storage thread. Every other commit waits
    /// (`synchronous=FULL`). Set between transactions only: SQLite
    /// refuses it inside one.
    fn sync_later(&mut self, later: bool) -> rusqlite::Result<()> {
        if later != self.syncs_later {
            debug_assert!(
                self.db.is_autocommit(),
                "synchronous set inside a transaction"
            );
            let level = if later { "NORMAL" } else { "FULL" };
            self.db.pragma_update(None, "synchronous", level)?;
            self.syncs_later = later;
        }
        Ok(())
    }

    /// Group commit: a commit that waits for the disk is shared by a
    /// burst of writes (offline stores, archive writes).
    fn group_commit(&mut self, queries: &[StorageRequest]) -> Vec<StorageAnswer> {
        // Login reads open read transactions of their own.
        if queries.len() < 2 || queries.iter().any(StorageRequest::is_login_read) {
            return queries.iter().map(|q| self.execute(q)).collect();
        }
        if let Err(e) = self.db.execute_batch("BEGIN IMMEDIATE") {
            let failed = StorageAnswer::Failed(e.to_string());
            return vec![failed; queries.len()];
        }
        let answers: Vec<_> = queries
            .iter()
            .map(|q| match self.db.is_autocommit() {
                // SQLite rolled the whole transaction back (a full disk,
                // an I/O error): the rest must not run, each committing
                // on its own, while every answer says failed.
                true => StorageAnswer::Failed("the group commit was rolled back".into()),
                false => self.execute(q),
            })
            .collect();
        match self.db.execute_batch("COMMIT") {
            Ok(()) => answers,
            Err(e) => {
                let _ = self.db.execute_batch("ROLLBACK");
                self.archives.forget_all();
                vec![StorageAnswer::Failed(e.to_string()); queries.len()]
            }
        }
    }

    /// Run `work` all or nothing: in a write transaction of its own,
    /// taken at once so that another process's writes cannot come
    /// between its reads and its writes (from the command line, or a
    /// query storage runs alone), or in a savepoint of the group commit
    /// already open.
    fn atomically<T, E: From<rusqlite::Error>>(
        &mut self,
        work: impl FnOnce(&mut Self) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let own = self.db.is_autocommit();
        self.db.execute_batch(if own {
            "BEGIN IMMEDIATE"
        } else {
            "SAVEPOINT atomically"
        })?;
        let done = work(self);
        let end = match (&done, own) {
            (Ok(_), true) => "COMMIT",
            (Ok(_), false) => "RELEASE atomically",
            (Err(_), true) => "ROLLBACK",
            (Err(_), false) => "ROLLBACK TO atomically; RELEASE atomically",
        };
        if let Err(e) = self.db.execute_batch(end) {
            if own {
                let _ = self.db.execute_batch("ROLLBACK");
            }
            done?;
            return Err(e.into());
        }
        done
    }

    /// Delete the account and all its data, its archive entries made.
    /// Inside [`SqliteStorage::atomically`].
    fn delete_indexed(&mut self, account: &Account) -> Result<()> {
        let tx = &self.db;
        let changed = tx.execute(
            "DELETE FROM accounts WHERE domain = ?1 AND username = ?2",
            params![account.domain, account.username],
        )?;
        if changed == 0 {
            bail!("{}@{} does not exist", account.username, account.domain);
        }
        let tables = roster::ROSTER_TABLES.iter();
        archive::delete_archive(tx, &account.domain, &account.username)?;
        let more = ["offline_messages", "documents"];
        for table in tables.chain(&more) {
            tx.execute(
                &format!("DELETE FROM {table} WHERE domain = ?1 AND username = ?2"),
                params![account.domain, account.username],
            )?;
        }
        Ok(())
    }
}

/// Credentials derived from `password` with a fresh random salt.
fn derived(password: &str, iterations: u32) -> Result<StoredCredentials> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).context("reading the OS random number generator")?;
    Ok(StoredCredentials::derive(password, &salt, iterations)?)
}

/// An account change done, as an answer.
fn written(done: Result<()>) -> StorageAnswer {
    match done {
        Ok(()) => StorageAnswer::Written,
        Err(e) => StorageAnswer::Failed(format!("{e:#}")),
    }
}

impl Account {
    /// The account of a bare JID.
    pub fn of(user: &jid::BareJid) -> Result<Account> {
        let Some(node) = user.node() else {
            bail!("{user} has no user part");
        };
        Ok(Account {
            username: node.as_str().to_owned(),
            domain: user.domain().as_str().to_owned(),
        })
    }
}

impl SqliteStorage {
    /// XEP-0077: create an account, unless it exists.
    fn register(
        &mut self,
        username: &str,
        domain: &str,
        password: &str,
        iterations: u32,
    ) -> StorageAnswer {
        let account = Account {
            username: username.to_owned(),
            domain: domain.to_owned(),
        };
        // A taken name costs no key derivation.
        match account_exists(&self.db, domain, username) {
            Ok(true) => return StorageAnswer::AccountCreated(false),
            Ok(false) => {}
            Err(e) => return StorageAnswer::Failed(e.to_string()),
        }
        let credentials = match derived(password, iterations) {
            Ok(credentials) => credentials,
            Err(e) => return StorageAnswer::Failed(format!("{e:#}")),
        };
        match self.write(INSERT, &account, &credentials) {
            Ok(_) => StorageAnswer::AccountCreated(true),
            Err(e) if is_duplicate_key(&e) => StorageAnswer::AccountCreated(false),
            Err(e) => StorageAnswer::Failed(e.to_string()),
        }
    }

    fn change_password(
        &mut self,
        user: &jid::BareJid,
        password: &str,
        iterations: u32,
    ) -> StorageAnswer {
        let changed = Account::of(user).and_then(|account| {
            let credentials = derived(password, iterations)?;
            self.set_credentials(&account, &credentials)
        });
        written(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jid::BareJid;

    fn creds(pw: &str) -> StoredCredentials {
        StoredCredentials::derive(pw, b"0123456789abcdef", 4096).unwrap()
    }

    #[test]
    fn an_older_database_is_migrated_step_by_step_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rookery.sqlite");
        {
            // A schema 3 database, as an earlier Rookery left it.
            let db = Connection::open(&path).unwrap();
            create_accounts(&db).unwrap();
            roster::migrate_to_2(&db).unwrap();
            offline::migrate_to_3(&db).unwrap();
        }
        let s = SqliteStorage::open(dir.path()).unwrap();
        let version: i64 =
            s.db.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        s.db.prepare("SELECT sender FROM offline_messages").unwrap();
        s.db.prepare("SELECT jid FROM blocklist").unwrap();
        s.db.prepare("SELECT at FROM last_activity").unwrap();
        drop(s);
        let db = Connection::open(&path).unwrap();
        db.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(db);
        let err = SqliteStorage::open(dir.path()).err().unwrap();
        assert!(
            err.to_string().contains("newer than this Rookery knows"),
            "{err}"
        );
    }

    #[test]
    fn a_schema_9_archive_keeps_its_entries_and_those_still_to_make() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Connection::open(dir.path().join("rookery.sqlite")).unwrap();
            for step in &MIGRATIONS[..9] {
                step(&db).unwrap();
            }
            // Message 1 indexed in Juliet's archive and in the nurse's,
            // deleted since (by a server whose cache still had her);
            // message 2 not yet, named for both.
            db.execute_batch(
                "INSERT INTO accounts VALUES ('localhost', 'juliet', x'00', 1, x'00', x'00', x'00', x'00');
                 INSERT INTO archive_owners VALUES ('localhost', 'juliet');
                 INSERT INTO archive_messages (seq, stanza) VALUES (1000000, '<message/>');
                 INSERT INTO archive VALUES ('localhost', 'juliet', 1000000, 'romeo@localhost', 'balcony');
                 INSERT INTO archive VALUES ('localhost', 'nurse', 1000000, 'juliet@localhost', NULL);
                 UPDATE archive_indexed SET up_to = 1000000;
                 INSERT INTO archive_messages VALUES (2000000, '<message/>',
                     'juliet@localhost', 'nurse@localhost', NULL,
                     'nurse@localhost', 'juliet@localhost', 'garden');",
            )
            .unwrap();
        }
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let with_romeo_on_the_balcony = rookery_core::ArchiveQuery {
            with: Some(("romeo@localhost".into(), Some("balcony".into()))),
            max: 10,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        assert_eq!(
            page(&mut s, with_romeo_on_the_balcony),
            Some((ids(1..=1), true))
        );
        assert_eq!(page(&mut s, first_ten()), Some((ids(1..=2), true)));
        // A new nurse does not inherit the old one's archive.
        s.create_account(&Account::parse("nurse@localhost").unwrap(), &creds("pw"))
            .unwrap();
        let sent = s.execute(&archived(
            3_000_000,
            "nurse@localhost",
            "juliet@localhost",
            "<message/>",
        ));
        assert_eq!(sent, StorageAnswer::Written);
        s.index_pending().unwrap();
        assert_eq!(entries(&s, "nurse"), [3_000_000]);
        assert_eq!(entries(&s, "juliet"), [1_000_000, 2_000_000]);
        // Sizes counted once, by the migration and the entries made since.
        assert_eq!(size(&s, "juliet"), (2, 2 * "<message/>".len() as i64));
        assert_eq!(size(&s, "nurse"), (1, "<message/>".len() as i64));
    }

    /// An archive write of `stanza`, numbered `seq`, into `user`'s
    /// archive with `with`, under caps it does not reach.
    fn archived(seq: u64, user: &str, with: &str, stanza: &str) -> StorageRequest {
        StorageRequest::ArchiveMessage {
            seq,
            archives: vec![(user.parse().unwrap(), (with.into(), None))],
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            stanza: stanza.into(),
            max_messages: 1000,
            max_bytes: 1 << 20,
        }
    }

    fn load(s: &mut SqliteStorage, user: &str) -> StorageAnswer {
        s.execute(&StorageRequest::LoadCredentials {
            username: user.into(),
            domain: "localhost".into(),
        })
    }

    #[test]
    fn created_account_is_found_with_its_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("Juliet@LocalHost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        assert_eq!(
            load(&mut s, "juliet"),
            StorageAnswer::Credentials(Some(creds("pw")))
        );
    }

    #[test]
    fn the_database_and_its_journal_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = SqliteStorage::open(&data).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds("pw"))
            .unwrap();
        let mode = |name: &str| {
            std::fs::metadata(data.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("."), 0o700);
        for file in ["rookery.sqlite", "rookery.sqlite-wal", "rookery.sqlite-shm"] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }

    #[test]
    fn a_group_commit_keeps_every_store_and_answers_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds("pw"))
            .unwrap();
        let store = |user: &str| StorageRequest::StoreOffline {
            user: user.parse().unwrap(),
            sender: "romeo@localhost".parse().unwrap(),
            unless_blocked: Vec::new(),
            stanza: "<message/>".into(),
            quota: 10,
            sender_quota: 10,
        };
        let answers = s.execute_all(&[
            store("juliet@localhost"),
            store("ghost@localhost"),
            store("juliet@localhost"),
        ]);
        assert_eq!(
            answers,
            [
                StorageAnswer::Stored(rookery_core::StoreOutcome::Stored),
                StorageAnswer::Stored(rookery_core::StoreOutcome::NoSuchUser),
                StorageAnswer::Stored(rookery_core::StoreOutcome::Stored),
            ]
        );
        drop(s);
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let page = s.execute(&StorageRequest::LoadOffline {
            user: "juliet@localhost".parse().unwrap(),
            after: 0,
            max_bytes: 1000,
        });
        assert!(matches!(page, StorageAnswer::Offline { messages, .. } if messages.len() == 2));
    }

    #[test]
    fn deleting_an_account_deletes_its_roster_pending_requests_and_offline_messages() {
        use rookery_core::roster::{RosterChange, RosterItem};
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let account = Account::parse("juliet@localhost").unwrap();
        s.create_account(&account, &creds("pw")).unwrap();
        let user: jid::BareJid = "juliet@localhost".parse().unwrap();
        let romeo: jid::BareJid = "romeo@localhost".parse().unwrap();
        let changes = vec![
            RosterChange::Upsert(RosterItem::new(romeo.clone())),
            RosterChange::PendingIn(romeo.clone(), Some("<presence type='subscribe'/>".into())),
        ];
        s.execute(&StorageRequest::WriteRoster {
            user: user.clone(),
            changes,
            version: 1,
        });
        s.execute(&StorageRequest::StoreOffline {
            user: user.clone(),
            sender: romeo,
            unless_blocked: Vec::new(),
            stanza: "<message/>".into(),
            quota: 10,
            sender_quota: 10,
        });
        s.delete_account(&account).unwrap();
        s.create_account(&account, &creds("pw")).unwrap();
        let StorageAnswer::Roster(Some(roster)) =
            s.execute(&StorageRequest::LoadRoster { user: user.clone() })
        else {
            panic!("no roster")
        };
        assert!(roster.items.is_empty() && roster.pending_in.is_empty());
        let page = s.execute(&StorageRequest::LoadOffline {
            user,
            after: 0,
            max_bytes: 100,
        });
        assert_eq!(
            page,
            StorageAnswer::Offline {
                messages: vec![],
                more: false
            }
        );
    }

    #[test]
    fn accounts_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        SqliteStorage::open(dir.path())
            .unwrap()
            .create_account(&a, &creds("pw"))
            .unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(
            load(&mut s, "juliet"),
            StorageAnswer::Credentials(Some(creds("pw")))
        );
    }

    #[test]
    fn duplicate_account_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        assert!(s.create_account(&a, &creds("pw")).is_err());
    }

    #[test]
    fn passwd_replaces_and_deluser_removes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("old")).unwrap();
        s.set_credentials(&a, &creds("new")).unwrap();
        assert_eq!(
            load(&mut s, "juliet"),
            StorageAnswer::Credentials(Some(creds("new")))
        );
        s.delete_account(&a).unwrap();
        assert_eq!(load(&mut s, "juliet"), StorageAnswer::Credentials(None));
        assert!(s.delete_account(&a).is_err());
    }

    fn store_documents(documents: &[(&str, Option<&str>)], max: (usize, usize)) -> StorageRequest {
        StorageRequest::StoreDocuments {
            user: "juliet@localhost".parse().unwrap(),
            store: rookery_core::DocumentStore::Private,
            documents: documents
                .iter()
                .map(|(k, d)| (k.to_string(), d.map(str::to_owned)))
                .collect(),
            max_documents: max.0,
            max_bytes: max.1,
        }
    }

    fn load_document(s: &mut SqliteStorage, key: &str) -> StorageAnswer {
        s.execute(&StorageRequest::LoadDocument {
            user: "juliet@localhost".parse().unwrap(),
            store: rookery_core::DocumentStore::Private,
            key: key.into(),
        })
    }

    #[test]
    fn documents_are_stored_replaced_and_removed_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        let stored = StorageAnswer::Stored(rookery_core::StoreOutcome::Stored);
        let both = [("a", Some("<a/>")), ("b", Some("<b/>"))];
        assert_eq!(s.execute(&store_documents(&both, (10, 100))), stored);
        let change = [("a", Some("<a>2</a>")), ("b", None)];
        assert_eq!(s.execute(&store_documents(&change, (10, 100))), stored);
        assert_eq!(
            load_document(&mut s, "a"),
            StorageAnswer::Document(Some("<a>2</a>".into()))
        );
        assert_eq!(load_document(&mut s, "b"), StorageAnswer::Document(None));
    }

    #[test]
    fn an_account_registered_in_band_exists_once_and_is_removed_inside_a_group_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let register = StorageRequest::CreateAccount {
            username: "nurse".into(),
            domain: "localhost".into(),
            password: rookery_core::sasl::Password("s3cret".into()),
            iterations: 1,
        };
        assert_eq!(s.execute(&register), StorageAnswer::AccountCreated(true));
        assert_eq!(s.execute(&register), StorageAnswer::AccountCreated(false));
        let user: BareJid = "nurse@localhost".parse().unwrap();
        let remove = StorageRequest::DeleteAccount { user };
        // A client's removal rides in a group commit with other writes.
        let answers = s.execute_all(&[remove.clone(), register.clone()]);
        assert_eq!(
            answers,
            [StorageAnswer::Written, StorageAnswer::AccountCreated(true)]
        );
    }

    #[test]
    fn roster_changes_queued_behind_an_account_removal_keep_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        let user: BareJid = "juliet@localhost".parse().unwrap();
        let item = rookery_core::roster::RosterItem::new("romeo@localhost".parse().unwrap());
        let write = StorageRequest::WriteRoster {
            user: user.clone(),
            changes: vec![rookery_core::roster::RosterChange::Upsert(item)],
            version: 1,
        };
        let remove = StorageRequest::DeleteAccount { user: user.clone() };
        s.execute_all(&[remove, write]);
        s.create_account(&a, &creds("pw")).unwrap();
        match s.execute(&StorageRequest::LoadRoster { user }) {
            StorageAnswer::Roster(Some(roster)) => assert!(roster.items.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn documents_of_several_accounts_are_read_at_once_up_to_a_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        for user in ["juliet@localhost", "romeo@localhost"] {
            s.create_account(&Account::parse(user).unwrap(), &creds("pw"))
                .unwrap();
        }
        let juliet: BareJid = "juliet@localhost".parse().unwrap();
        let romeo: BareJid = "romeo@localhost".parse().unwrap();
        let private = rookery_core::DocumentStore::Private;
        let large = format!("<b>{}</b>", "x".repeat(100));
        s.execute(&store_documents(
            &[("a", Some("<a/>")), ("b", Some(&large))],
            (10, 1000),
        ));
        let theirs = StorageRequest::StoreDocuments {
            user: romeo.clone(),
            store: private,
            documents: vec![("a".into(), Some("<r/>".into()))],
            max_documents: 10,
            max_bytes: 100,
        };
        s.execute(&theirs);
        let read = |max_bytes| StorageRequest::LoadDocuments {
            users: vec![juliet.clone(), romeo.clone()],
            store: private,
            keys: vec!["a".into(), "b".into(), "missing".into()],
            max_bytes,
        };
        assert_eq!(
            s.execute(&read(1000)),
            StorageAnswer::Documents(vec![
                (juliet.clone(), "a".into(), "<a/>".into()),
                (juliet.clone(), "b".into(), large.clone()),
                (romeo.clone(), "a".into(), "<r/>".into()),
            ])
        );
        // Past the budget, what does not fit is left out, not what
        // follows it.
        assert_eq!(
            s.execute(&read(10)),
            StorageAnswer::Documents(vec![
                (juliet.clone(), "a".into(), "<a/>".into()),
                (romeo.clone(), "a".into(), "<r/>".into()),
            ])
        );
    }

    #[test]
    fn documents_past_the_quota_are_refused_whole_but_a_store_may_shrink() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        let three = [
            ("a", Some("<a/>")),
            ("b", Some("<b/>")),
            ("c", Some("<c/>")),
        ];
        s.execute(&store_documents(&three, (3, 100)));
        // The limit is lowered to 2: adding fails, and changes nothing.
        let more = [("a", None), ("d", Some("<d/>")), ("e", Some("<e/>"))];
        assert_eq!(
            s.execute(&store_documents(&more, (2, 100))),
            StorageAnswer::Stored(rookery_core::StoreOutcome::QuotaExceeded)
        );
        assert_eq!(
            load_document(&mut s, "a"),
            StorageAnswer::Document(Some("<a/>".into()))
        );
        // Removing one still succeeds, though three minus one is over.
        assert_eq!(
            s.execute(&store_documents(&[("a", None)], (1, 100))),
            StorageAnswer::Stored(rookery_core::StoreOutcome::Stored)
        );
        let big = [("b", Some("<b>much longer than before</b>"))];
        assert_eq!(
            s.execute(&store_documents(&big, (10, 20))),
            StorageAnswer::Stored(rookery_core::StoreOutcome::QuotaExceeded)
        );
    }

    #[test]
    fn deleting_an_account_deletes_its_documents() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let a = Account::parse("juliet@localhost").unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        s.execute(&store_documents(&[("a", Some("<a/>"))], (10, 100)));
        s.delete_account(&a).unwrap();
        s.create_account(&a, &creds("pw")).unwrap();
        assert_eq!(load_document(&mut s, "a"), StorageAnswer::Document(None));
    }

    #[test]
    fn documents_for_a_missing_account_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(
            s.execute(&store_documents(&[("a", Some("<a/>"))], (10, 100))),
            StorageAnswer::Stored(rookery_core::StoreOutcome::NoSuchUser)
        );
    }

    fn archive(s: &mut SqliteStorage, n: u64, with: &str, max: usize) {
        archive_within(s, n, with, (max, 1 << 30));
    }

    fn archive_within(s: &mut SqliteStorage, n: u64, with: &str, (max, max_bytes): (usize, usize)) {
        let answer = s.execute(&StorageRequest::ArchiveMessage {
            seq: n * 1_000_000,
            archives: vec![("juliet@localhost".parse().unwrap(), (with.into(), None))],
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            stanza: format!("<message><body>{n}</body></message>"),
            max_messages: max,
            max_bytes,
        });
        assert_eq!(answer, StorageAnswer::Written);
    }

    #[test]
    fn only_archive_writes_alone_commit_without_waiting_for_the_disk() {
        let (_dir, mut s) = archive_of(0);
        let chat = |n| archived(n, "juliet@localhost", "romeo@localhost", "<message/>");
        let away = StorageRequest::StoreLastActivity {
            user: "juliet@localhost".parse().unwrap(),
            at: 1,
            status: "gone".into(),
        };
        // PRAGMA synchronous: 1 is NORMAL, 2 FULL.
        let level = |s: &SqliteStorage| -> i64 {
            s.db.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(level(&s), 2);
        s.execute_all(&[chat(1), chat(2)]);
        assert_eq!(level(&s), 1);
        s.execute_all(&[chat(3), away]);
        assert_eq!(level(&s), 2);
        s.execute_all(&[chat(4)]);
        s.create_account(&Account::parse("romeo@localhost").unwrap(), &creds("pw"))
            .unwrap();
        assert_eq!(level(&s), 2);
    }

    #[test]
    fn an_archive_past_its_byte_cap_drops_its_oldest() {
        // Each stanza is 33 bytes: room for three.
        let (_dir, mut s) = archive_of(0);
        for n in 1..=5 {
            archive_within(&mut s, n, "romeo@localhost", (1000, 3 * 33));
        }
        assert_eq!(page(&mut s, first_ten()), Some((ids(3..=5), true)));
    }

    /// The first page of up to ten messages, whatever their size.
    fn first_ten() -> rookery_core::ArchiveQuery {
        rookery_core::ArchiveQuery {
            max: 10,
            max_bytes: 1 << 20,
            ..Default::default()
        }
    }

    fn page(s: &mut SqliteStorage, query: rookery_core::ArchiveQuery) -> Option<(Vec<u64>, bool)> {
        let answer = s.execute(&StorageRequest::QueryArchive {
            user: "juliet@localhost".parse().unwrap(),
            query,
        });
        let StorageAnswer::Archive(page) = answer else {
            panic!("{answer:?}");
        };
        page.map(|(messages, complete)| (messages.into_iter().map(|m| m.seq).collect(), complete))
    }

    /// An archive of `n` messages, alternately with romeo and the nurse,
    /// in the directory returned beside it.
    fn archive_of(n: u64) -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds("pw"))
            .unwrap();
        for i in 1..=n {
            let with = if i % 2 == 0 {
                "nurse@localhost"
            } else {
                "romeo@localhost"
            };
            archive(&mut s, i, with, 1000);
        }
        (dir, s)
    }

    fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        range.map(|i| i * 1_000_000).collect()
    }

    #[test]
    fn archive_pages_run_forward_and_backward_from_an_id() {
        let (_dir, mut s) = archive_of(5);
        let query = |max| rookery_core::ArchiveQuery {
            max,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        assert_eq!(page(&mut s, query(2)), Some((ids(1..=2), false)));
        let after = rookery_core::ArchiveQuery {
            after: Some(2_000_000),
            ..query(3)
        };
        assert_eq!(page(&mut s, after), Some((ids(3..=5), true)));
        let last = rookery_core::ArchiveQuery {
            backward: true,
            ..query(2)
        };
        assert_eq!(page(&mut s, last), Some((ids(4..=5), false)));
        let before = rookery_core::ArchiveQuery {
            backward: true,
            before: Some(3_000_000),
            ..query(5)
        };
        assert_eq!(page(&mut s, before), Some((ids(1..=2), true)));
        let unknown = rookery_core::ArchiveQuery {
            after: Some(7),
            ..query(5)
        };
        assert_eq!(page(&mut s, unknown), None);
    }

    #[test]
    fn archive_queries_filter_by_party_and_stamp() {
        let (_dir, mut s) = archive_of(5);
        let with_romeo = rookery_core::ArchiveQuery {
            with: Some(("romeo@localhost".into(), None)),
            start: Some(2_000_000),
            end: Some(5_000_000),
            max: 10,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        let (got, complete) = page(&mut s, with_romeo).unwrap();
        assert_eq!(got, [3_000_000, 5_000_000]);
        assert!(complete);
    }

    #[test]
    fn an_archive_page_stops_at_its_byte_budget_but_holds_one_message() {
        let (_dir, mut s) = archive_of(3);
        let small = rookery_core::ArchiveQuery {
            max: 10,
            max_bytes: 1,
            ..Default::default()
        };
        assert_eq!(page(&mut s, small), Some((ids(1..=1), false)));
    }

    #[test]
    fn an_archive_past_its_cap_drops_its_oldest() {
        let (_dir, mut s) = archive_of(3);
        archive(&mut s, 4, "romeo@localhost", 2);
        assert_eq!(page(&mut s, first_ten()), Some((ids(3..=4), true)));
    }

    #[test]
    fn an_archives_size_is_kept_across_a_restart_without_counting_it_again() {
        let (dir, s) = archive_of(3);
        drop(s);
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        // Each stanza of archive_of is 33 bytes.
        assert_eq!(size(&s, "juliet"), (3, 3 * 33));
        archive(&mut s, 4, "romeo@localhost", 2);
        assert_eq!(page(&mut s, first_ten()), Some((ids(3..=4), true)));
        assert_eq!(size(&s, "juliet"), (2, 2 * 33));
    }

    #[test]
    fn an_archive_counted_too_large_is_counted_again_rather_than_emptied() {
        let (_dir, mut s) = archive_of(3);
        s.index_pending().unwrap();
        s.db.execute("UPDATE archive_owners SET messages = messages + 1000", [])
            .unwrap();
        archive(&mut s, 4, "romeo@localhost", 3);
        s.index_pending().unwrap();
        assert_eq!(entries(&s, "juliet"), ids(2..=4));
        assert_eq!(size(&s, "juliet"), (3, 3 * 33));
    }

    #[test]
    fn an_archive_named_twice_for_a_message_holds_it_once() {
        let (_dir, mut s) = archive_of(0);
        let juliet: jid::BareJid = "juliet@localhost".parse().unwrap();
        let sent = s.execute(&StorageRequest::ArchiveMessage {
            seq: 1_000_000,
            archives: vec![
                (
                    juliet.clone(),
                    ("juliet@localhost".into(), Some("balcony".into())),
                ),
                (juliet, ("juliet@localhost".into(), None)),
            ],
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            stanza: "<message><body>1</body></message>".into(),
            max_messages: 1000,
            max_bytes: 1 << 20,
        });
        assert_eq!(sent, StorageAnswer::Written);
        s.index_pending().unwrap();
        assert_eq!(entries(&s, "juliet"), ids(1..=1));
        assert_eq!(size(&s, "juliet"), (1, 33));
    }

    /// The size kept beside `username`'s archive: messages and bytes.
    fn size(s: &SqliteStorage, username: &str) -> (i64, i64) {
        s.db.query_row(
            "SELECT messages, bytes FROM archive_owners WHERE username = ?1",
            [username],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// Entries in the keyed table for `username`.
    fn entries(s: &SqliteStorage, username: &str) -> Vec<u64> {
        s.db.prepare(
            "SELECT seq FROM archive a JOIN archive_owners o ON o.id = a.owner
             WHERE o.username = ?1 ORDER BY seq",
        )
        .unwrap()
        .query_map([username], |r| r.get::<_, i64>(0).map(|seq| seq as u64))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn archived_messages_get_their_entries_in_bulk_and_on_reopening() {
        let (dir, s) = archive_of(3);
        // Appended only: the entries come with the next bulk step.
        assert!(entries(&s, "juliet").is_empty());
        drop(s);
        let s = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(entries(&s, "juliet"), [1_000_000, 2_000_000, 3_000_000]);
    }

    #[test]
    fn a_message_numbered_below_indexed_ones_gets_its_entry_at_once() {
        let (_dir, mut s) = archive_of(0);
        for n in [2, 4] {
            archive(&mut s, n, "romeo@localhost", 1000);
        }
        let all = rookery_core::ArchiveQuery {
            max: 10,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        assert_eq!(
            page(&mut s, all.clone()),
            Some((vec![2_000_000, 4_000_000], true))
        );
        // A clock set back across a restart.
        archive(&mut s, 3, "romeo@localhost", 1000);
        assert_eq!(entries(&s, "juliet"), ids(2..=4));
        assert_eq!(page(&mut s, all), Some((ids(2..=4), true)));
    }

    #[test]
    fn a_message_below_the_mark_one_archive_trims_stays_in_the_other() {
        let (_dir, mut s) = archive_of(1);
        s.create_account(&Account::parse("romeo@localhost").unwrap(), &creds("pw"))
            .unwrap();
        s.index_pending().unwrap();
        // Older than Juliet's only message, whose cap is one: hers drops
        // it at once; Romeo's keeps it, text and all.
        let sent = s.execute(&StorageRequest::ArchiveMessage {
            seq: 500_000,
            archives: vec![
                (
                    "juliet@localhost".parse().unwrap(),
                    ("romeo@localhost".into(), None),
                ),
                (
                    "romeo@localhost".parse().unwrap(),
                    ("juliet@localhost".into(), None),
                ),
            ],
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            stanza: "<message><body>early</body></message>".into(),
            max_messages: 1,
            max_bytes: 1 << 20,
        });
        assert_eq!(sent, StorageAnswer::Written);
        assert_eq!(entries(&s, "juliet"), ids(1..=1));
        let answer = s.execute(&StorageRequest::QueryArchive {
            user: "romeo@localhost".parse().unwrap(),
            query: first_ten(),
        });
        let StorageAnswer::Archive(Some((messages, true))) = answer else {
            panic!("{answer:?}");
        };
        let stanzas: Vec<_> = messages.iter().map(|m| m.stanza.as_str()).collect();
        assert_eq!(stanzas, ["<message><body>early</body></message>"]);
    }

    #[test]
    fn an_account_deleted_by_another_process_gets_no_entries_back_nor_its_namesake() {
        let (dir, mut server) = archive_of(0);
        for user in ["romeo@localhost", "nurse@localhost"] {
            server
                .create_account(&Account::parse(user).unwrap(), &creds("pw"))
                .unwrap();
        }
        let chat = |seq: u64, to: &str, from: &str| StorageRequest::ArchiveMessage {
            seq,
            archives: vec![
                (to.parse().unwrap(), (from.into(), None)),
                (from.parse().unwrap(), (to.into(), None)),
            ],
            unless_blocked: Vec::new(),
            prefs_of: Vec::new(),
            stanza: "<message><body>hi</body></message>".into(),
            max_messages: 1000,
            max_bytes: 1 << 20,
        };
        for sent in [
            chat(1, "juliet@localhost", "romeo@localhost"),
            chat(2, "romeo@localhost", "nurse@localhost"),
        ] {
            assert_eq!(server.execute(&sent), StorageAnswer::Written);
        }
        // `rookery deluser` opens the database beside the server, and
        // a new Juliet is registered.
        let mut cli = SqliteStorage::open(dir.path()).unwrap();
        let juliet = Account::parse("juliet@localhost").unwrap();
        cli.delete_account(&juliet).unwrap();
        cli.create_account(&juliet, &creds("pw")).unwrap();
        // The server still believes in the old one (its cache): neither
        // she nor the new one gets what was meant for her.
        let sent = server.execute(&chat(3, "juliet@localhost", "romeo@localhost"));
        assert_eq!(sent, StorageAnswer::Written);
        server.index_pending().unwrap();
        assert!(entries(&server, "juliet").is_empty());
        assert_eq!(entries(&server, "romeo"), [1, 2, 3]);
        // Counted once, though the command line made two of them.
        let hi = "<message><body>hi</body></message>".len() as i64;
        assert_eq!(size(&server, "romeo"), (3, 3 * hi));
        // Once indexing has seen the old one gone, the new one archives.
        let sent = server.execute(&chat(4, "juliet@localhost", "romeo@localhost"));
        assert_eq!(sent, StorageAnswer::Written);
        server.index_pending().unwrap();
        assert_eq!(entries(&server, "juliet"), [4]);
    }

    #[test]
    fn an_offline_recipients_preferences_are_applied_by_storage_and_read_with_its_roster() {
        use rookery_core::roster::{ArchiveDefault, ArchivePrefs, RosterChange, RosterItem};
        let (_dir, mut s) = archive_of(0);
        let juliet: jid::BareJid = "juliet@localhost".parse().unwrap();
        let prefs = ArchivePrefs {
            default: ArchiveDefault::Roster,
            always: ["nurse@localhost".to_owned()].into(),
            never: ["tybalt@localhost".to_owned()].into(),
        };
        let changes = vec![
            RosterChange::Upsert(RosterItem::new("romeo@localhost".parse().unwrap())),
            RosterChange::Upsert(RosterItem::new("tybalt@localhost".parse().unwrap())),
            RosterChange::ArchivePrefs(Some(Box::new(prefs.clone()))),
        ];
        let written = s.execute(&StorageRequest::WriteRoster {
            user: juliet.clone(),
            changes,
            version: 1,
        });
        assert_eq!(written, StorageAnswer::Written);
        let StorageAnswer::Roster(Some(roster)) = s.execute(&StorageRequest::LoadRoster {
            user: juliet.clone(),
        }) else {
            panic!("no roster");
        };
        assert_eq!(roster.archive_prefs.as_deref(), Some(&prefs));
        for (n, with) in [
            (1, "romeo@localhost"),
            (2, "tybalt@localhost"),
            (3, "nurse@localhost"),
            (4, "paris@localhost"),
        ] {
            let answer = s.execute(&StorageRequest::ArchiveMessage {
                seq: n * 1_000_000,
                archives: vec![(juliet.clone(), (with.into(), None))],
                unless_blocked: Vec::new(),
                prefs_of: vec![juliet.clone()],
                stanza: format!("<message><body>{n}</body></message>"),
                max_messages: 100,
                max_bytes: 1 << 20,
            });
            assert_eq!(answer, StorageAnswer::Written);
        }
        // A contact, and a stranger always kept; never the JID in both
        // the roster and the never list, nor a stranger.
        s.index_pending().unwrap();
        assert_eq!(entries(&s, "juliet"), [1_000_000, 3_000_000]);
    }

    #[test]
    fn storage_applies_a_senders_preferences_when_told_to() {
        use rookery_core::roster::{ArchiveDefault, ArchivePrefs, RosterChange};
        let (_dir, mut s) = archive_of(0);
        s.create_account(&Account::parse("romeo@localhost").unwrap(), &creds("pw"))
            .unwrap();
        let romeo: jid::BareJid = "romeo@localhost".parse().unwrap();
        let never = ArchivePrefs {
            default: ArchiveDefault::Never,
            ..Default::default()
        };
        let written = s.execute(&StorageRequest::WriteRoster {
            user: romeo.clone(),
            changes: vec![RosterChange::ArchivePrefs(Some(Box::new(never)))],
            version: 0,
        });
        assert_eq!(written, StorageAnswer::Written);
        let answer = s.execute(&StorageRequest::ArchiveMessage {
            seq: 1,
            archives: vec![
                (
                    "juliet@localhost".parse().unwrap(),
                    ("romeo@localhost".into(), None),
                ),
                (romeo.clone(), ("juliet@localhost".into(), None)),
            ],
            unless_blocked: Vec::new(),
            prefs_of: vec![romeo],
            stanza: "<message><body>hi</body></message>".into(),
            max_messages: 100,
            max_bytes: 1 << 20,
        });
        assert_eq!(answer, StorageAnswer::Written);
        s.index_pending().unwrap();
        assert_eq!(entries(&s, "juliet"), [1]);
        assert!(entries(&s, "romeo").is_empty());
    }

    #[test]
    fn archive_expiry_deletes_the_oldest_in_batches() {
        let (_dir, mut s) = archive_of(5);
        let expire = |s: &mut SqliteStorage, max| {
            s.execute(&StorageRequest::ExpireArchive {
                before: 4_000_000,
                max,
            })
        };
        let expired = |deleted, more| StorageAnswer::Expired { deleted, more };
        assert_eq!(expire(&mut s, 2), expired(2, true));
        assert_eq!(expire(&mut s, 2), expired(1, false));
        assert_eq!(expire(&mut s, 2), expired(0, false));
        assert_eq!(page(&mut s, first_ten()), Some((ids(4..=5), true)));
        // The count kept beside the archive followed: the cap of 3 keeps
        // the 2 left and the new one.
        archive(&mut s, 6, "romeo@localhost", 3);
        assert_eq!(page(&mut s, first_ten()), Some((ids(4..=6), true)));
    }
}
