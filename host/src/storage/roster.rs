//! Rosters in SQLite: items, pending inbound requests and versions.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::roster::{
    ArchiveDefault, ArchivePrefs, Roster, RosterChange, RosterItem, Subscription,
};
use rusqlite::{params, Connection, OptionalExtension};

/// Groups of an item are stored joined by NUL, which XML text cannot hold.
const GROUP_SEPARATOR: &str = "\0";

/// Schema 2: rosters, pending inbound subscription requests, versions.
pub(super) fn migrate_to_2(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE roster_items (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             contact TEXT NOT NULL,
             name TEXT,
             subscription TEXT NOT NULL,
             ask INTEGER NOT NULL,
             approved INTEGER NOT NULL,
             groups TEXT NOT NULL,
             PRIMARY KEY (domain, username, contact)
         ) WITHOUT ROWID;
         CREATE TABLE roster_pending_in (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             contact TEXT NOT NULL,
             stanza TEXT NOT NULL,
             PRIMARY KEY (domain, username, contact)
         ) WITHOUT ROWID;
         CREATE TABLE roster_versions (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             version INTEGER NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 2;
         COMMIT;",
    )
}

/// Schema 5: blocklists (XEP-0191), part of an account's roster data,
/// and each account's last activity (XEP-0012).
pub(super) fn migrate_to_5(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE blocklist (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             jid TEXT NOT NULL,
             PRIMARY KEY (domain, username, jid)
         ) WITHOUT ROWID;
         CREATE TABLE last_activity (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             at INTEGER NOT NULL,
             status TEXT NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 5;
         COMMIT;",
    )
}

/// Schema 9: the hash of each account's avatar, for its presence
/// (XEP-0153).
pub(super) fn migrate_to_9(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE account_photos (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             photo TEXT NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 9;
         COMMIT;",
    )
}

/// The tables holding one account's roster data.
pub(super) const ROSTER_TABLES: [&str; 8] = [
    "roster_items",
    "roster_pending_in",
    "roster_versions",
    "blocklist",
    "last_activity",
    "archive_prefs",
    "archive_prefs_jids",
    "account_photos",
];

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

