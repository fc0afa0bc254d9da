//! Message archives in SQLite (XEP-0313).
//!
//! A message is stored once, under its number (the microsecond it was
//! archived, made unique by the core), in a table whose row id is that
//! number, so archiving appends. Each archive that holds it has a small
//! entry keyed by the archive's own number (one per account, never given
//! twice) and the message's, in a table without row ids: the
//! key is the archive order, so a page is a range read along it that
//! stops one row past the page (which says whether it is the last), at
//! the same cost for a thousand messages as for a million. A second
//! index serves queries by the other party. Numbers are stamps, so time
//! bounds are key ranges too.
//!
//! Archiving is the hottest write there is, so it does few lookups of its
//! own: which accounts have an archive, and its number, are remembered
//! here once read; how much each archive holds (for its caps) is kept
//! beside its number, and grows as its entries are made. A message's
//! text goes when no archive holds it any more, or when it expires.
//!
//! Nor does it write into the archives' keys one message at a time: each
//! message's entries land in the pages of two accounts, so a commit of a
//! hundred chats rewrote hundreds of pages into the write-ahead log (and
//! the checkpoint copied them again), a dozen kilobytes per chat. A
//! message is one row appended to `archive_messages` instead, naming the
//! archives that hold it; its entries are made later, in bulk and in key
//! order, so that each page of the keyed table is written once for many
//! of them: every [`INDEX_AT`] entries, and before anything reads,
//! trims, expires or deletes archives. `archive_indexed` says up to which
//! number that has been done.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::roster::ArchiveDefault;
use rookery_core::{ArchiveQuery, ArchivedMessage};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;

/// Entries made at once. More writes each page of the keyed table less
/// often; the commit that makes them takes longer (milliseconds at this
/// size), and an archive may hold up to this many messages past its cap
/// until then (no query sees them: queries index first).
const INDEX_AT: usize = 16384;
/// Or once their messages hold this many bytes: what an archive may hold
/// past its byte cap, however large the messages.
const INDEX_AT_BYTES: usize = 16 << 20;

