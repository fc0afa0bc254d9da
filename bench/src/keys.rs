//! A file of derived SCRAM keys, so that repeated runs against the same
//! server skip the client's PBKDF2: one line per account,
//! `MECHANISM USERNAME SALT ITERATIONS SALTED_PASSWORD` (base64 where binary).

use crate::session::{Account, Salted};
use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rookery_tests::scram::Hash;
use std::collections::HashMap;
use std::path::Path;

/// The keys for `hash` in `path`, by username; none if it does not exist.
pub fn load(path: &Path, hash: Hash) -> Result<HashMap<String, Salted>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut keys = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [mechanism, username, salt, iterations, salted] = fields[..] else {
            continue;
        };
        if mechanism != hash.mechanism() {
            continue;
        }
        let parsed = (|| -> Result<Salted> {
            Ok(Salted {
                salt: B64.decode(salt)?,
                iterations: iterations.parse()?,
                password: B64.decode(salted)?,
            })
        })();
        if let Ok(entry) = parsed {
            keys.insert(username.to_owned(), entry);
        }
    }
    Ok(keys)
}

/// Add the keys of `accounts` to `path` (entries of other mechanisms and
/// accounts stay).
pub fn store(path: &Path, hash: Hash, accounts: &[Account]) -> Result<()> {
    let mut lines: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    };
    let ours: std::collections::HashSet<&str> =
        accounts.iter().map(|a| a.username.as_str()).collect();
    lines.retain(|l| {
        let mut f = l.split(' ');
        !(f.next() == Some(hash.mechanism()) && f.next().is_some_and(|u| ours.contains(u)))
    });
    for account in accounts {
        if let Some(s) = &account.salted {
            lines.push(format!(
                "{} {} {} {} {}",
                hash.mechanism(),
                account.username,
                B64.encode(&s.salt),
                s.iterations,
                B64.encode(&s.password)
            ));
        }
    }
    std::fs::write(path, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_load_back_for_their_mechanism_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let account = Account {
            username: "u1".into(),
            password: "pw".into(),
            salted: Some(Salted {
                salt: b"salt".to_vec(),
                iterations: 4096,
                password: vec![1, 2, 3],
            }),
        };
        store(&path, Hash::Sha1, std::slice::from_ref(&account)).unwrap();
        let keys = load(&path, Hash::Sha1).unwrap();
        assert_eq!(keys["u1"].password, vec![1, 2, 3]);
        assert!(load(&path, Hash::Sha256).unwrap().is_empty());
    }
}
