//! What the operator can tune. Every limit has a safe default.

use crate::limits::Limits;
use crate::tls::Encryption;
use crate::xml::XmlLimits;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Domains served, already in canonical (nameprepped) form. The first is
    /// the default.
    pub domains: Vec<String>,
    pub xml: XmlLimits,
    /// `max_stanza_size` until SASL succeeds. A stream header, a SASL
    /// exchange and a stream restart need a few KiB; a stranger gets no more
    /// room than that to make the server hold.
    pub unauthenticated_stanza_size: usize,
    /// Failed SASL attempts allowed on one stream before it is closed.
    /// RFC 6120 section 6.4.5 asks for at least 2 and at most 5 retries.
    pub max_auth_failures: u32,
    /// How long a stream may take from accept to a bound resource
    /// (Prosody's `c2s_timeout`, 300 s).
    pub login_timeout: Duration,
    /// How long an established session may stay silent before it is closed
    /// with `<connection-timeout/>`. Clients keep alive with whitespace or
    /// XEP-0199 pings well within this.
    pub idle_timeout: Duration,
    /// How long a stream must be quiet between stanzas before its XML
    /// parser is dropped (and rebuilt from the stream header when input
    /// comes). Memory per idle session is most of what a server holds. The
    /// allocator keeps what a parked parser gives back and hands it to the
    /// next connections, so it pays when parsers park while logins still
    /// come: 10,000 sessions logged in at about 6,000/s hold 3.9 KiB each
    /// with 0.5 s, 5.2 KiB with 2 s, the same as never parking. Rebuilding
    /// costs a few microseconds: too much between two reads of a busy
    /// stream, nothing for one that pauses half a second. Zero turns
    /// parking off.
    pub park_parser_after: Duration,
    /// Offer SASL PLAIN (for clients that know no SCRAM: mcabber,
    /// sendxmpp). It is offered only on encrypted streams unless
    /// `encryption` is [`Encryption::Optional`] or `Unavailable`.
    pub offer_plain: bool,
    /// Whether STARTTLS is offered and whether it is required.
    pub encryption: Encryption,
    pub roster: RosterLimits,
    /// Bytes of an available presence, which a session keeps while it
    /// lives; larger ones get `<policy-violation/>` (XEP-0115 caps, a
    /// status and an avatar hash take a few hundred).
    pub max_presence_bytes: usize,
    /// Messages kept per offline user (XEP-0160); past it, senders get
    /// `<service-unavailable/>`.
    pub offline_quota: usize,
    /// Of those, messages kept from one sender: one stranger cannot fill
    /// a user's quota and shut out everyone else.
    pub offline_quota_per_sender: usize,
    /// Offline messages being stored at once, server-wide (each is held
    /// in memory until storage answers); past it, senders get
    /// `<resource-constraint/>` (type wait) instead of a queue that grows
    /// while storage falls behind.
    pub max_offline_in_flight: usize,
    /// Bytes the shim queues per connection before the client counts as
    /// a slow reader and is disconnected. Stored messages are handed over
    /// in pages of half this, each page once the last is written.
    pub output_buffer: usize,
    /// Answer XEP-0092 software version queries (Prosody's default too).
    pub expose_version: bool,
    /// Modules not to load (Prosody's `modules_disabled`), by the names
    /// [`crate::module_names`] lists: what they would advertise and
    /// answer is gone.
    pub modules_disabled: Vec<String>,
    pub stream_management: StreamManagementLimits,
    pub csi: CsiLimits,
    /// XEP-0054: the largest vCard kept.
    pub vcard: VCardLimits,
    /// XEP-0049: what an account may keep as private XML.
    pub private_storage: PrivateStorageLimits,
    /// XEP-0163: what an account's personal eventing service keeps.
    pub pep: PepLimits,
    /// XEP-0077: whether strangers may create accounts, and how often.
    pub registration: Registration,
    /// Accounts that may run the service administration commands
    /// (XEP-0133).
    pub admins: Vec<jid::BareJid>,
    /// XEP-0313: what archives keep, and how much a query returns.
    pub archive: ArchiveLimits,
    /// Sessions one account may have at once, hibernating ones included
    /// (RFC 6120 section 7.6.2.1: past it, binding another resource gets
    /// `<resource-constraint/>`, once the oldest hibernating one, if any,
    /// has been ended to make room).
    pub max_resources_per_account: usize,
    /// XEP-0157 contact addresses by kind (`abuse`, `admin`, …: see
    /// `modules::contact_info::KINDS`), each a list of URIs.
    pub contact_info: Vec<(String, Vec<String>)>,
    pub limits: Limits,
    /// A secret only this server knows (32 random bytes, kept by the
    /// host), from which SCRAM salts for users that do not exist are
    /// derived: stable, so that asking twice does not reveal them.
    pub secret: [u8; 32],
    /// PBKDF2 iterations of new accounts, which stand-in credentials for
    /// missing users show too.
    pub scram_iterations: u32,
}