/// Schema 7: archived messages, each archive's entries, and the accounts
/// that have one (for expiry).
pub(super) fn migrate_to_7(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE archive_messages (
             seq INTEGER PRIMARY KEY,
             stanza TEXT NOT NULL
         );
         CREATE TABLE archive (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             seq INTEGER NOT NULL,
             with_bare TEXT NOT NULL,
             with_resource TEXT,
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

/// Schema 8: each message names the (up to two) archives that hold it,
/// and its other party there, until its entries are made; and each
/// account's archiving preferences (roster data, see `roster.rs`).
pub(super) fn migrate_to_8(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         ALTER TABLE archive_messages ADD COLUMN a_owner TEXT;
         ALTER TABLE archive_messages ADD COLUMN a_with TEXT;
         ALTER TABLE archive_messages ADD COLUMN a_resource TEXT;
         ALTER TABLE archive_messages ADD COLUMN b_owner TEXT;
         ALTER TABLE archive_messages ADD COLUMN b_with TEXT;
         ALTER TABLE archive_messages ADD COLUMN b_resource TEXT;
         CREATE TABLE archive_indexed (up_to INTEGER NOT NULL);
         CREATE TABLE archive_prefs (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             default_policy TEXT NOT NULL,
             PRIMARY KEY (domain, username)
         ) WITHOUT ROWID;
         CREATE TABLE archive_prefs_jids (
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             jid TEXT NOT NULL,
             keep INTEGER NOT NULL,
             PRIMARY KEY (domain, username, jid)
         ) WITHOUT ROWID;
         INSERT INTO archive_indexed SELECT COALESCE(MAX(seq), 0) FROM archive_messages;
         PRAGMA user_version = 8;
         COMMIT;",
    )
}

/// Schema 10: archives are keyed by a number per account instead of
/// its domain and username. The keys are a fraction of the size, so the
/// bulk indexing of [`SqliteStorage::index_pending`] takes half the time
/// (it was most of what archiving cost the storage thread), and a number
/// is never given twice: a message archived since this schema for an
/// account deleted since (by another process) never reaches an account
/// of the same name made later.
///
/// Each archive keeps its size (messages, bytes) beside its number, and
/// each entry its message's bytes, kept up as entries come and go: a
/// server started beside large archives counted each one's messages (and
/// read their texts, for the bytes) at its first write, seconds of
/// storage time for a few thousand accounts.
///
/// Only accounts that exist get a number: entries, and messages waiting
/// for their entries, of any other (an account deleted while a server
/// still archived for it) are dropped here rather than handed to a
/// namesake. Messages name their archives by number in two new columns
/// (`a_id`, `b_id`), set here for those still waiting; the names of
/// schema 8 are no longer written. Rewriting every stored message to drop
/// them would need the archive's size again in free disk.
pub(super) fn migrate_to_10(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE archive_owners_10 (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             messages INTEGER NOT NULL DEFAULT 0,
             bytes INTEGER NOT NULL DEFAULT 0,
             UNIQUE (domain, username)
         );
         INSERT INTO archive_owners_10 (domain, username)
             SELECT domain, username FROM accounts c
             WHERE EXISTS (SELECT 1 FROM archive_owners o
                           WHERE o.domain = c.domain AND o.username = c.username)
                OR EXISTS (SELECT 1 FROM archive a
                           WHERE a.domain = c.domain AND a.username = c.username);
         CREATE TABLE archive_10 (
             owner INTEGER NOT NULL,
             seq INTEGER NOT NULL,
             with_bare TEXT NOT NULL,
             with_resource TEXT,
             bytes INTEGER NOT NULL,
             PRIMARY KEY (owner, seq)
         ) WITHOUT ROWID;
         INSERT INTO archive_10
             SELECT o.id, a.seq, a.with_bare, a.with_resource,
                    COALESCE(LENGTH(CAST(m.stanza AS BLOB)), 0)
             FROM archive a JOIN archive_owners_10 o
                 ON o.domain = a.domain AND o.username = a.username
             LEFT JOIN archive_messages m ON m.seq = a.seq
             ORDER BY 1, 2;
         UPDATE archive_owners_10 SET (messages, bytes) =
             (SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM archive_10 WHERE owner = id);
         ALTER TABLE archive_messages ADD COLUMN a_id INTEGER;
         ALTER TABLE archive_messages ADD COLUMN b_id INTEGER;
         UPDATE archive_messages SET
             a_id = (SELECT id FROM archive_owners_10
                     WHERE domain = substr(a_owner, instr(a_owner, '@') + 1)
                     AND username = substr(a_owner, 1, instr(a_owner, '@') - 1)),
             b_id = (SELECT id FROM archive_owners_10
                     WHERE domain = substr(b_owner, instr(b_owner, '@') + 1)
                     AND username = substr(b_owner, 1, instr(b_owner, '@') - 1))
         WHERE seq > (SELECT up_to FROM archive_indexed);
         DROP TABLE archive;
         DROP TABLE archive_owners;
         ALTER TABLE archive_owners_10 RENAME TO archive_owners;
         ALTER TABLE archive_10 RENAME TO archive;
         CREATE INDEX archive_by_party ON archive (owner, with_bare, seq);
         PRAGMA user_version = 10;
         COMMIT;",
    )
}

/// How much an archive holds.
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    messages: u64,
    bytes: u64,
}

/// What archiving remembers between writes.
#[derive(Default)]
pub(super) struct Archives {
    /// The numbers of the archives written to since the start, by account
    /// (only accounts that exist, as of the last indexing).
    owners: HashMap<(String, String), i64>,
    /// Where expiry goes on: the archive after which the next batch
    /// starts.
    expiry_cursor: Option<i64>,
    /// Entries this process added without making them, their bytes, and
    /// the number up to which every message has its entries (as last
    /// read or set).
    pending: usize,
    pending_bytes: usize,
    indexed: i64,
    /// What those entries add to each archive's size, if every entry
    /// waiting was added by this process since `indexed` (not after a
    /// rollback, nor at the start): then indexing adds these instead of
    /// summing the waiting messages again.
    tally: HashMap<i64, Size>,
    tally_complete: bool,
    /// The caps (messages, bytes) the last write came with, applied once
    /// its entries are made.
    caps: Option<(usize, usize)>,
    /// SQLite's count of other connections' commits when `owners` was
    /// last checked against the database.
    data_version: i64,
}

