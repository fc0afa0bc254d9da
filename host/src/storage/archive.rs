//! Message archives in SQLite (XEP-0313).
//!
//! One row per message per archive, keyed by account and number (the
//! microsecond it was archived, made unique by the core), in a table
//! without row ids: the key is the archive order, so a page is a range
//! read along it that stops one row past the page (which says whether it
//! is the last), at the same cost for a thousand messages as for a
//! million. A second index serves queries by the other party. Numbers
//! are stamps, so time bounds are key ranges too.
//!
//! Archiving is the hottest write there is (two rows per chat), so it
//! does no lookups of its own: which accounts exist, and how many
//! messages each archive holds (for its cap), are remembered here once
//! read.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::{ArchiveQuery, ArchivedMessage};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;

/// Schema 7: archives, and the accounts that have one (for expiry).
pub(super) fn migrate_to_7(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE archive (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             seq INTEGER NOT NULL,
             with_bare TEXT NOT NULL,
             with_resource TEXT,
             stanza TEXT NOT NULL,
             PRIMARY KEY (domain, username, seq)
         ) WITHOUT ROWID;
         CREATE INDEX archive_by_party ON archive (domain, username, with_bare, seq);
         CREATE TABLE archive_owners (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 7;
         COMMIT;",
    )
}

/// What archiving remembers between writes.
#[derive(Default)]
pub(super) struct Archives {
    /// Messages in each archive written to since the start, by account
    /// (only accounts that exist).
    sizes: HashMap<(String, String), u64>,
    /// Where expiry goes on: the account after which the next batch
    /// starts.
    expiry_cursor: Option<(String, String)>,
}

impl Archives {
    /// The account was deleted: nothing of it is remembered.
    pub(super) fn forget(&mut self, domain: &str, username: &str) {
        self.sizes.remove(&(domain.to_owned(), username.to_owned()));
    }
}

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

/// What `archive_message` needs besides the account.
pub(super) struct Entry<'a> {
    pub seq: u64,
    pub with: &'a (String, Option<String>),
    pub stanza: &'a str,
}