impl SqliteStorage {
    /// The user's roster, or `None` if the account does not exist.
    pub(super) fn load_roster(&self, user: &BareJid) -> rusqlite::Result<Option<Roster>> {
        let (domain, username) = parts(user);
        // One read transaction for the four queries: one lock, one
        // consistent view (every session start runs this).
        let tx = self.db.unchecked_transaction()?;
        let exists = super::account_exists(&tx, domain, username)?;
        if !exists {
            return Ok(None);
        }
        let mut roster = Roster::default();
        let mut items = tx.prepare_cached(
            "SELECT contact, name, subscription, ask, approved, groups FROM roster_items
             WHERE domain = ?1 AND username = ?2",
        )?;
        let rows = items.query_map(params![domain, username], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        for row in rows {
            let (contact, name, subscription, ask, approved, groups) = row?;
            // A row that no longer parses (a hand-edited database) is
            // skipped rather than failing the whole roster.
            let Ok(jid) = BareJid::new(&contact) else {
                continue;
            };
            let item = RosterItem {
                jid: jid.clone(),
                name,
                subscription: Subscription::parse(&subscription).unwrap_or_default(),
                ask,
                approved,
                groups: groups
                    .split(GROUP_SEPARATOR)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            roster.items.insert(jid, item);
        }
        let mut pending = tx.prepare_cached(
            "SELECT contact, stanza FROM roster_pending_in WHERE domain = ?1 AND username = ?2",
        )?;
        let rows = pending.query_map(params![domain, username], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (contact, stanza) = row?;
            if let Ok(jid) = BareJid::new(&contact) {
                roster.pending_in.insert(jid, stanza);
            }
        }
        roster.version = tx
            .prepare_cached(
                "SELECT version FROM roster_versions WHERE domain = ?1 AND username = ?2",
            )?
            .query_row(params![domain, username], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0) as u64;
        let mut blocked =
            tx.prepare_cached("SELECT jid FROM blocklist WHERE domain = ?1 AND username = ?2")?;
        let rows = blocked.query_map(params![domain, username], |r| r.get::<_, String>(0))?;
        for row in rows {
            roster.blocked.insert(row?);
        }
        drop((items, pending, blocked));
        roster.archive_prefs = archive_prefs(&tx, domain, username)?.map(Box::new);
        roster.photo = tx
            .prepare_cached("SELECT photo FROM account_photos WHERE domain = ?1 AND username = ?2")?
            .query_row(params![domain, username], |r| r.get::<_, String>(0))
            .optional()?
            .map(String::into_boxed_str);
        tx.commit()?;
        Ok(Some(roster))
    }

    /// XEP-0012: the account's last session ended at `at`.
    pub(super) fn store_last_activity(
        &mut self,
        user: &BareJid,
        at: u64,
        status: &str,
    ) -> rusqlite::Result<()> {
        let (domain, username) = parts(user);
        let tx = self.db.savepoint()?;
        if super::account_exists(&tx, domain, username)? {
            tx.execute(
                "INSERT OR REPLACE INTO last_activity (domain, username, at, status)
                 VALUES (?1, ?2, ?3, ?4)",
                params![domain, username, at as i64, status],
            )?;
        }
        tx.commit()
    }

    pub(super) fn load_last_activity(
        &self,
        user: &BareJid,
    ) -> rusqlite::Result<Option<(u64, String)>> {
        let (domain, username) = parts(user);
        self.db
            .prepare_cached(
                "SELECT at, status FROM last_activity WHERE domain = ?1 AND username = ?2",
            )?
            .query_row(params![domain, username], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .optional()
    }

    /// Apply roster changes and the new version in one transaction; when
    /// this returns, the change is on disk (`synchronous=FULL`).
    pub(super) fn write_roster(
        &mut self,
        user: &BareJid,
        changes: &[RosterChange],
        version: u64,
    ) -> rusqlite::Result<()> {
        let (domain, username) = parts(user);
        // A savepoint: its own transaction, or a part of a group commit.
        let tx = self.db.savepoint()?;
        // An account removed while its roster changes were queued keeps
        // nothing: the next owner of the name must not inherit it.
        if !super::account_exists(&tx, domain, username)? {
            return Ok(());
        }
        for change in changes {
            match change {
                RosterChange::Upsert(item) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO roster_items
                         (domain, username, contact, name, subscription, ask, approved, groups)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            domain,
                            username,
                            item.jid.as_str(),
                            item.name,
                            item.subscription.name(),
                            item.ask,
                            item.approved,
                            item.groups.join(GROUP_SEPARATOR)
                        ],
                    )?;
                }
                RosterChange::Remove(contact) => {
                    tx.execute(
                        "DELETE FROM roster_items WHERE domain = ?1 AND username = ?2 AND contact = ?3",
                        params![domain, username, contact.as_str()],
                    )?;
                }
                RosterChange::PendingIn(contact, Some(stanza)) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO roster_pending_in (domain, username, contact, stanza)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![domain, username, contact.as_str(), stanza],
                    )?;
                }
                RosterChange::PendingIn(contact, None) => {
                    tx.execute(
                        "DELETE FROM roster_pending_in WHERE domain = ?1 AND username = ?2 AND contact = ?3",
                        params![domain, username, contact.as_str()],
                    )?;
                }
                RosterChange::Block(jid) => {
                    tx.execute(
                        "INSERT OR IGNORE INTO blocklist (domain, username, jid) VALUES (?1, ?2, ?3)",
                        params![domain, username, jid],
                    )?;
                }
                RosterChange::Unblock(jid) => {
                    tx.execute(
                        "DELETE FROM blocklist WHERE domain = ?1 AND username = ?2 AND jid = ?3",
                        params![domain, username, jid],
                    )?;
                }
                RosterChange::UnblockAll => {
                    tx.execute(
                        "DELETE FROM blocklist WHERE domain = ?1 AND username = ?2",
                        params![domain, username],
                    )?;
                }
                RosterChange::Photo(photo) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO account_photos (domain, username, photo)
                         VALUES (?1, ?2, ?3)",
                        params![domain, username, &**photo],
                    )?;
                }
                RosterChange::ArchivePrefs(prefs) => {
                    for table in ["archive_prefs", "archive_prefs_jids"] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE domain = ?1 AND username = ?2"),
                            params![domain, username],
                        )?;
                    }
                    let Some(prefs) = prefs else {
                        continue;
                    };
                    tx.execute(
                        "INSERT INTO archive_prefs (domain, username, default_policy)
                         VALUES (?1, ?2, ?3)",
                        params![domain, username, prefs.default.name()],
                    )?;
                    let mut listed = tx.prepare_cached(
                        "INSERT OR REPLACE INTO archive_prefs_jids (domain, username, jid, keep)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    // Never wins over always, should a JID be in both.
                    let lists = [(&prefs.always, true), (&prefs.never, false)];
                    for (jids, keep) in lists {
                        for jid in jids {
                            listed.execute(params![domain, username, jid, keep])?;
                        }
                    }
                }
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO roster_versions (domain, username, version) VALUES (?1, ?2, ?3)",
            params![domain, username, version as i64],
        )?;
        tx.commit()
    }
}