impl Archives {
    /// The account was deleted: nothing of it is remembered.
    pub(super) fn forget(&mut self, domain: &str, username: &str) {
        self.owners
            .remove(&(domain.to_owned(), username.to_owned()));
    }

    /// A transaction was rolled back: the archives numbered in it may
    /// not exist, and entries made in it are made again before the next
    /// read.
    pub(super) fn forget_all(&mut self) {
        self.owners.clear();
        self.pending = self.pending.max(1);
        self.tally.clear();
        self.tally_complete = false;
    }
}

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

impl SqliteStorage {
    /// Keep a message once, naming each archive that holds it (those of
    /// accounts that exist; the first, the recipient's, unless it blocks
    /// the sender; those whose preferences storage is told to apply, if
    /// they keep it). No savepoint for the append: it is one statement,
    /// and what a failure after it leaves (a text no archive holds) goes
    /// with the next expiry.
    pub(super) fn archive_message(
        &mut self,
        seq: u64,
        stanza: &str,
        archives: &[(BareJid, (String, Option<String>))],
        (unless_blocked, prefs_of): (&[String], &[BareJid]),
        (max, max_bytes): (usize, usize),
    ) -> rusqlite::Result<()> {
        let seq = seq.min(i64::MAX as u64) as i64;
        self.archives.caps = Some((max, max_bytes));
        let mut holders = Vec::with_capacity(archives.len());
        for (i, (user, party)) in archives.iter().enumerate() {
            let (domain, username) = parts(user);
            let Some(owner) = self.archive_owner(domain, username)? else {
                continue;
            };
            if i == 0 && self.blocks_any(domain, username, unless_blocked)? {
                continue;
            }
            if prefs_of.contains(user) && !self.prefs_keep(domain, username, &party.0)? {
                continue;
            }
            // A message has one entry in an archive, and two archives at
            // most: sizes count what is named here.
            if holders.len() < 2 && holders.iter().all(|(o, _)| *o != owner) {
                holders.push((owner, party));
            }
        }
        if holders.is_empty() {
            return Ok(());
        }
        // A number below those already indexed (a clock set back across
        // a restart) gets its entries at once: indexing never looks back.
        let at_once = seq <= self.archives.indexed;
        let named = |n: usize| {
            holders
                .get(n)
                .filter(|_| !at_once)
                .map(|(owner, (bare, resource))| (*owner, bare.as_str(), resource.as_deref()))
        };
        let (a, b) = (named(0), named(1));
        // A number already taken archives nothing: entries must never
        // point at another conversation's text.
        let added = self
            .db
            .prepare_cached(
                "INSERT OR IGNORE INTO archive_messages
                 (seq, stanza, a_id, a_with, a_resource, b_id, b_with, b_resource)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                seq,
                stanza,
                a.map(|a| a.0),
                a.map(|a| a.1),
                a.and_then(|a| a.2),
                b.map(|b| b.0),
                b.map(|b| b.1),
                b.and_then(|b| b.2),
            ])?;
        if added == 0 {
            return Ok(());
        }
        if at_once {
            // Entries and sizes together, then trimmed (after every
            // entry is made: a trim deletes a text no entry names).
            return self.atomically(|s| {
                for (owner, (bare, resource)) in &holders {
                    let made = s
                        .db
                        .prepare_cached(
                            "INSERT OR IGNORE INTO archive
                             (owner, seq, with_bare, with_resource, bytes)
                             SELECT ?1, ?2, ?3, ?4, ?5
                             WHERE EXISTS (SELECT 1 FROM archive_owners WHERE id = ?1)",
                        )?
                        .execute(params![owner, seq, bare, resource, stanza.len() as i64])?;
                    grow(&s.db, *owner, made as i64, (made * stanza.len()) as i64)?;
                }
                for (owner, _) in &holders {
                    s.trim(*owner)?;
                }
                Ok(())
            });
        }
        for (owner, _) in &holders {
            self.archives.pending += 1;
            self.archives.pending_bytes += stanza.len();
            let added = self.archives.tally.entry(*owner).or_default();
            added.messages += 1;
            added.bytes += stanza.len() as u64;
        }
        if self.archives.pending >= INDEX_AT || self.archives.pending_bytes >= INDEX_AT_BYTES {
            self.index_pending()?;
        }
        Ok(())
    }

    /// Make the entries of every message past `archive_indexed`, in key
    /// order, then hold the archives that grew to their caps
    /// ([`SqliteStorage::trim`]). All of it or none
    /// ([`SqliteStorage::atomically`]). The mark is read there, not
    /// remembered, and only ever moves on: another process
    /// (`rookery deluser`) may index too, and entries made once and
    /// deleted since (an account removed, an archive trimmed) must not
    /// come back.
    pub(super) fn index_pending(&mut self) -> rusqlite::Result<()> {
        let done = self.atomically(Self::index_and_trim);
        if done.is_err() {
            self.archives.forget_all();
        }
        done
    }

    fn index_and_trim(&mut self) -> rusqlite::Result<()> {
        let from: i64 = self
            .db
            .prepare_cached("SELECT up_to FROM archive_indexed")?
            .query_row([], |r| r.get(0))?;
        let up_to: Option<i64> = self
            .db
            .prepare_cached("SELECT MAX(seq) FROM archive_messages")?
            .query_row([], |r| r.get(0))?;
        let up_to = up_to.unwrap_or(0).max(from);
        // The archives that grew, to be held to their caps.
        let mut grown: Vec<i64> = Vec::new();
        if up_to > from {
            // The entries, and their sums for each archive's size, of
            // the same messages.
            const PENDING: &str = "
                SELECT a_id AS o, seq, a_with AS w, a_resource AS r,
                       LENGTH(CAST(stanza AS BLOB)) AS n
                FROM archive_messages
                WHERE seq > ?1 AND seq <= ?2 AND a_id IS NOT NULL
                UNION ALL
                SELECT b_id, seq, b_with, b_resource, LENGTH(CAST(stanza AS BLOB))
                FROM archive_messages
                WHERE seq > ?1 AND seq <= ?2 AND b_id IS NOT NULL AND b_id IS NOT a_id";
            self.db
                .prepare_cached(&format!(
                    "INSERT OR IGNORE INTO archive (owner, seq, with_bare, with_resource, bytes)
                     SELECT o, seq, w, r, n FROM ({PENDING})
                     -- Not for an account deleted since (by another process).
                     WHERE o IN (SELECT id FROM archive_owners)
                     ORDER BY 1, 2"
                ))?
                .execute(params![from, up_to])?;
            // Another process may have indexed some of this process's
            // writes (`rookery deluser`) since.
            grown = if self.archives.tally_complete && from == self.archives.indexed {
                for (owner, added) in &self.archives.tally {
                    grow(&self.db, *owner, added.messages as i64, added.bytes as i64)?;
                }
                self.archives.tally.keys().copied().collect()
            } else {
                self.db
                    .prepare_cached(&format!(
                        "UPDATE archive_owners
                         SET messages = archive_owners.messages + e.added,
                             bytes = archive_owners.bytes + e.added_bytes
                         FROM (SELECT o, COUNT(*) AS added, SUM(n) AS added_bytes
                               FROM ({PENDING}) GROUP BY o) AS e
                         WHERE archive_owners.id = e.o
                         RETURNING id"
                    ))?
                    .query_map(params![from, up_to], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            self.db
                .prepare_cached("UPDATE archive_indexed SET up_to = MAX(up_to, ?1)")?
                .execute(params![up_to])?;
        }
        self.archives.indexed = up_to;
        self.archives.pending = 0;
        self.archives.pending_bytes = 0;
        self.archives.tally.clear();
        self.archives.tally_complete = true;
        // Archives deleted since by another process (the only way they go
        // unseen here) are no longer written to: what was archived for
        // them got no entries above. Looked for only after such a commit.
        let version: i64 = self
            .db
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if version != self.archives.data_version {
            let mut exists = self
                .db
                .prepare_cached("SELECT 1 FROM archive_owners WHERE id = ?1")?;
            let mut gone = Vec::new();
            for (key, owner) in &self.archives.owners {
                if !exists.exists([owner])? {
                    gone.push(key.clone());
                }
            }
            drop(exists);
            for key in gone {
                self.archives.owners.remove(&key);
            }
            self.archives.data_version = version;
        }
        grown.sort_unstable();
        for owner in grown {
            self.trim(owner)?;
        }
        Ok(())
    }

    /// Hold archive `owner` to the caps of this process's last write
    /// (none before it): its oldest go until both hold, the newest always
    /// stays, and at most [`INDEX_AT`] go at once (the rest with its next
    /// growth), however far a lowered cap leaves it. Only archives that
    /// grow are trimmed: one an operator's lower cap finds over it keeps
    /// what it has until its next message.
    fn trim(&mut self, owner: i64) -> rusqlite::Result<()> {
        let Some((max, max_bytes)) = self.archives.caps else {
            return Ok(());
        };
        let (max, max_bytes) = (
            max.min(i64::MAX as usize) as i64,
            max_bytes.min(i64::MAX as usize) as i64,
        );
        let within = |(messages, bytes): (i64, i64)| messages <= max && bytes <= max_bytes;
        let Some(mut kept) = size(&self.db, owner)? else {
            return Ok(());
        };
        if within(kept) {
            return Ok(());
        }
        // The oldest, a few at a time from the key's start (as many as
        // the message cap asks, then more while the byte cap does); a
        // row is dropped only if a newer one follows it, so the newest
        // always stays.
        let mut oldest = self.db.prepare_cached(
            "SELECT seq, with_bare, bytes FROM archive WHERE owner = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let before = kept;
        let (mut dropped, mut dropped_bytes) = (Vec::new(), 0);
        let (mut last, mut at_end) = (i64::MIN, false);
        while !within(kept) && !at_end && dropped.len() < INDEX_AT {
            let want = if kept.0 > max {
                (kept.0 - max).min(256) as usize
            } else {
                16
            };
            let want = want.min(INDEX_AT - dropped.len());
            let rows: Vec<(i64, String, i64)> = oldest
                .query_map(params![owner, last, want as i64 + 1], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            at_end = rows.len() <= want;
            if at_end {
                // Near the newest, or the counter said more than the
                // archive holds (it never should): trim by a count.
                let (messages, bytes): (i64, i64) = self
                    .db
                    .prepare_cached(
                        "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM archive WHERE owner = ?1",
                    )?
                    .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))?;
                kept = (messages - dropped.len() as i64, bytes - dropped_bytes);
            }
            let droppable = rows.len().min(want).min(rows.len().saturating_sub(1));
            for (seq, with, n) in rows.into_iter().take(droppable) {
                if within(kept) {
                    break;
                }
                kept = (kept.0 - 1, kept.1 - n);
                dropped_bytes += n;
                last = seq;
                dropped.push((seq, with));
            }
        }
        drop(oldest);
        forget_entries(&self.db, owner, &dropped)?;
        if at_end {
            self.db
                .prepare_cached(
                    "UPDATE archive_owners SET messages = ?2, bytes = ?3 WHERE id = ?1",
                )?
                .execute(params![owner, kept.0, kept.1])?;
            return Ok(());
        }
        grow(&self.db, owner, kept.0 - before.0, kept.1 - before.1)
    }

    /// Whether the account's archiving preferences keep a message with
    /// `with` (a bare JID): two key lookups, and the roster's for its
    /// `roster` default, whatever the size of its lists.
    fn prefs_keep(&self, domain: &str, username: &str, with: &str) -> rusqlite::Result<bool> {
        let Some(default) = super::roster::archive_default(&self.db, domain, username)? else {
            return Ok(true);
        };
        let listed: Option<bool> = self
            .db
            .prepare_cached(
                "SELECT keep FROM archive_prefs_jids WHERE domain = ?1 AND username = ?2 AND jid = ?3",
            )?
            .query_row(params![domain, username, with], |r| r.get(0))
            .optional()?;
        let in_roster = listed.is_none()
            && default == ArchiveDefault::Roster
            && self
                .db
                .prepare_cached(
                    "SELECT 1 FROM roster_items WHERE domain = ?1 AND username = ?2 AND contact = ?3",
                )?
                .exists(params![domain, username, with])?;
        Ok(default.keeps(listed, in_roster))
    }

    /// Whether the account blocks any of these JIDs (XEP-0191).
    fn blocks_any(&self, domain: &str, username: &str, jids: &[String]) -> rusqlite::Result<bool> {
        let mut blocked = self.db.prepare_cached(
            "SELECT 1 FROM blocklist WHERE domain = ?1 AND username = ?2 AND jid = ?3",
        )?;
        for jid in jids {
            if blocked.exists(params![domain, username, jid])? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The number of the account's archive, given at its first message
    /// and remembered; `None` if the account does not exist.
    fn archive_owner(&mut self, domain: &str, username: &str) -> rusqlite::Result<Option<i64>> {
        let key = (domain.to_owned(), username.to_owned());
        if let Some(owner) = self.archives.owners.get(&key) {
            return Ok(Some(*owner));
        }
        // One statement: an account deleted (by another process) between
        // a check and the insert would leave a number for its namesake.
        self.db
            .prepare_cached(
                "INSERT OR IGNORE INTO archive_owners (domain, username)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM accounts
                                             WHERE domain = ?1 AND username = ?2)",
            )?
            .execute(params![domain, username])?;
        let owner = owner_id(&self.db, domain, username)?;
        if let Some(id) = owner {
            self.archives.owners.insert(key, id);
        }
        Ok(owner)
    }

    /// A page of the account's archive; `None` if a bound is not in it.
    pub(super) fn query_archive(
        &mut self,
        user: &BareJid,
        query: &ArchiveQuery,
    ) -> rusqlite::Result<Option<(Vec<ArchivedMessage>, bool)>> {
        if self.archives.pending > 0 {
            self.index_pending()?;
        }
        let (domain, username) = parts(user);
        // No transaction of its own: it may run inside a group commit.
        let db = &self.db;
        // An account without an archive has none of the numbers, which
        // start at 1.
        let owner = owner_id(db, domain, username)?.unwrap_or(0);
        for seq in [query.after, query.before].into_iter().flatten() {
            let known = db
                .prepare_cached("SELECT 1 FROM archive WHERE owner = ?1 AND seq = ?2")?
                .query_row(params![owner, seq as i64], |_| Ok(()))
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
        }
        let mut sql = String::from(
            "SELECT a.seq, m.stanza FROM archive a JOIN archive_messages m ON m.seq = a.seq
             WHERE a.owner = ?1",
        );
        let mut values: Vec<Value> = vec![owner.into()];
        let mut condition = |sql: &mut String, clause: &str, value: Value| {
            values.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", values.len()));
        };
        if let Some((bare, resource)) = &query.with {
            condition(&mut sql, "a.with_bare =", bare.clone().into());
            if let Some(resource) = resource {
                condition(&mut sql, "a.with_resource =", resource.clone().into());
            }
        }
        let bounds = [
            (query.start, "a.seq >="),
            (query.end, "a.seq <="),
            (query.after, "a.seq >"),
            (query.before, "a.seq <"),
        ];
        for (bound, clause) in bounds {
            if let Some(seq) = bound {
                condition(&mut sql, clause, (seq.min(i64::MAX as u64) as i64).into());
            }
        }
        let order = if query.backward { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY a.seq {order} LIMIT {}", query.max + 1));
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
        self.index_pending()?;
        let tx = self.db.savepoint()?;
        let cursor = self.archives.expiry_cursor.take();
        let owners: Vec<i64> = tx
            .prepare_cached("SELECT id FROM archive_owners WHERE id > ?1 ORDER BY id LIMIT 100")?
            .query_map([cursor.unwrap_or(0)], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut expired = 0;
        // The last archive done with: one cut short by `max` is visited
        // again.
        let mut last = cursor;
        let visited_all = owners.len() < 100;
        let before = before.min(i64::MAX as u64) as i64;
        for owner in owners {
            let left = (max - expired) as i64;
            let gone: Vec<i64> = tx
                .prepare_cached(
                    "DELETE FROM archive WHERE owner = ?1 AND seq IN (
                         SELECT seq FROM archive WHERE owner = ?1 AND seq < ?2
                         ORDER BY seq LIMIT ?3)
                     RETURNING bytes",
                )?
                .query_map(params![owner, before, left], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !gone.is_empty() {
                grow(&tx, owner, -(gone.len() as i64), -gone.iter().sum::<i64>())?;
            }
            expired += gone.len();
            if expired == max {
                break;
            }
            last = Some(owner);
        }
        // Texts go by number alone: the entries still naming them (of
        // accounts not visited yet) are expired too. No page shows them;
        // they count in their archive's size until expiry visits it.
        tx.prepare_cached(
            "DELETE FROM archive_messages WHERE seq IN (
                 SELECT seq FROM archive_messages WHERE seq < ?1 LIMIT ?2)",
        )?
        .execute(params![before, max as i64])?;
        tx.commit()?;
        let more = expired == max || !visited_all;
        // Past the last account, the next round starts from the first.
        self.archives.expiry_cursor = if more { last } else { None };
        Ok((expired, more))
    }
}

/// The number of the account's archive, if it has one.
fn owner_id(db: &Connection, domain: &str, username: &str) -> rusqlite::Result<Option<i64>> {
    db.prepare_cached("SELECT id FROM archive_owners WHERE domain = ?1 AND username = ?2")?
        .query_row(params![domain, username], |r| r.get(0))
        .optional()
}

/// What archive `owner` holds, as kept beside it: messages and bytes.
fn size(db: &Connection, owner: i64) -> rusqlite::Result<Option<(i64, i64)>> {
    db.prepare_cached("SELECT messages, bytes FROM archive_owners WHERE id = ?1")?
        .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Archive `owner` holds `messages` more messages of `bytes` more bytes
/// (or fewer, if negative).
fn grow(db: &Connection, owner: i64, messages: i64, bytes: i64) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE archive_owners SET messages = messages + ?2, bytes = bytes + ?3 WHERE id = ?1",
    )?
    .execute(params![owner, messages, bytes])?;
    Ok(())
}

/// Delete the account's archive: its entries, the texts no other archive
/// holds, and its number (never given again).
pub(super) fn delete_archive(
    db: &Connection,
    domain: &str,
    username: &str,
) -> rusqlite::Result<()> {
    let Some(owner) = owner_id(db, domain, username)? else {
        return Ok(());
    };
    let entries: Vec<(i64, String)> = db
        .prepare("SELECT seq, with_bare FROM archive WHERE owner = ?1")?
        .query_map([owner], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    forget_entries(db, owner, &entries)?;
    db.execute("DELETE FROM archive_owners WHERE id = ?1", [owner])?;
    Ok(())
}

/// Delete these entries of archive `owner`, and each message's text
/// unless the other party's archive holds it too.
fn forget_entries(db: &Connection, owner: i64, entries: &[(i64, String)]) -> rusqlite::Result<()> {
    for (seq, with) in entries {
        db.prepare_cached("DELETE FROM archive WHERE owner = ?1 AND seq = ?2")?
            .execute(params![owner, seq])?;
        let other = jid::BareJid::new(with).ok();
        let shared = match other.as_ref().map(parts) {
            Some((d, u)) => db
                .prepare_cached(
                    "SELECT 1 FROM archive a JOIN archive_owners o ON o.id = a.owner
                     WHERE o.domain = ?1 AND o.username = ?2 AND a.seq = ?3",
                )?
                .query_row(params![d, u, seq], |_| Ok(()))
                .optional()?
                .is_some(),
            None => false,
        };
        if !shared {
            db.prepare_cached("DELETE FROM archive_messages WHERE seq = ?1")?
                .execute(params![seq])?;
        }
    }
    Ok(())
}