/// Bounds on what one user may keep in their roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RosterLimits {
    /// Items per roster; a set past it gets `<resource-constraint/>`.
    pub max_items: usize,
    /// Bytes of an item's name; longer gets `<not-acceptable/>`.
    pub max_name_bytes: usize,
    /// Bytes of a group name; longer gets `<not-acceptable/>`.
    pub max_group_bytes: usize,
    /// Groups per item; more gets `<not-acceptable/>`.
    pub max_groups: usize,
    /// Inbound subscription requests kept awaiting an answer; more are
    /// dropped.
    pub max_pending_requests: usize,
    /// Bytes of one kept request; a larger one is kept without its
    /// payload (status, nick).
    pub max_request_bytes: usize,
    /// Roster operations (gets, sets, subscriptions) queued for one user
    /// behind the one being written; more get `<resource-constraint/>`.
    pub max_queued_operations: usize,
    /// JIDs a user may block (XEP-0191); more get
    /// `<resource-constraint/>`.
    pub max_blocked: usize,
}

/// Stream management (XEP-0198).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamManagementLimits {
    /// How long a session whose connection was lost waits to be resumed
    /// (Prosody's `smacks_hibernation_time`); a client may ask for less.
    pub hibernation: Duration,
    /// Stanzas sent to a client and not yet acknowledged, at most; past
    /// it the stream ends with `<policy-violation/>` (the stanzas go to
    /// offline storage), and a hibernating session takes nothing more.
    pub max_unacked_stanzas: usize,
    /// The same bound in bytes.
    pub max_unacked_bytes: usize,
    /// Sessions gone whose resumption tokens are remembered, so that a
    /// late `<resume/>` learns how many of its stanzas were handled.
    pub remembered_tokens: usize,
}

impl Default for StreamManagementLimits {
    fn default() -> Self {
        StreamManagementLimits {
            hibernation: Duration::from_secs(600),
            max_unacked_stanzas: 500,
            // The default stanza limit: one stanza of any size fits;
            // with client state's 128 KiB, half the output budget.
            max_unacked_bytes: 256 * 1024,
            remembered_tokens: 10_000,
        }
    }
}

/// Client state indication (XEP-0352): what an inactive client's queue
/// may hold before it is sent anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsiLimits {
    pub max_held_stanzas: usize,
    pub max_held_bytes: usize,
}

impl Default for CsiLimits {
    fn default() -> Self {
        // Prosody's mod_csi_simple holds up to 256 stanzas.
        CsiLimits {
            max_held_stanzas: 256,
            max_held_bytes: 128 * 1024,
        }
    }
}

/// Message archives (XEP-0313).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Whether chats are archived at all (the `mam` module).
    pub enabled: bool,
    /// How long a message is kept.
    pub expires_after: Duration,
    /// Messages kept per account; past it the oldest go.
    pub max_messages: usize,
    /// Bytes of archived stanzas per account, likewise: a sender cannot
    /// make an archive hold more than this, however large its chats.
    pub max_bytes: usize,
    /// Messages in a page when the query does not say.
    pub default_page: usize,
    /// Messages in a page at most.
    pub max_page: usize,
    /// Bytes of archive writes (a copy of each message) storage has not
    /// answered, server-wide; past it messages that would be archived are
    /// refused with `<resource-constraint/>` until storage catches up.
    pub max_bytes_in_flight: usize,
    /// JIDs in one account's archiving preferences (both lists).
    pub max_prefs_jids: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            enabled: false,
            expires_after: Duration::from_secs(365 * 24 * 60 * 60),
            max_messages: 100_000,
            max_bytes: 64 * 1024 * 1024,
            // Prosody's default and largest page.
            default_page: 20,
            max_page: 50,
            max_bytes_in_flight: 8 * 1024 * 1024,
            // As many as a blocklist may hold.
            max_prefs_jids: 1000,
        }
    }
}

/// vcard-temp (XEP-0054).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VCardLimits {
    /// Bytes of one serialized vCard, photo included.
    pub max_bytes: usize,
}

impl Default for VCardLimits {
    fn default() -> Self {
        // Room for a photo of a few hundred pixels, base64-encoded.
        VCardLimits {
            max_bytes: 128 * 1024,
        }
    }
}

