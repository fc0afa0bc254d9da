//! An account's small stores of XML documents (XEP-0054 vCards, XEP-0049
//! private XML), one row per document.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::{DocumentStore, StoreOutcome};
use rusqlite::{params, Connection, OptionalExtension};

/// Schema 6: documents, keyed by account, store and key.
pub(super) fn migrate_to_6(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE documents (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             store TEXT NOT NULL,
             key TEXT NOT NULL,
             document TEXT NOT NULL,
             PRIMARY KEY (domain, username, store, key)
         ) WITHOUT ROWID;
         PRAGMA user_version = 6;
         COMMIT;",
    )
}

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

impl SqliteStorage {
    pub(super) fn load_document(
        &self,
        user: &BareJid,
        store: DocumentStore,
        key: &str,
    ) -> rusqlite::Result<Option<String>> {
        let (domain, username) = parts(user);
        self.db
            .prepare_cached(
                "SELECT document FROM documents
                 WHERE domain = ?1 AND username = ?2 AND store = ?3 AND key = ?4",
            )?
            .query_row(params![domain, username, store.name(), key], |r| r.get(0))
            .optional()
    }

    /// The documents under any of `keys` in each of the users' stores,
    /// up to `max_bytes` (but at least one).
    pub(super) fn load_documents(
        &self,
        users: &[BareJid],
        store: DocumentStore,
        keys: &[String],
        max_bytes: usize,
    ) -> rusqlite::Result<Vec<(BareJid, String, String)>> {
        let mut found = Vec::new();
        let mut bytes = 0;
        let mut statement = self.db.prepare_cached(
            "SELECT document FROM documents
             WHERE domain = ?1 AND username = ?2 AND store = ?3 AND key = ?4",
        )?;
        for user in users {
            let (domain, username) = parts(user);
            for key in keys {
                let document: Option<String> = statement
                    .query_row(params![domain, username, store.name(), key], |r| r.get(0))
                    .optional()?;
                let Some(document) = document else { continue };
                bytes += document.len();
                if bytes > max_bytes && !found.is_empty() {
                    return Ok(found);
                }
                found.push((user.clone(), key.clone(), document));
            }
        }
        Ok(found)
    }

    /// Replace or remove documents, all or none; durable when this
    /// returns.
    pub(super) fn store_documents(
        &mut self,
        user: &BareJid,
        store: DocumentStore,
        documents: &[(String, Option<String>)],
        (max_documents, max_bytes): (usize, usize),
    ) -> rusqlite::Result<StoreOutcome> {
        let (domain, username) = parts(user);
        // A savepoint: its own transaction, or a part of a group commit;
        // dropped without a commit, it rolls back.
        let tx = self.db.savepoint()?;
        if !super::account_exists(&tx, domain, username)? {
            return Ok(StoreOutcome::NoSuchUser);
        }
        let before = usage(&tx, (domain, username), store)?;
        for (key, document) in documents {
            match document {
                Some(document) => tx.execute(
                    "INSERT OR REPLACE INTO documents (domain, username, store, key, document)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![domain, username, store.name(), key, document],
                )?,
                None => tx.execute(
                    "DELETE FROM documents
                     WHERE domain = ?1 AND username = ?2 AND store = ?3 AND key = ?4",
                    params![domain, username, store.name(), key],
                )?,
            };
        }
        // Past a limit only by growing: a store over a lowered limit can
        // still shrink.
        let after = usage(&tx, (domain, username), store)?;
        let grows_past = |now: u64, then: u64, max: usize| now > max as u64 && now > then;
        if grows_past(after.0, before.0, max_documents) || grows_past(after.1, before.1, max_bytes)
        {
            return Ok(StoreOutcome::QuotaExceeded);
        }
        tx.commit()?;
        Ok(StoreOutcome::Stored)
    }
}

/// How many documents the account's store holds, and their bytes.
fn usage(
    db: &Connection,
    (domain, username): (&str, &str),
    store: DocumentStore,
) -> rusqlite::Result<(u64, u64)> {
    db.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(document AS BLOB))), 0) FROM documents
         WHERE domain = ?1 AND username = ?2 AND store = ?3",
    )?
    .query_row(params![domain, username, store.name()], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })
}
