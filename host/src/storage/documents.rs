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
    /// in the order of `users` then `keys`; those past `max_bytes` are
    /// left out (but at least one comes), so that one large document
    /// does not crowd out all the others.
    pub(super) fn load_documents(
        &self,
        users: &[BareJid],
        store: DocumentStore,
        keys: &[String],
        max_bytes: usize,
    ) -> rusqlite::Result<Vec<(BareJid, String, String)>> {
        if users.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        // One query per domain (there is usually one): the primary key
        // answers both lists.
        let mut domains: Vec<&str> = users.iter().map(|u| u.domain().as_str()).collect();
        domains.sort_unstable();
        domains.dedup();
        let mut rows: Vec<(usize, usize, String)> = Vec::new();
        for domain in domains {
            let mine: Vec<(usize, &str)> = users
                .iter()
                .enumerate()
                .filter(|(_, u)| u.domain().as_str() == domain)
                .map(|(i, u)| (i, u.node().map(|n| n.as_str()).unwrap_or_default()))
                .collect();
            let list = |n: usize| vec!["?"; n].join(", ");
            let sql = format!(
                "SELECT username, key, document FROM documents
                 WHERE domain = ? AND store = ? AND username IN ({}) AND key IN ({})",
                list(mine.len()),
                list(keys.len())
            );
            let mut params: Vec<&str> = vec![domain, store.name()];
            params.extend(mine.iter().map(|(_, name)| *name));
            params.extend(keys.iter().map(String::as_str));
            let mut statement = self.db.prepare(&sql)?;
            let found = statement.query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            for row in found {
                let (username, key, document) = row?;
                let user = mine
                    .iter()
                    .find(|(_, name)| *name == username)
                    .map(|(i, _)| *i);
                let key = keys.iter().position(|k| *k == key);
                if let (Some(user), Some(key)) = (user, key) {
                    rows.push((user, key, document));
                }
            }
        }
        rows.sort_unstable_by_key(|(user, key, _)| (*user, *key));
        let mut bytes = 0;
        let mut kept = Vec::new();
        for (user, key, document) in rows {
            if bytes + document.len() > max_bytes && !kept.is_empty() {
                continue;
            }
            bytes += document.len();
            kept.push((users[user].clone(), keys[key].clone(), document));
        }
        Ok(kept)
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
