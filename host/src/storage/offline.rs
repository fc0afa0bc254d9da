//! Offline messages in SQLite (XEP-0160), in arrival order.

use super::SqliteStorage;
use jid::BareJid;
use rookery_core::StoreOutcome;
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

fn parts(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or_default(),
    )
}

impl SqliteStorage {
    /// Keep a message unless the account is missing or over quota; durable
    /// when this returns.
    pub(super) fn store_offline(
        &mut self,
        user: &BareJid,
        stanza: &str,
        quota: usize,
    ) -> rusqlite::Result<StoreOutcome> {
        let (domain, username) = parts(user);
        let tx = self.db.transaction()?;
        let exists = super::account_exists(&tx, domain, username)?;
        if !exists {
            return Ok(StoreOutcome::NoSuchUser);
        }
        let waiting: i64 = tx.query_row(
            "SELECT COUNT(*) FROM offline_messages WHERE domain = ?1 AND username = ?2",
            params![domain, username],
            |r| r.get(0),
        )?;
        if waiting as u64 >= quota as u64 {
            return Ok(StoreOutcome::QuotaExceeded);
        }
        tx.execute(
            "INSERT INTO offline_messages (domain, username, stanza) VALUES (?1, ?2, ?3)",
            params![domain, username, stanza],
        )?;
        tx.commit()?;
        Ok(StoreOutcome::Stored)
    }

    /// Every stored message, oldest first, deleted in the same transaction.
    pub(super) fn take_offline(&mut self, user: &BareJid) -> rusqlite::Result<Vec<String>> {
        let (domain, username) = parts(user);
        let tx = self.db.transaction()?;
        let messages = {
            let mut select =
                tx.prepare("SELECT stanza FROM offline_messages WHERE domain = ?1 AND username = ?2 ORDER BY id")?;
            let rows = select.query_map(params![domain, username], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.execute(
            "DELETE FROM offline_messages WHERE domain = ?1 AND username = ?2",
            params![domain, username],
        )?;
        tx.commit()?;
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Account, Storage};
    use rookery_core::sasl::StoredCredentials;

    fn storage() -> (tempfile::TempDir, SqliteStorage, BareJid) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(dir.path()).unwrap();
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).unwrap();
        s.create_account(&Account::parse("juliet@localhost").unwrap(), &creds)
            .unwrap();
        (dir, s, BareJid::new("juliet@localhost").unwrap())
    }

    #[test]
    fn messages_come_back_in_order_once() {
        let (_dir, mut s, user) = storage();
        for m in ["<message id='1'/>", "<message id='2'/>"] {
            assert_eq!(s.store_offline(&user, m, 10).unwrap(), StoreOutcome::Stored);
        }
        assert_eq!(
            s.take_offline(&user).unwrap(),
            vec!["<message id='1'/>", "<message id='2'/>"]
        );
        assert!(s.take_offline(&user).unwrap().is_empty());
    }

    #[test]
    fn quota_is_enforced() {
        let (_dir, mut s, user) = storage();
        assert_eq!(
            s.store_offline(&user, "<message/>", 1).unwrap(),
            StoreOutcome::Stored
        );
        assert_eq!(
            s.store_offline(&user, "<message/>", 1).unwrap(),
            StoreOutcome::QuotaExceeded
        );
    }

    #[test]
    fn missing_account_is_reported() {
        let (_dir, mut s, _) = storage();
        let ghost = BareJid::new("ghost@localhost").unwrap();
        assert_eq!(
            s.store_offline(&ghost, "<message/>", 1).unwrap(),
            StoreOutcome::NoSuchUser
        );
    }
}