/// The default of the account's archiving preferences, if it has any.
pub(super) fn archive_default(
    db: &Connection,
    domain: &str,
    username: &str,
) -> rusqlite::Result<Option<ArchiveDefault>> {
    let default: Option<String> = db
        .prepare_cached(
            "SELECT default_policy FROM archive_prefs WHERE domain = ?1 AND username = ?2",
        )?
        .query_row(params![domain, username], |r| r.get(0))
        .optional()?;
    Ok(default.map(|d| ArchiveDefault::parse(&d).unwrap_or_default()))
}

/// The account's archiving preferences (XEP-0313), if not the default.
pub(super) fn archive_prefs(
    db: &Connection,
    domain: &str,
    username: &str,
) -> rusqlite::Result<Option<ArchivePrefs>> {
    let Some(default) = archive_default(db, domain, username)? else {
        return Ok(None);
    };
    let mut prefs = ArchivePrefs {
        default,
        ..ArchivePrefs::default()
    };
    let mut listed = db.prepare_cached(
        "SELECT jid, keep FROM archive_prefs_jids WHERE domain = ?1 AND username = ?2",
    )?;
    let rows = listed.query_map(params![domain, username], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
    })?;
    for row in rows {
        let (jid, keep) = row?;
        match keep {
            true => prefs.always.insert(jid),
            false => prefs.never.insert(jid),
        };
    }
    Ok(Some(prefs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Account, Storage};
    use rookery_core::sasl::StoredCredentials;
    use rookery_core::{StorageAnswer, StorageRequest};

    #[test]
    fn roster_writes_are_read_back_with_groups_pending_blocklist_photo_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds)
            .unwrap();
        let user = BareJid::new("juliet@localhost").unwrap();
        let mut item = RosterItem::new(BareJid::new("romeo@localhost").unwrap());
        item.subscription = Subscription::Both;
        item.groups = vec!["Friends".into(), "Verona\nfolk".into()];
        item.name = Some("Romeo".into());
        let changes = vec![
            RosterChange::Upsert(item),
            RosterChange::PendingIn(
                BareJid::new("tybalt@localhost").unwrap(),
                Some("<presence/>".into()),
            ),
            RosterChange::Block("tybalt@localhost".into()),
            RosterChange::Block("spam.example".into()),
            RosterChange::Unblock("spam.example".into()),
            RosterChange::Photo("25c9b37ae36a0a08318d4dca7ca57ea98d776821".into()),
        ];
        let write = StorageRequest::WriteRoster {
            user: user.clone(),
            changes: changes.clone(),
            version: 7,
        };
        assert_eq!(s.execute(&write), StorageAnswer::Written);
        let mut expected = Roster::default();
        expected.apply(&changes, 7);
        let reopened = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(reopened.load_roster(&user).unwrap(), Some(expected));
    }

    #[test]
    fn the_last_activity_of_an_account_is_kept_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds)
            .unwrap();
        let user = BareJid::new("juliet@localhost").unwrap();
        assert_eq!(s.load_last_activity(&user).unwrap(), None);
        s.store_last_activity(&user, 10, "away").unwrap();
        s.store_last_activity(&user, 20, "Gone to Mantua").unwrap();
        let reopened = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(
            reopened.load_last_activity(&user).unwrap(),
            Some((20, "Gone to Mantua".to_owned()))
        );
        // No account, no record.
        let ghost = BareJid::new("ghost@localhost").unwrap();
        s.store_last_activity(&ghost, 30, "").unwrap();
        assert_eq!(s.load_last_activity(&ghost).unwrap(), None);
    }

    #[test]
    fn roster_of_a_missing_account_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(
            s.load_roster(&BareJid::new("ghost@localhost").unwrap())
                .unwrap(),
            None
        );
    }
}