/// Private XML storage (XEP-0049), per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateStorageLimits {
    /// Fragments (one per element name and namespace).
    pub max_documents: usize,
    /// Bytes of all fragments together.
    pub max_bytes: usize,
}

impl Default for PrivateStorageLimits {
    fn default() -> Self {
        PrivateStorageLimits {
            max_documents: 100,
            max_bytes: 512 * 1024,
        }
    }
}

/// In-band registration (XEP-0077) before authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Off by default, as with Prosody: an open server is a spam relay's
    /// first choice.
    pub allowed: bool,
    /// Accounts one address (an IPv6 /64) may create in one `window`;
    /// past it, `<policy-violation/>`. 0: no limit.
    pub max_per_address: u32,
    pub window: std::time::Duration,
}

impl Default for Registration {
    fn default() -> Self {
        Registration {
            allowed: false,
            max_per_address: 5,
            window: std::time::Duration::from_secs(3600),
        }
    }
}

/// Personal eventing (XEP-0163), per account, and the entity
/// capabilities (XEP-0115) remembered to filter its notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PepLimits {
    /// Nodes of one account (legacy OMEMO has one per device).
    pub max_nodes: usize,
    /// Bytes of all nodes' configurations and items together.
    pub max_bytes: usize,
    /// Bytes of one node, its items together: each change reads and
    /// writes its node whole.
    pub max_node_bytes: usize,
    /// Items one node keeps at most: what `pubsub#max_items` = `max`
    /// means (Prosody's `pep_max_items`).
    pub max_items: usize,
    /// Operations on one account's nodes waiting for the one before to be
    /// written; past it, `<resource-constraint/>`.
    pub max_queued: usize,
    /// Verified capability hashes (XEP-0115 `ver`) remembered, with the
    /// nodes each asks notifications of.
    pub max_known_caps: usize,
    /// Nodes a client's capabilities may ask notifications of; past it,
    /// the rest are ignored.
    pub max_notify_nodes: usize,
}

impl Default for PepLimits {
    fn default() -> Self {
        PepLimits {
            max_nodes: 128,
            max_bytes: 4 * 1024 * 1024,
            // An avatar of a full stanza, with room to spare.
            max_node_bytes: 512 * 1024,
            max_items: 256,
            max_queued: 16,
            max_known_caps: 1000,
            max_notify_nodes: 64,
        }
    }
}

impl Default for RosterLimits {
    fn default() -> Self {
        RosterLimits {
            max_items: 1000,
            max_name_bytes: 1023,
            max_group_bytes: 1023,
            max_groups: 64,
            max_pending_requests: 100,
            max_request_bytes: 4096,
            max_queued_operations: 64,
            max_blocked: 1000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: vec!["localhost".to_owned()],
            xml: XmlLimits::default(),
            // Four times the largest SASL element we accept (a 1,023-byte
            // user name and password in PLAIN, base64): 16 KiB.
            unauthenticated_stanza_size: 16 * 1024,
            max_auth_failures: 3,
            login_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(900),
            park_parser_after: Duration::from_millis(500),
            offer_plain: true,
            encryption: Encryption::Required,
            roster: RosterLimits::default(),
            max_presence_bytes: 16 * 1024,
            offline_quota: 100,
            offline_quota_per_sender: 50,
            max_offline_in_flight: 4096,
            output_buffer: 1024 * 1024,
            expose_version: true,
            modules_disabled: Vec::new(),
            stream_management: StreamManagementLimits::default(),
            csi: CsiLimits::default(),
            vcard: VCardLimits::default(),
            private_storage: PrivateStorageLimits::default(),
            pep: PepLimits::default(),
            registration: Registration::default(),
            admins: Vec::new(),
            archive: ArchiveLimits::default(),
            max_resources_per_account: 16,
            contact_info: Vec::new(),
            limits: Limits::default(),
            secret: [0; 32],
            scram_iterations: crate::sasl::DEFAULT_ITERATIONS,
        }
    }
}

impl Config {
    /// What credentials for users that do not exist derive from.
    pub fn stand_in(&self) -> crate::sasl::StandIn {
        crate::sasl::StandIn {
            secret: self.secret,
            iterations: self.scram_iterations,
        }
    }

    /// The XML limits of a stream not yet authenticated.
    pub fn unauthenticated_xml(&self) -> XmlLimits {
        XmlLimits {
            max_stanza_size: self
                .xml
                .max_stanza_size
                .min(self.unauthenticated_stanza_size),
            ..self.xml
        }
    }

    pub fn serves(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }
}
