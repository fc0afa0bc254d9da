//! Storage as effects: the core asks, the shim answers.
//!
//! The core never blocks on storage. It emits a [`StorageRequest`] tagged
//! with a [`RequestId`]; the shim runs it against the configured backend
//! (embedded SQLite by default) and reports the [`StorageAnswer`] through
//! `Server::handle_storage`.

use crate::sasl::StoredCredentials;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageRequest {
    /// The SCRAM credentials of `username@domain`.
    LoadCredentials { username: String, domain: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageAnswer {
    /// `None` when the account does not exist.
    Credentials(Option<StoredCredentials>),
    /// The backend failed; the reason is for logs.
    Failed(String),
}
