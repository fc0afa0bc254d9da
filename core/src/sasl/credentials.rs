//! What the server keeps of a password: RFC 5802 salted-password data.
//!
//! One salt and iteration count serve both hash functions, so that a user
//! created once can log in with SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN. The
//! plain password is never stored; PLAIN is checked by recomputing the
//! SCRAM-SHA-256 StoredKey.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<Sha1>>(key, data),
            ScramHash::Sha256 => run::<Hmac<Sha256>>(key, data),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, iterations).to_vec()
            }
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// StoredKey and ServerKey for one hash function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// Everything needed to verify a password, and nothing that reveals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub sha1: ScramKeys,
    pub sha256: ScramKeys,
}

/// RFC 7677 asks for at least 4096 iterations.
pub const DEFAULT_ITERATIONS: u32 = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordError {
    /// The password is not valid under SASLprep (RFC 4013), e.g. it holds
    /// control characters, or it is empty.
    Invalid,
}

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("password is empty or not valid under SASLprep")
    }
}

impl std::error::Error for PasswordError {}

impl StoredCredentials {
    /// Derive credentials from a password. The salt comes from the caller
    /// (the core has no RNG); use at least 16 random bytes.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, PasswordError> {
        let prepared = prepare_password(password)?;
        let keys = |hash: ScramHash| {
            let salted = hash.salted_password(prepared.as_bytes(), salt, iterations);
            let client_key = hash.hmac(&salted, b"Client Key");
            ScramKeys {
                stored_key: hash.hash(&client_key),
                server_key: hash.hmac(&salted, b"Server Key"),
            }
        };
        Ok(StoredCredentials {
            salt: salt.to_vec(),
            iterations,
            sha1: keys(ScramHash::Sha1),
            sha256: keys(ScramHash::Sha256),
        })
    }

    /// Credentials for a user that does not exist, the same every time
    /// for the same name and different for every server: a stranger gets a
    /// SCRAM challenge with a salt that looks like a real one, and PLAIN
    /// does the same hashing, so neither the answers nor their timing tell
    /// which accounts exist. The keys are not derived from any password:
    /// no proof can match them.
    pub fn stand_in(secret: &[u8; 32], username: &str, iterations: u32) -> Self {
        let derive = |hash: ScramHash, label: &str| {
            let mut data = label.as_bytes().to_vec();
            data.push(0);
            data.extend_from_slice(username.as_bytes());
            hash.hmac(secret, &data)
        };
        let mut salt = derive(ScramHash::Sha256, "salt");
        // Real salts are 16 random bytes (`adduser`).
        salt.truncate(16);
        StoredCredentials {
            salt,
            iterations,
            sha1: ScramKeys {
                stored_key: derive(ScramHash::Sha1, "sha1 stored key"),
                server_key: derive(ScramHash::Sha1, "sha1 server key"),
            },
            sha256: ScramKeys {
                stored_key: derive(ScramHash::Sha256, "sha256 stored key"),
                server_key: derive(ScramHash::Sha256, "sha256 server key"),
            },
        }
    }

    pub fn keys(&self, hash: ScramHash) -> &ScramKeys {
        match hash {
            ScramHash::Sha1 => &self.sha1,
            ScramHash::Sha256 => &self.sha256,
        }
    }

    /// Check a plain password (SASL PLAIN) against the stored keys.
    pub fn verify_password(&self, password: &str) -> bool {
        let Ok(prepared) = prepare_password(password) else {
            return false;
        };
        let hash = ScramHash::Sha256;
        let salted = hash.salted_password(prepared.as_bytes(), &self.salt, self.iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        constant_time_eq(&hash.hash(&client_key), &self.sha256.stored_key)
    }
}

fn prepare_password(password: &str) -> Result<String, PasswordError> {
    match stringprep::saslprep(password) {
        Ok(p) if !p.is_empty() => Ok(p.into_owned()),
        _ => Err(PasswordError::Invalid),
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn plain_password_verifies_against_derived_keys() {
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let c = StoredCredentials::derive("pencil", &salt, 4096).unwrap();
        assert!(c.verify_password("pencil"));
        assert!(!c.verify_password("pencils"));
    }

    #[test]
    fn stand_in_credentials_are_stable_per_user_and_secret() {
        let a = StoredCredentials::stand_in(&[1; 32], "ghost", 4096);
        assert_eq!(a, StoredCredentials::stand_in(&[1; 32], "ghost", 4096));
        assert_eq!(a.salt.len(), 16);
        assert_ne!(
            a.salt,
            StoredCredentials::stand_in(&[1; 32], "ghost2", 4096).salt
        );
        assert_ne!(
            a.salt,
            StoredCredentials::stand_in(&[2; 32], "ghost", 4096).salt
        );
    }

    #[test]
    fn empty_password_is_refused() {
        assert_eq!(
            StoredCredentials::derive("", b"salt", 4096),
            Err(PasswordError::Invalid)
        );
    }
}
