//! Storage as effects: the core asks, the shim answers.
//!
//! The core never blocks on storage. It emits a [`StorageRequest`] tagged
//! with a [`RequestId`]; the shim runs it against the configured backend
//! (embedded SQLite by default) and reports the [`StorageAnswer`] through
//! `Server::handle_storage`.

use crate::roster::{Roster, RosterChange};
use crate::sasl::StoredCredentials;
use jid::BareJid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageRequest {
    /// The SCRAM credentials of `username@domain`.
    LoadCredentials { username: String, domain: String },
    /// Check a PLAIN password for `username@domain` with
    /// [`crate::sasl::verify_plain`]; answered with
    /// [`StorageAnswer::PlainVerified`]. PBKDF2 takes milliseconds: it
    /// runs with storage, not on the thread serving connections.
    VerifyPlain {
        username: String,
        domain: String,
        password: crate::sasl::Password,
        stand_in: crate::sasl::StandIn,
    },
    /// XEP-0077: create `username@domain` with SCRAM credentials the
    /// backend derives from `password` with a fresh random salt and
    /// `iterations`; answered with [`StorageAnswer::AccountCreated`].
    CreateAccount {
        username: String,
        domain: String,
        password: crate::sasl::Password,
        iterations: u32,
    },
    /// Replace an account's password likewise; answered with `Written`.
    SetPassword {
        user: BareJid,
        password: crate::sasl::Password,
        iterations: u32,
    },
    /// Delete an account and everything kept for it; answered with
    /// `Written`.
    DeleteAccount { user: BareJid },
    /// A user's roster, pending requests and roster version.
    LoadRoster { user: BareJid },
    /// Apply `changes` atomically and set the roster version; answer only
    /// once durable.
    WriteRoster {
        user: BareJid,
        changes: Vec<RosterChange>,
        version: u64,
    },
    /// Keep a message from `sender` for an offline user (XEP-0160),
    /// unless the user has `quota` messages waiting already, or
    /// `sender_quota` from this sender, or blocks any of
    /// `unless_blocked` (XEP-0191: the entries that would cover the
    /// sender, as the core computes them).
    StoreOffline {
        user: BareJid,
        sender: BareJid,
        unless_blocked: Vec<String>,
        stanza: String,
        quota: usize,
        sender_quota: usize,
    },
    /// Stored messages after the one numbered `after` (0: from the
    /// first), oldest first, up to `max_bytes` (but at least one). Nothing
    /// is deleted: a message leaves storage only once written to the
    /// client ([`StorageRequest::DeleteOffline`]).
    LoadOffline {
        user: BareJid,
        after: u64,
        max_bytes: usize,
    },
    /// Delete stored messages numbered up to `up_to`: they were written
    /// to the client.
    DeleteOffline { user: BareJid, up_to: u64 },
    /// XEP-0012: the account's last session ended at `at` (seconds since
    /// the Unix epoch) with this status. Answered with `Written`.
    StoreLastActivity {
        user: BareJid,
        at: u64,
        status: String,
    },
    /// What `StoreLastActivity` last kept for the account.
    LoadLastActivity { user: BareJid },
    /// XEP-0313: keep a message as number `seq` (see [`ArchiveQuery`])
    /// in the archive of each of `archives` (an account, and the other
    /// party as a bare JID and resource), and drop each one's oldest
    /// messages past `max_messages` or `max_bytes`. Answered with
    /// `Written`.
    ArchiveMessage {
        seq: u64,
        stanza: String,
        archives: Vec<(BareJid, (String, Option<String>))>,
        /// The first archive (the recipient's) skips the message if its
        /// account blocks any of these (XEP-0191, as for `StoreOffline`).
        unless_blocked: Vec<String>,
        /// Accounts whose archive takes the message only if their
        /// archiving preferences (XEP-0313) say so: the core could not
        /// tell, not holding them.
        prefs_of: Vec<BareJid>,
        max_messages: usize,
        /// Bytes of archived stanzas per account; past it the oldest go.
        max_bytes: usize,
    },
    /// A page of the account's archive, answered with
    /// [`StorageAnswer::Archive`].
    QueryArchive { user: BareJid, query: ArchiveQuery },
    /// Delete up to `max` archived messages, of any accounts, numbered
    /// below `before`; answered with [`StorageAnswer::Expired`].
    ExpireArchive { before: u64, max: usize },
    /// One document of an account's store, answered with
    /// [`StorageAnswer::Document`].
    LoadDocument {
        user: BareJid,
        store: DocumentStore,
        key: String,
    },
    /// The documents under any of `keys` in the store of each of
    /// `users`, answered with [`StorageAnswer::Documents`], in the order
    /// of `users` then `keys`: those that would pass `max_bytes` are left
    /// out (but at least one comes).
    LoadDocuments {
        users: Vec<BareJid>,
        store: DocumentStore,
        keys: Vec<String>,
        max_bytes: usize,
    },
    /// Replace (`Some`) or remove (`None`) documents of an account's
    /// store, all or none: refused with `QuotaExceeded` if the store
    /// would then hold more than `max_documents`, or more than
    /// `max_bytes` in all. Answered with [`StorageAnswer::Stored`] once
    /// durable.
    StoreDocuments {
        user: BareJid,
        store: DocumentStore,
        documents: Vec<(String, Option<String>)>,
        max_documents: usize,
        max_bytes: usize,
    },
}