impl SqliteStorage {
    /// Keep a message, then trim the account's oldest past `max`.
    pub(super) fn archive_message(
        &mut self,
        user: &BareJid,
        entry: Entry,
        max: usize,
    ) -> rusqlite::Result<()> {
        let (domain, username) = parts(user);
        let key = (domain.to_owned(), username.to_owned());
        let tx = self.db.savepoint()?;
        let size = match self.archives.sizes.get(&key) {
            Some(size) => *size,
            None => {
                if !super::account_exists(&tx, domain, username)? {
                    return Ok(());
                }
                tx.execute(
                    "INSERT OR IGNORE INTO archive_owners (domain, username) VALUES (?1, ?2)",
                    params![domain, username],
                )?;
                tx.query_row(
                    "SELECT COUNT(*) FROM archive WHERE domain = ?1 AND username = ?2",
                    params![domain, username],
                    |r| r.get::<_, i64>(0),
                )? as u64
            }
        };
        let (bare, resource) = entry.with;
        // A repeated number (a clock set back) keeps the first message.
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO archive (domain, username, seq, with_bare, with_resource, stanza)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                domain,
                username,
                entry.seq as i64,
                bare,
                resource,
                entry.stanza
            ])? as u64;
        let mut size = size + added;
        if size > max as u64 {
            let excess = size - max as u64;
            tx.prepare_cached(
                "DELETE FROM archive WHERE domain = ?1 AND username = ?2 AND seq IN (
                     SELECT seq FROM archive WHERE domain = ?1 AND username = ?2
                     ORDER BY seq LIMIT ?3)",
            )?
            .execute(params![domain, username, excess as i64])?;
            size = max as u64;
        }
        tx.commit()?;
        // (Should the group commit around this fail, the count is a
        // little high until the next expiry: the cap trims early.)
        self.archives.sizes.insert(key, size);
        Ok(())
    }

    /// A page of the account's archive; `None` if a bound is not in it.
    pub(super) fn query_archive(
        &self,
        user: &BareJid,
        query: &ArchiveQuery,
    ) -> rusqlite::Result<Option<(Vec<ArchivedMessage>, bool)>> {
        let (domain, username) = parts(user);
        // No transaction of its own: it may run inside a group commit.
        let db = &self.db;
        for seq in [query.after, query.before].into_iter().flatten() {
            let known = db
                .prepare_cached(
                    "SELECT 1 FROM archive WHERE domain = ?1 AND username = ?2 AND seq = ?3",
                )?
                .query_row(params![domain, username, seq as i64], |_| Ok(()))
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
        }
        let mut sql =
            String::from("SELECT seq, stanza FROM archive WHERE domain = ?1 AND username = ?2");
        let mut values: Vec<Value> = vec![domain.to_owned().into(), username.to_owned().into()];
        let mut condition = |sql: &mut String, clause: &str, value: Value| {
            values.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", values.len()));
        };
        if let Some((bare, resource)) = &query.with {
            condition(&mut sql, "with_bare =", bare.clone().into());
            if let Some(resource) = resource {
                condition(&mut sql, "with_resource =", resource.clone().into());
            }
        }
        let bounds = [
            (query.start, "seq >="),
            (query.end, "seq <="),
            (query.after, "seq >"),
            (query.before, "seq <"),
        ];
        for (bound, clause) in bounds {
            if let Some(seq) = bound {
                condition(&mut sql, clause, (seq.min(i64::MAX as u64) as i64).into());
            }
        }
        let order = if query.backward { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT {}", query.max + 1));
        let mut statement = db.prepare_cached(&sql)?;
        let rows = statement.query_map(params_from_iter(values), |r| {
            Ok(ArchivedMessage {
                seq: r.get::<_, i64>(0)? as u64,
                stanza: r.get(1)?,
            })
        })?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut complete = messages.len() <= query.max;
        messages.truncate(query.max);
        // Within the byte budget, nearest the cursor first.
        let mut bytes = 0;
        let fits = messages
            .iter()
            .position(|m| {
                bytes += m.stanza.len();
                bytes > query.max_bytes
            })
            .map_or(messages.len(), |over| over.max(1));
        if fits < messages.len() {
            messages.truncate(fits);
            complete = false;
        }
        if query.backward {
            messages.reverse();
        }
        Ok(Some((messages, complete)))
    }

    /// Delete up to `max` messages numbered below `before`, going through
    /// the archives one account after another from where the last batch
    /// stopped: how many went, and whether accounts are left to visit.
    pub(super) fn expire_archive(
        &mut self,
        before: u64,
        max: usize,
    ) -> rusqlite::Result<(usize, bool)> {
        let tx = self.db.savepoint()?;
        let cursor = self.archives.expiry_cursor.take();
        let (domain, username) = cursor.clone().unwrap_or_default();
        let owners: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT domain, username FROM archive_owners
                 WHERE (domain, username) > (?1, ?2) ORDER BY domain, username LIMIT 100",
            )?
            .query_map(params![domain, username], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut expired = 0;
        // The last account done with: one cut short by `max` is visited
        // again.
        let mut last = cursor;
        let visited_all = owners.len() < 100;
        for (domain, username) in owners {
            let left = max - expired;
            let n = tx
                .prepare_cached(
                    "DELETE FROM archive WHERE domain = ?1 AND username = ?2 AND seq IN (
                         SELECT seq FROM archive WHERE domain = ?1 AND username = ?2 AND seq < ?3
                         ORDER BY seq LIMIT ?4)",
                )?
                .execute(params![
                    domain,
                    username,
                    before.min(i64::MAX as u64) as i64,
                    left as i64
                ])?;
            expired += n;
            if n > 0 {
                self.archives.forget(&domain, &username);
            }
            if expired == max {
                break;
            }
            last = Some((domain, username));
        }
        tx.commit()?;
        let more = expired == max || !visited_all;
        // Past the last account, the next round starts from the first.
        self.archives.expiry_cursor = if more { last } else { None };
        Ok((expired, more))
    }
}
