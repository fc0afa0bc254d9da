//! Message archives in SQLite (XEP-0313), one table for every account,
//! in archive order (`seq`).
//!
//! Pages are read along an index in `seq` order and stop after one row
//! more than asked for (which says whether the page is the last), so a
//! page costs the same at a thousand messages as at a million. Each
//! account's message count is kept beside the archive, so that the cap
//! costs one row read per message, not a count.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::{ArchiveQuery, ArchivedMessage};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

/// Schema 7: archives.
pub(super) fn migrate_to_7(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE archive (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             id TEXT NOT NULL,
             stamp INTEGER NOT NULL,
             with_bare TEXT NOT NULL,
             with_resource TEXT,
             stanza TEXT NOT NULL
         );
         CREATE INDEX archive_by_user ON archive (domain, username, seq);
         CREATE INDEX archive_by_contact ON archive (domain, username, with_bare, seq);
         CREATE UNIQUE INDEX archive_by_id ON archive (domain, username, id);
         CREATE TABLE archive_sizes (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             messages INTEGER NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         PRAGMA user_version = 7;
         COMMIT;",
    )
}

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

/// What `archive_message` needs besides the account.
pub(super) struct Entry<'a> {
    pub id: &'a str,
    pub with: &'a (String, Option<String>),
    pub stamp: u64,
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
        let tx = self.db.savepoint()?;
        if !super::account_exists(&tx, domain, username)? {
            return Ok(());
        }
        let (bare, resource) = entry.with;
        // A repeated id (a clock set back) keeps the first message.
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO archive (domain, username, id, stamp, with_bare, with_resource, stanza)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                domain,
                username,
                entry.id,
                entry.stamp as i64,
                bare,
                resource,
                entry.stanza
            ])?;
        if added == 1 {
            let messages: i64 = tx
                .prepare_cached(
                    "INSERT INTO archive_sizes (domain, username, messages) VALUES (?1, ?2, 1)
                     ON CONFLICT (domain, username) DO UPDATE SET messages = messages + 1
                     RETURNING messages",
                )?
                .query_row(params![domain, username], |r| r.get(0))?;
            let excess = messages - max as i64;
            if excess > 0 {
                tx.prepare_cached(
                    "DELETE FROM archive WHERE seq IN (
                         SELECT seq FROM archive WHERE domain = ?1 AND username = ?2
                         ORDER BY seq LIMIT ?3)",
                )?
                .execute(params![domain, username, excess])?;
                tx.prepare_cached(
                    "UPDATE archive_sizes SET messages = ?3 WHERE domain = ?1 AND username = ?2",
                )?
                .execute(params![domain, username, max as i64])?;
            }
        }
        tx.commit()
    }

    /// A page of the account's archive; `None` if an id bound is not in it.
    pub(super) fn query_archive(
        &self,
        user: &BareJid,
        query: &ArchiveQuery,
    ) -> rusqlite::Result<Option<(Vec<ArchivedMessage>, bool)>> {
        let (domain, username) = parts(user);
        // No transaction of its own: it may run inside a group commit.
        let tx = &self.db;
        let seq_of = |id: &str| -> rusqlite::Result<Option<i64>> {
            tx.prepare_cached(
                "SELECT seq FROM archive WHERE domain = ?1 AND username = ?2 AND id = ?3",
            )?
            .query_row(params![domain, username, id], |r| r.get(0))
            .optional()
        };
        let mut sql = String::from(
            "SELECT id, stamp, stanza FROM archive WHERE domain = ?1 AND username = ?2",
        );
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
        if let Some(start) = query.start {
            condition(&mut sql, "stamp >=", (start as i64).into());
        }
        if let Some(end) = query.end {
            condition(&mut sql, "stamp <=", (end as i64).into());
        }
        for (id, clause) in [(&query.after_id, "seq >"), (&query.before_id, "seq <")] {
            if let Some(id) = id {
                let Some(seq) = seq_of(id)? else {
                    return Ok(None);
                };
                condition(&mut sql, clause, seq.into());
            }
        }
        let order = if query.backward { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT {}", query.max + 1));
        let mut statement = tx.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(values), |r| {
            Ok(ArchivedMessage {
                id: r.get(0)?,
                stamp: r.get::<_, i64>(1)? as u64,
                stanza: r.get(2)?,
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

    /// Delete up to `max` of the oldest messages stamped before `before`;
    /// how many went.
    pub(super) fn expire_archive(&mut self, before: u64, max: usize) -> rusqlite::Result<usize> {
        let tx = self.db.savepoint()?;
        // The oldest rows first, by the primary key: no index on stamps
        // needed, since stamps grow with seq (but for a clock set back).
        let expired: Vec<(i64, String, String)> = tx
            .prepare_cached(
                "SELECT seq, domain, username FROM (SELECT seq, domain, username, stamp FROM archive ORDER BY seq LIMIT ?1)
                 WHERE stamp < ?2",
            )?
            .query_map(params![max as i64, before as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, domain, username) in &expired {
            tx.prepare_cached("DELETE FROM archive WHERE seq = ?1")?
                .execute(params![seq])?;
            tx.prepare_cached(
                "UPDATE archive_sizes SET messages = messages - 1 WHERE domain = ?1 AND username = ?2",
            )?
            .execute(params![domain, username])?;
        }
        tx.commit()?;
        Ok(expired.len())
    }
}