/// XEP-0313: what an archive query asks for. An archived message is
/// numbered by when it was archived (microseconds since the Unix epoch,
/// made unique): `after` and `before` are exclusive bounds on those
/// numbers and must name archived messages; `start` and `end` are
/// inclusive. The page runs forward from the oldest match, or `backward`
/// from the newest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Messages with this bare JID, and with this resource of it if set.
    pub with: Option<(String, Option<String>)>,
    /// Microseconds since the Unix epoch.
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub max: usize,
    /// Bytes of stanzas in the page, at most (but at least one message).
    pub max_bytes: usize,
    pub backward: bool,
}

/// One archived message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// Its number: when it was archived, in microseconds since the Unix
    /// epoch (its XEP-0359 stanza-id, in decimal).
    pub seq: u64,
    pub stanza: String,
}

/// An account's small stores of XML documents, each document under a
/// key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentStore {
    /// XEP-0054: the account's vCard, under the empty key.
    VCard,
    /// XEP-0049: private XML, one fragment per element name and
    /// namespace.
    Private,
    /// XEP-0163: one document per personal eventing node, its
    /// configuration and items, under the node's name.
    Pep,
}

impl DocumentStore {
    /// The store's name in storage.
    pub fn name(self) -> &'static str {
        match self {
            DocumentStore::VCard => "vcard",
            DocumentStore::Private => "private",
            DocumentStore::Pep => "pep",
        }
    }
}

/// One stored offline message and its number (increasing in arrival
/// order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: u64,
    pub stanza: String,
}

/// The outcome of [`StorageRequest::StoreOffline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    QuotaExceeded,
    NoSuchUser,
    /// The user blocks the sender.
    Blocked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageAnswer {
    /// `None` when the account does not exist.
    Credentials(Option<StoredCredentials>),
    /// The account exists and the password is right.
    PlainVerified(bool),
    /// The account was created; `false` if it existed already.
    AccountCreated(bool),
    /// `None` when the account does not exist.
    Roster(Option<Roster>),
    /// A write is durable.
    Written,
    Stored(StoreOutcome),
    /// A page of stored messages, oldest first; `more` when others
    /// follow it.
    Offline {
        messages: Vec<OfflineMessage>,
        more: bool,
    },
    /// When the account's last session ended, and its status; `None`
    /// if never recorded.
    LastActivity(Option<(u64, String)>),
    /// A page of an archive, in archive order, and whether it reaches the
    /// end of the matches in its direction; `None` when an id the query
    /// names is not in the archive.
    Archive(Option<(Vec<ArchivedMessage>, bool)>),
    /// How many expired messages were deleted, and whether expiry has
    /// more to do now.
    Expired {
        deleted: usize,
        more: bool,
    },
    /// A stored document; `None` if there is none under that key.
    Document(Option<String>),
    /// Stored documents: whose, under which key, and the document.
    Documents(Vec<(BareJid, String, String)>),
    /// The backend failed; the reason is for logs.
    Failed(String),
}

impl StorageRequest {
    /// Whether the request may be answered before it would survive a
    /// power cut (it survives a crash or kill of the server at once: the
    /// system holds what it wrote). True of an archive write alone: its
    /// answer only paces archiving, and no one is told it was kept (the
    /// stanza-id goes out before it). Every other write is acknowledged
    /// to someone once answered, so it must be on the disk first.
    pub fn may_sync_later(&self) -> bool {
        matches!(self, StorageRequest::ArchiveMessage { .. })
    }

    /// Whether the request only reads, so that it may run beside writes
    /// (logins must not wait behind a backlog of them). Offline pages are
    /// read in order with the stores before them, so they count as writes.
    pub fn is_login_read(&self) -> bool {
        matches!(
            self,
            StorageRequest::LoadCredentials { .. }
                | StorageRequest::VerifyPlain { .. }
                | StorageRequest::LoadRoster { .. }
                | StorageRequest::LoadLastActivity { .. }
        )
    }
}
