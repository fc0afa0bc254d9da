//! Offline messages in SQLite (XEP-0160), in arrival order.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::{OfflineMessage, StoreOutcome};
use rusqlite::{params, Connection};

/// Schema 3: offline messages.
pub(super) fn migrate_to_3(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         CREATE TABLE offline_messages (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             domain TEXT NOT NULL,
             username TEXT NOT NULL,
             stanza TEXT NOT NULL
         );
         CREATE INDEX offline_by_user ON offline_messages (domain, username, id);
         PRAGMA user_version = 3;
         COMMIT;",
    )
}

/// Schema 4: who sent each message, for the per-sender quota. Messages
/// stored before it count for no sender.
pub(super) fn migrate_to_4(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         ALTER TABLE offline_messages ADD COLUMN sender TEXT NOT NULL DEFAULT '';
         PRAGMA user_version = 4;
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
    /// Keep a message unless the account is missing, or over its quota
    /// or the sender's share of it (`quotas`: per user, per sender);
    /// durable when this returns.
    pub(super) fn store_offline(
        &mut self,
        user: &BareJid,
        sender: &BareJid,
        unless_blocked: &[String],
        stanza: &str,
        (quota, sender_quota): (usize, usize),
    ) -> rusqlite::Result<StoreOutcome> {
        let (domain, username) = parts(user);
        // A savepoint: its own transaction, or a part of a group commit.
        let tx = self.db.savepoint()?;
        let exists = super::account_exists(&tx, domain, username)?;
        if !exists {
            return Ok(StoreOutcome::NoSuchUser);
        }
        let mut blocked = tx.prepare_cached(
            "SELECT 1 FROM blocklist WHERE domain = ?1 AND username = ?2 AND jid = ?3",
        )?;
        for jid in unless_blocked {
            if blocked.exists(params![domain, username, jid])? {
                return Ok(StoreOutcome::Blocked);
            }
        }
        drop(blocked);
        let waiting: i64 = tx.query_row(
            "SELECT COUNT(*) FROM offline_messages WHERE domain = ?1 AND username = ?2",
            params![domain, username],
            |r| r.get(0),
        )?;
        if waiting as u64 >= quota as u64 {
            return Ok(StoreOutcome::QuotaExceeded);
        }
        let from_sender: i64 = tx.query_row(
            "SELECT COUNT(*) FROM offline_messages WHERE domain = ?1 AND username = ?2 AND sender = ?3",
            params![domain, username, sender.as_str()],
            |r| r.get(0),
        )?;
        if from_sender as u64 >= sender_quota as u64 {
            return Ok(StoreOutcome::QuotaExceeded);
        }
        tx.execute(
            "INSERT INTO offline_messages (domain, username, stanza, sender) VALUES (?1, ?2, ?3, ?4)",
            params![domain, username, stanza, sender.as_str()],
        )?;
        tx.commit()?;
        Ok(StoreOutcome::Stored)
    }

    /// Stored messages numbered after `after`, oldest first, up to
    /// `max_bytes` of them (at least one), and whether more follow.
    pub(super) fn load_offline(
        &mut self,
        user: &BareJid,
        after: u64,
        max_bytes: usize,
    ) -> rusqlite::Result<(Vec<OfflineMessage>, bool)> {
        let (domain, username) = parts(user);
        let mut select = self.db.prepare_cached(
            "SELECT id, stanza FROM offline_messages
             WHERE domain = ?1 AND username = ?2 AND id > ?3 ORDER BY id",
        )?;
        let mut rows = select.query(params![domain, username, after as i64])?;
        let mut messages = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next()? {
            let stanza: String = row.get(1)?;
            if !messages.is_empty() && bytes + stanza.len() > max_bytes {
                return Ok((messages, true));
            }
            bytes += stanza.len();
            let id: i64 = row.get(0)?;
            messages.push(OfflineMessage {
                id: id as u64,
                stanza,
            });
        }
        Ok((messages, false))
    }

    /// Delete the messages numbered up to `up_to`: written to the client.
    pub(super) fn delete_offline(&mut self, user: &BareJid, up_to: u64) -> rusqlite::Result<()> {
        let (domain, username) = parts(user);
        self.db
            .prepare_cached(
                "DELETE FROM offline_messages WHERE domain = ?1 AND username = ?2 AND id <= ?3",
            )?
            .execute(params![domain, username, up_to as i64])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Account, Storage};
    use rookery_core::sasl::StoredCredentials;

    fn romeo() -> BareJid {
        BareJid::new("romeo@localhost").unwrap()
    }

    fn storage() -> (tempfile::TempDir, SqliteStorage, BareJid) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds)
            .unwrap();
        (dir, s, BareJid::new("juliet@localhost").unwrap())
    }

    #[test]
    fn messages_come_back_in_order_in_pages_and_stay_until_deleted() {
        let (_dir, mut s, user) = storage();
        for m in [
            "<message id='1'/>",
            "<message id='2'/>",
            "<message id='3'/>",
        ] {
            assert_eq!(
                s.store_offline(&user, &romeo(), &[], m, (10, 10)).unwrap(),
                StoreOutcome::Stored
            );
        }
        let (page, more) = s.load_offline(&user, 0, 40).unwrap();
        let stanzas: Vec<_> = page.iter().map(|m| m.stanza.as_str()).collect();
        assert_eq!(stanzas, ["<message id='1'/>", "<message id='2'/>"]);
        assert!(more);
        // Not deleted by reading.
        assert_eq!(s.load_offline(&user, 0, 40).unwrap().0, page);
        s.delete_offline(&user, page[1].id).unwrap();
        let (rest, more) = s.load_offline(&user, 0, 40).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].stanza, "<message id='3'/>");
        assert!(!more);
        // A message larger than the page still comes, alone.
        let (alone, _) = s.load_offline(&user, 0, 1).unwrap();
        assert_eq!(alone.len(), 1);
    }

    #[test]
    fn quota_is_enforced() {
        let (_dir, mut s, user) = storage();
        assert_eq!(
            s.store_offline(&user, &romeo(), &[], "<message/>", (1, 1))
                .unwrap(),
            StoreOutcome::Stored
        );
        assert_eq!(
            s.store_offline(&user, &romeo(), &[], "<message/>", (1, 1))
                .unwrap(),
            StoreOutcome::QuotaExceeded
        );
    }

    #[test]
    fn one_sender_fills_only_its_share_of_the_quota() {
        let (_dir, mut s, user) = storage();
        let quotas = (3, 2);
        for outcome in [
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::QuotaExceeded,
        ] {
            assert_eq!(
                s.store_offline(&user, &romeo(), &[], "<message/>", quotas)
                    .unwrap(),
                outcome
            );
        }
        let nurse = BareJid::new("nurse@localhost").unwrap();
        assert_eq!(
            s.store_offline(&user, &nurse, &[], "<message/>", quotas)
                .unwrap(),
            StoreOutcome::Stored
        );
    }

    #[test]
    fn missing_account_is_reported() {
        let (_dir, mut s, _) = storage();
        let ghost = BareJid::new("ghost@localhost").unwrap();
        assert_eq!(
            s.store_offline(&ghost, &romeo(), &[], "<message/>", (1, 1))
                .unwrap(),
            StoreOutcome::NoSuchUser
        );
    }

    #[test]
    fn a_message_from_a_blocked_sender_is_not_stored() {
        let (_dir, mut s, user) = storage();
        s.execute(&rookery_core::StorageRequest::WriteRoster {
            user: user.clone(),
            changes: vec![rookery_core::roster::RosterChange::Block(
                "romeo@localhost".into(),
            )],
            version: 1,
        });
        let candidates = [
            "romeo@localhost/orchard".to_owned(),
            "romeo@localhost".to_owned(),
        ];
        assert_eq!(
            s.store_offline(&user, &romeo(), &candidates, "<message/>", (10, 10))
                .unwrap(),
            StoreOutcome::Blocked
        );
        let nurse = BareJid::new("nurse@localhost").unwrap();
        let other = [
            "nurse@localhost/house".to_owned(),
            "nurse@localhost".to_owned(),
        ];
        assert_eq!(
            s.store_offline(&user, &nurse, &other, "<message/>", (10, 10))
                .unwrap(),
            StoreOutcome::Stored
        );
    }
}
