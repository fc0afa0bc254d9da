//! The TOML configuration file, shared by both servers. Every key is
//! optional; an absent file means all defaults.

use anyhow::{bail, Context, Result};
use rookery_core::Config as CoreConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    domains: Vec<String>,
    data_dir: PathBuf,
    c2s: C2s,
    storage: Storage,
    roster: RosterSection,
    /// Messages kept per offline user.
    offline_quota: usize,
    /// Of those, messages kept from one sender.
    offline_quota_per_sender: usize,
    /// Answer software version queries (XEP-0092).
    expose_version: bool,
    /// Modules not to load, by name (`rookery_core::module_names`).
    modules_disabled: Vec<String>,
    /// Accounts that may run XEP-0133 service administration commands.
    admins: Vec<String>,
    /// Bytes of a kept available presence.
    max_presence_bytes: usize,
    stream_management: StreamManagementSection,
    csi: CsiSection,
    vcard: VCardSection,
    private_storage: PrivateStorageSection,
    pep: PepSection,
    archive: ArchiveSection,
    /// XEP-0157: `abuse = ["mailto:…"]`, `admin = […]`, …
    contact_info: std::collections::BTreeMap<String, Vec<String>>,
    tls: TlsSection,
}

/// `[vcard]`: XEP-0054.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct VCardSection {
    /// Default: 128 KiB, or `c2s.max_stanza_size` if smaller.
    max_bytes: Option<usize>,
}

/// The largest vCard kept: as configured, or the default within the
/// stanza limit.
fn vcard_bytes(file: &File) -> usize {
    let default = rookery_core::config::VCardLimits::default().max_bytes;
    let c = &file.c2s;
    file.vcard
        .max_bytes
        .unwrap_or(default.min(c.max_stanza_size))
}

/// `[private_storage]`: XEP-0049.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PrivateStorageSection {
    max_documents: usize,
    max_bytes: usize,
}

impl Default for PrivateStorageSection {
    fn default() -> Self {
        let limits = rookery_core::config::PrivateStorageLimits::default();
        PrivateStorageSection {
            max_documents: limits.max_documents,
            max_bytes: limits.max_bytes,
        }
    }
}

/// `[pep]`: XEP-0163.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PepSection {
    max_nodes: usize,
    max_bytes: usize,
    max_node_bytes: usize,
    max_items: usize,
    max_queued: usize,
    max_known_caps: usize,
    max_notify_nodes: usize,
}

impl Default for PepSection {
    fn default() -> Self {
        let limits = rookery_core::config::PepLimits::default();
        PepSection {
            max_nodes: limits.max_nodes,
            max_bytes: limits.max_bytes,
            max_node_bytes: limits.max_node_bytes,
            max_items: limits.max_items,
            max_queued: limits.max_queued,
            max_known_caps: limits.max_known_caps,
            max_notify_nodes: limits.max_notify_nodes,
        }
    }
}

/// `[archive]`: XEP-0313.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ArchiveSection {
    enabled: bool,
    expires_after_days: u64,
    max_messages: usize,
    max_bytes: usize,
    default_page: usize,
    max_page: usize,
    max_bytes_in_flight: usize,
    max_prefs_jids: usize,
}

impl Default for ArchiveSection {
    fn default() -> Self {
        let limits = rookery_core::config::ArchiveLimits::default();
        ArchiveSection {
            enabled: limits.enabled,
            expires_after_days: limits.expires_after.as_secs() / (24 * 60 * 60),
            max_messages: limits.max_messages,
            max_bytes: limits.max_bytes,
            default_page: limits.default_page,
            max_page: limits.max_page,
            max_bytes_in_flight: limits.max_bytes_in_flight,
            max_prefs_jids: limits.max_prefs_jids,
        }
    }
}

/// `[csi]`: XEP-0352.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CsiSection {
    max_held_stanzas: usize,
    /// Default: an eighth of `c2s.output_buffer`.
    max_held_bytes: Option<usize>,
}

impl Default for CsiSection {
    fn default() -> Self {
        let limits = rookery_core::config::CsiLimits::default();
        CsiSection {
            max_held_stanzas: limits.max_held_stanzas,
            max_held_bytes: None,
        }
    }
}

/// `[stream_management]`: XEP-0198.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StreamManagementSection {
    hibernation_secs: u64,
    max_unacked_stanzas: usize,
    /// Default: a quarter of `c2s.output_buffer`, and at least
    /// `c2s.max_stanza_size`.
    max_unacked_bytes: Option<usize>,
    remembered_tokens: usize,
}

impl Default for StreamManagementSection {
    fn default() -> Self {
        let limits = rookery_core::config::StreamManagementLimits::default();
        StreamManagementSection {
            hibernation_secs: limits.hibernation.as_secs(),
            max_unacked_stanzas: limits.max_unacked_stanzas,
            max_unacked_bytes: None,
            remembered_tokens: limits.remembered_tokens,
        }
    }
}

/// `[tls]`: certificates. Without any, each domain gets a generated
/// self-signed one in `<data_dir>/tls/`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TlsSection {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// `[tls.domains."example.org"] cert = … key = …`
    domains: std::collections::BTreeMap<String, CertPair>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertPair {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RosterSection {
    max_items: usize,
    max_name_bytes: usize,
    max_group_bytes: usize,
    max_groups: usize,
    max_pending_requests: usize,
    max_request_bytes: usize,
    max_queued_operations: usize,
    max_blocked: usize,
}

impl Default for RosterSection {
    fn default() -> Self {
        let limits = rookery_core::config::RosterLimits::default();
        RosterSection {
            max_items: limits.max_items,
            max_name_bytes: limits.max_name_bytes,
            max_group_bytes: limits.max_group_bytes,
            max_groups: limits.max_groups,
            max_pending_requests: limits.max_pending_requests,
            max_request_bytes: limits.max_request_bytes,
            max_queued_operations: limits.max_queued_operations,
            max_blocked: limits.max_blocked,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct C2s {
    listen: String,
    /// Direct TLS (XEP-0368); empty turns it off.
    direct_tls_listen: String,
    require_encryption: bool,
    tls_handshake_timeout_secs: u64,
    max_stanza_size: usize,
    unauthenticated_stanza_size: usize,
    max_depth: usize,
    max_auth_failures: u32,
    login_timeout_secs: u64,
    idle_timeout_secs: u64,
    park_parser_after_ms: u64,
    offer_plain: bool,
    output_buffer: usize,
    listen_backlog: u32,
    max_attributes: usize,
    max_name_length: usize,
    max_connections: usize,
    max_connections_per_address: usize,
    max_unauthenticated_per_address: usize,
    connection_rate_per_address: u32,
    connection_burst_per_address: u32,
    read_rate: u64,
    read_burst: u64,
    auth_failures_per_address: u32,
    auth_failures_per_account: u32,
    auth_failure_window_secs: u64,
    header_timeout_secs: u64,
    stanza_timeout_secs: u64,
    close_drain_timeout_secs: u64,
    max_resources_per_account: usize,
    /// XEP-0077: strangers may create accounts (Prosody's name).
    allow_registration: bool,
    /// Of those, per address prefix and window.
    registrations_per_address: u32,
    registration_window_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Storage {
    scram_iterations: u32,
    max_offline_in_flight: usize,
}

impl Default for File {
    fn default() -> Self {
        File {
            domains: vec!["localhost".into()],
            data_dir: PathBuf::from("./data"),
            c2s: C2s::default(),
            storage: Storage::default(),
            roster: RosterSection::default(),
            offline_quota: CoreConfig::default().offline_quota,
            offline_quota_per_sender: CoreConfig::default().offline_quota_per_sender,
            expose_version: true,
            modules_disabled: Vec::new(),
            admins: Vec::new(),
            max_presence_bytes: CoreConfig::default().max_presence_bytes,
            stream_management: StreamManagementSection::default(),
            csi: CsiSection::default(),
            vcard: VCardSection::default(),
            private_storage: PrivateStorageSection::default(),
            pep: PepSection::default(),
            archive: ArchiveSection::default(),
            contact_info: Default::default(),
            tls: TlsSection::default(),
        }
    }
}

impl Default for C2s {
    fn default() -> Self {
        let core = CoreConfig::default();
        C2s {
            listen: "127.0.0.1:5222".into(),
            direct_tls_listen: "127.0.0.1:5223".into(),
            require_encryption: true,
            tls_handshake_timeout_secs: core.limits.tls_handshake_timeout.as_secs(),
            max_stanza_size: core.xml.max_stanza_size,
            unauthenticated_stanza_size: core.unauthenticated_stanza_size,
            max_depth: core.xml.max_depth,
            max_auth_failures: core.max_auth_failures,
            login_timeout_secs: core.login_timeout.as_secs(),
            idle_timeout_secs: core.idle_timeout.as_secs(),
            park_parser_after_ms: core.park_parser_after.as_millis() as u64,
            offer_plain: core.offer_plain,
            output_buffer: 1024 * 1024,
            // Prosody's default is 128; a burst of logins (a server
            // restart brings every client back at once) overflows that, and
            // each overflowed connect waits a second for its SYN retry.
            listen_backlog: 1024,
            max_attributes: core.xml.max_attributes,
            max_name_length: core.xml.max_name_length,
            max_connections: core.limits.max_connections,
            max_connections_per_address: core.limits.max_connections_per_address,
            max_unauthenticated_per_address: core.limits.max_unauthenticated_per_address,
            connection_rate_per_address: core.limits.connection_rate_per_address,
            connection_burst_per_address: core.limits.connection_burst_per_address,
            read_rate: core.limits.read_rate,
            read_burst: core.limits.read_burst,
            auth_failures_per_address: core.limits.auth_failures_per_address,
            auth_failures_per_account: core.limits.auth_failures_per_account,
            auth_failure_window_secs: core.limits.auth_failure_window.as_secs(),
            header_timeout_secs: core.limits.header_timeout.as_secs(),
            stanza_timeout_secs: core.limits.stanza_timeout.as_secs(),
            close_drain_timeout_secs: core.limits.close_drain_timeout.as_secs(),
            max_resources_per_account: core.max_resources_per_account,
            allow_registration: core.registration.allowed,
            registrations_per_address: core.registration.max_per_address,
            registration_window_secs: core.registration.window.as_secs(),
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            scram_iterations: rookery_core::sasl::DEFAULT_ITERATIONS,
            max_offline_in_flight: CoreConfig::default().max_offline_in_flight,
        }
    }
}

/// Everything a server binary needs, resolved from the file.
#[derive(Clone, Debug)]
pub struct Settings {
    pub core: CoreConfig,
    pub listen: SocketAddr,
    /// The direct TLS listener, if on.
    pub direct_tls_listen: Option<SocketAddr>,
    pub tls: crate::tls::TlsSettings,
    pub data_dir: PathBuf,
    /// Connections the kernel may hold waiting for accept.
    pub listen_backlog: u32,
}

/// One setting's allowed range, or why the server refuses to start.
fn within<T: PartialOrd + std::fmt::Display>(key: &str, value: T, min: T, max: T) -> Result<()> {
    if value < min || value > max {
        bail!("{key} = {value} is out of range: it must be from {min} to {max}");
    }
    Ok(())
}

/// Values that would make the server misbehave rather than merely be
/// strict or lax: a zero that stalls every connection, a timeout so
/// long that adding it to the clock overflows, a limit too small for any
/// client to log in.
/// What stream management may keep unacknowledged and client state
/// indication may hold, per session: as configured, or scaled to the
/// output budget.
fn held_bytes(file: &File) -> (usize, usize) {
    let c = &file.c2s;
    let unacked = file
        .stream_management
        .max_unacked_bytes
        .unwrap_or((c.output_buffer / 4).max(c.max_stanza_size));
    let held = file.csi.max_held_bytes.unwrap_or(c.output_buffer / 8);
    (unacked, held)
}

fn check_ranges(file: &File) -> Result<()> {
    const DAY: u64 = 24 * 60 * 60;
    for kind in file.contact_info.keys() {
        if !rookery_core::CONTACT_KINDS.contains(&kind.as_str()) {
            let known = rookery_core::CONTACT_KINDS;
            bail!("contact_info: XEP-0157 has no {kind:?} addresses (known: {known:?})");
        }
    }
    for admin in &file.admins {
        match jid::BareJid::new(admin) {
            Ok(jid) if jid.node().is_some() => {}
            _ => bail!("admins: {admin:?} is not an account's bare JID (user@domain)"),
        }
    }
    for name in &file.modules_disabled {
        if !rookery_core::module_names().any(|m| m == name) {
            let known: Vec<_> = rookery_core::module_names().collect();
            bail!("modules_disabled: no module is named {name:?} (known: {known:?})");
        }
    }
    let c = &file.c2s;
    for (key, secs) in [
        (
            "c2s.tls_handshake_timeout_secs",
            c.tls_handshake_timeout_secs,
        ),
        ("c2s.login_timeout_secs", c.login_timeout_secs),
        ("c2s.idle_timeout_secs", c.idle_timeout_secs),
        ("c2s.auth_failure_window_secs", c.auth_failure_window_secs),
        ("c2s.header_timeout_secs", c.header_timeout_secs),
        ("c2s.stanza_timeout_secs", c.stanza_timeout_secs),
        ("c2s.close_drain_timeout_secs", c.close_drain_timeout_secs),
        (
            "stream_management.hibernation_secs",
            file.stream_management.hibernation_secs,
        ),
    ] {
        within(key, secs, 1, 7 * DAY)?;
    }
    within(
        "c2s.park_parser_after_ms",
        c.park_parser_after_ms,
        0,
        DAY * 1000,
    )?;
    // A login needs a stream header, SASL and a bind iq: a few KiB.
    within("c2s.max_stanza_size", c.max_stanza_size, 4096, 64 << 20)?;
    within(
        "c2s.max_resources_per_account",
        c.max_resources_per_account,
        1,
        10_000,
    )?;
    // Stored documents arrive in one stanza each, and a larger store
    // than the database should hold per account is a mistake.
    within("vcard.max_bytes", vcard_bytes(file), 1, c.max_stanza_size)?;
    let private = &file.private_storage;
    within(
        "private_storage.max_documents",
        private.max_documents,
        1,
        100_000,
    )?;
    within("private_storage.max_bytes", private.max_bytes, 1, 64 << 20)?;
    within(
        "c2s.registration_window_secs",
        file.c2s.registration_window_secs,
        1,
        365 * 24 * 3600,
    )?;
    let pep = &file.pep;
    within("pep.max_nodes", pep.max_nodes, 1, 100_000)?;
    within("pep.max_bytes", pep.max_bytes, 1, 256 << 20)?;
    within(
        "pep.max_node_bytes",
        pep.max_node_bytes,
        1,
        pep.max_bytes.max(1),
    )?;
    within("pep.max_items", pep.max_items, 1, 100_000)?;
    within("pep.max_queued", pep.max_queued, 1, 10_000)?;
    within("pep.max_known_caps", pep.max_known_caps, 1, 1_000_000)?;
    within("pep.max_notify_nodes", pep.max_notify_nodes, 1, 10_000)?;
    let archive = &file.archive;
    within(
        "archive.expires_after_days",
        archive.expires_after_days,
        1,
        100 * 365,
    )?;
    within("archive.max_messages", archive.max_messages, 1, 100_000_000)?;
    within("archive.max_page", archive.max_page, 1, 1000)?;
    within("archive.max_bytes", archive.max_bytes, 1, 1 << 40)?;
    within(
        "archive.max_bytes_in_flight",
        archive.max_bytes_in_flight,
        1,
        1 << 30,
    )?;
    within("archive.max_prefs_jids", archive.max_prefs_jids, 0, 100_000)?;
    within(
        "archive.default_page",
        archive.default_page,
        1,
        archive.max_page,
    )?;
    let sm = &file.stream_management;
    // At least one stanza must fit, or nothing could be delivered.
    within(
        "stream_management.max_unacked_stanzas",
        sm.max_unacked_stanzas,
        1,
        1 << 20,
    )?;
    // A resumption resends what was not acknowledged, then what client
    // state indication held, on a fresh connection: together they must
    // fit in its output budget, or it would overflow at once.
    let (unacked, held) = held_bytes(file);
    within(
        "csi.max_held_bytes",
        held,
        1,
        c.output_buffer.saturating_sub(c.max_stanza_size),
    )?;
    within(
        "stream_management.max_unacked_bytes",
        unacked,
        c.max_stanza_size,
        c.output_buffer.saturating_sub(held),
    )?;
    // Never more than max_stanza_size, whatever it says.
    within(
        "c2s.unauthenticated_stanza_size",
        c.unauthenticated_stanza_size,
        4096,
        64 << 20,
    )?;
    within("c2s.max_depth", c.max_depth, 4, 1024)?;
    within("c2s.max_attributes", c.max_attributes, 8, 4096)?;
    within("c2s.max_name_length", c.max_name_length, 32, 64 * 1024)?;
    within("c2s.max_auth_failures", c.max_auth_failures, 0, 100)?;
    // A stanza to a client must fit in half its output queue, with the
    // other half for what else it is sent.
    within(
        "c2s.output_buffer",
        c.output_buffer,
        (2 * c.max_stanza_size).max(16 * 1024),
        1 << 30,
    )?;
    within("c2s.listen_backlog", c.listen_backlog, 1, 65_535)?;
    if c.connection_rate_per_address != 0 {
        within(
            "c2s.connection_burst_per_address",
            c.connection_burst_per_address,
            1,
            u32::MAX,
        )?;
    }
    if c.read_rate != 0 {
        // With a rate, the burst is what a client may send at once: zero
        // would stall every connection forever.
        within("c2s.read_burst", c.read_burst, 1024, u64::MAX)?;
    }
    within(
        "storage.scram_iterations",
        file.storage.scram_iterations,
        4096, // RFC 7677
        10_000_000,
    )?;
    within("roster.max_items", file.roster.max_items, 1, 1_000_000)?;
    within(
        "roster.max_pending_requests",
        file.roster.max_pending_requests,
        0,
        1_000_000,
    )?;
    // Enough for the bare request: addresses up to 3 KiB each.
    within(
        "roster.max_request_bytes",
        file.roster.max_request_bytes,
        4096,
        1 << 20,
    )?;
    within("offline_quota", file.offline_quota, 0, 1_000_000)?;
    within(
        "max_presence_bytes",
        file.max_presence_bytes,
        1024,
        64 << 20,
    )?;
    within(
        "roster.max_queued_operations",
        file.roster.max_queued_operations,
        1,
        1_000_000,
    )?;
    within(
        "storage.max_offline_in_flight",
        file.storage.max_offline_in_flight,
        1,
        10_000_000,
    )?;
    within(
        "offline_quota_per_sender",
        file.offline_quota_per_sender,
        0,
        1_000_000,
    )?;
    Ok(())
}

impl Settings {
    /// The core's configuration with the server secret from the data dir
    /// (made on first start): for running the server.
    pub fn server_config(&self) -> Result<CoreConfig> {
        Ok(CoreConfig {
            secret: crate::files::server_secret(&self.data_dir)?,
            ..self.core.clone()
        })
    }

    /// Bind a c2s listener with the configured backlog (std's is 128).
    pub fn bind(&self, addr: SocketAddr) -> Result<std::net::TcpListener> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket
            .bind(&addr.into())
            .with_context(|| format!("binding {addr}"))?;
        socket.listen(self.listen_backlog.min(i32::MAX as u32) as i32)?;
        Ok(socket.into())
    }

    /// Read `path`, or use the defaults when no path is given.
    pub fn load(path: Option<&Path>) -> Result<Settings> {
        let file = match path {
            None => File::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config {}", p.display()))?
            }
        };
        Self::from_file(file)
    }

    pub fn from_toml(text: &str) -> Result<Settings> {
        Self::from_file(toml::from_str(text)?)
    }

    fn from_file(file: File) -> Result<Settings> {
        check_ranges(&file)?;
        let (unacked_bytes, held_bytes) = held_bytes(&file);
        let vcard_bytes = vcard_bytes(&file);
        if file.domains.is_empty() {
            bail!("`domains` must name at least one domain");
        }
        let mut domains = Vec::new();
        for d in &file.domains {
            let prepared = jid::DomainPart::new(d)
                .with_context(|| format!("domain {d:?} is not a valid JID domain"))?;
            domains.push(prepared.as_str().to_owned());
        }
        let listen =
            file.c2s.listen.parse().with_context(|| {
                format!("c2s.listen {:?} is not an address:port", file.c2s.listen)
            })?;
        let direct_tls_listen = match file.c2s.direct_tls_listen.as_str() {
            "" => None,
            addr => Some(addr.parse().with_context(|| {
                format!("c2s.direct_tls_listen {addr:?} is not an address:port")
            })?),
        };
        let tls = crate::tls::TlsSettings {
            domains: domains.clone(),
            default: match (file.tls.cert, file.tls.key) {
                (Some(cert), Some(key)) => Some(crate::tls::CertFiles { cert, key }),
                (None, None) => None,
                _ => bail!("tls.cert and tls.key go together"),
            },
            per_domain: file
                .tls
                .domains
                .into_iter()
                .map(|(domain, pair)| {
                    let prepared = jid::DomainPart::new(&domain)
                        .with_context(|| format!("tls.domains.{domain:?} is not a domain"))?;
                    Ok((
                        prepared.as_str().to_owned(),
                        crate::tls::CertFiles {
                            cert: pair.cert,
                            key: pair.key,
                        },
                    ))
                })
                .collect::<Result<_>>()?,
            generated_dir: file.data_dir.join("tls"),
        };
        let core = CoreConfig {
            domains,
            xml: rookery_core::xml::XmlLimits {
                max_stanza_size: file.c2s.max_stanza_size,
                max_depth: file.c2s.max_depth,
                max_attributes: file.c2s.max_attributes,
                max_name_length: file.c2s.max_name_length,
            },
            unauthenticated_stanza_size: file.c2s.unauthenticated_stanza_size,
            limits: rookery_core::limits::Limits {
                max_connections: file.c2s.max_connections,
                max_connections_per_address: file.c2s.max_connections_per_address,
                max_unauthenticated_per_address: file.c2s.max_unauthenticated_per_address,
                connection_rate_per_address: file.c2s.connection_rate_per_address,
                connection_burst_per_address: file.c2s.connection_burst_per_address,
                read_rate: file.c2s.read_rate,
                read_burst: file.c2s.read_burst,
                auth_failures_per_address: file.c2s.auth_failures_per_address,
                auth_failures_per_account: file.c2s.auth_failures_per_account,
                auth_failure_window: Duration::from_secs(file.c2s.auth_failure_window_secs),
                header_timeout: Duration::from_secs(file.c2s.header_timeout_secs),
                stanza_timeout: Duration::from_secs(file.c2s.stanza_timeout_secs),
                tls_handshake_timeout: Duration::from_secs(file.c2s.tls_handshake_timeout_secs),
                close_drain_timeout: Duration::from_secs(file.c2s.close_drain_timeout_secs),
            },
            encryption: if file.c2s.require_encryption {
                rookery_core::Encryption::Required
            } else {
                rookery_core::Encryption::Optional
            },
            max_auth_failures: file.c2s.max_auth_failures,
            login_timeout: Duration::from_secs(file.c2s.login_timeout_secs),
            idle_timeout: Duration::from_secs(file.c2s.idle_timeout_secs),
            park_parser_after: Duration::from_millis(file.c2s.park_parser_after_ms),
            offer_plain: file.c2s.offer_plain,
            roster: rookery_core::config::RosterLimits {
                max_items: file.roster.max_items,
                max_name_bytes: file.roster.max_name_bytes,
                max_group_bytes: file.roster.max_group_bytes,
                max_groups: file.roster.max_groups,
                max_pending_requests: file.roster.max_pending_requests,
                max_request_bytes: file.roster.max_request_bytes,
                max_queued_operations: file.roster.max_queued_operations,
                max_blocked: file.roster.max_blocked,
            },
            offline_quota: file.offline_quota,
            registration: rookery_core::config::Registration {
                allowed: file.c2s.allow_registration,
                max_per_address: file.c2s.registrations_per_address,
                window: Duration::from_secs(file.c2s.registration_window_secs),
            },
            offline_quota_per_sender: file.offline_quota_per_sender,
            max_presence_bytes: file.max_presence_bytes,
            max_offline_in_flight: file.storage.max_offline_in_flight,
            output_buffer: file.c2s.output_buffer,
            expose_version: file.expose_version,
            modules_disabled: file.modules_disabled,
            admins: file
                .admins
                .iter()
                .filter_map(|a| jid::BareJid::new(a).ok())
                .collect(),
            stream_management: rookery_core::config::StreamManagementLimits {
                hibernation: Duration::from_secs(file.stream_management.hibernation_secs),
                max_unacked_stanzas: file.stream_management.max_unacked_stanzas,
                max_unacked_bytes: unacked_bytes,
                remembered_tokens: file.stream_management.remembered_tokens,
            },
            contact_info: file.contact_info.into_iter().collect(),
            max_resources_per_account: file.c2s.max_resources_per_account,
            csi: rookery_core::config::CsiLimits {
                max_held_stanzas: file.csi.max_held_stanzas,
                max_held_bytes: held_bytes,
            },
            vcard: rookery_core::config::VCardLimits {
                max_bytes: vcard_bytes,
            },
            private_storage: rookery_core::config::PrivateStorageLimits {
                max_documents: file.private_storage.max_documents,
                max_bytes: file.private_storage.max_bytes,
            },
            pep: rookery_core::config::PepLimits {
                max_nodes: file.pep.max_nodes,
                max_bytes: file.pep.max_bytes,
                max_node_bytes: file.pep.max_node_bytes,
                max_items: file.pep.max_items,
                max_queued: file.pep.max_queued,
                max_known_caps: file.pep.max_known_caps,
                max_notify_nodes: file.pep.max_notify_nodes,
            },
            archive: rookery_core::config::ArchiveLimits {
                enabled: file.archive.enabled,
                expires_after: Duration::from_secs(file.archive.expires_after_days * 24 * 60 * 60),
                max_messages: file.archive.max_messages,
                max_bytes: file.archive.max_bytes,
                default_page: file.archive.default_page,
                max_page: file.archive.max_page,
                max_bytes_in_flight: file.archive.max_bytes_in_flight,
                max_prefs_jids: file.archive.max_prefs_jids,
            },
            // Read from the data dir when the server starts
            // (`Settings::server_config`), not by commands that only
            // touch accounts.
            secret: [0; 32],
            scram_iterations: file.storage.scram_iterations,
        };
        Ok(Settings {
            core,
            listen,
            direct_tls_listen,
            tls,
            data_dir: file.data_dir,
            listen_backlog: file.c2s.listen_backlog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_the_documented_defaults() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.core.domains, vec!["localhost"]);
        assert_eq!(s.listen, "127.0.0.1:5222".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.direct_tls_listen, Some("127.0.0.1:5223".parse().unwrap()));
        assert_eq!(s.core.encryption, rookery_core::Encryption::Required);
        assert_eq!(s.tls.generated_dir, PathBuf::from("./data/tls"));
    }

    #[test]
    fn per_domain_certificates_are_read_and_domains_prepared() {
        let s = Settings::from_toml(
            "domains = ['example.org']\n[tls]\ncert = '/c'\nkey = '/k'\n[tls.domains.'Example.ORG']\ncert = '/e.crt'\nkey = '/e.key'\n",
        )
        .unwrap();
        assert_eq!(s.tls.default.unwrap().cert, PathBuf::from("/c"));
        assert_eq!(s.tls.per_domain["example.org"].key, PathBuf::from("/e.key"));
    }

    #[test]
    fn admins_are_bare_jids_of_accounts() {
        let s = Settings::from_toml("admins = ['Admin@localhost']\n").unwrap();
        assert_eq!(
            s.core.admins,
            vec!["admin@localhost".parse::<jid::BareJid>().unwrap()]
        );
        let err = Settings::from_toml("admins = ['localhost']\n").unwrap_err();
        assert!(err.to_string().contains("admins"), "{err}");
    }

    #[test]
    fn registration_is_off_unless_allowed_in_c2s() {
        let s = Settings::from_toml("").unwrap();
        assert!(!s.core.registration.allowed);
        let s = Settings::from_toml("[c2s]\nallow_registration = true\n").unwrap();
        assert!(s.core.registration.allowed);
    }

    #[test]
    fn a_module_disabled_by_a_name_no_module_has_is_refused() {
        let err = Settings::from_toml("modules_disabled = ['pinng']\n").unwrap_err();
        assert!(err.to_string().contains("\"pinng\""), "{err}");
        let s = Settings::from_toml("modules_disabled = ['ping']\n").unwrap();
        assert_eq!(s.core.modules_disabled, vec!["ping"]);
    }

    #[test]
    fn empty_direct_tls_listen_turns_it_off() {
        let s = Settings::from_toml("[c2s]\ndirect_tls_listen = ''\nrequire_encryption = false\n")
            .unwrap();
        assert_eq!(s.direct_tls_listen, None);
        assert_eq!(s.core.encryption, rookery_core::Encryption::Optional);
    }

    #[test]
    fn keys_override_defaults_and_domains_are_prepared() {
        let s = Settings::from_toml(
            "domains = ['Example.ORG']\ndata_dir = '/tmp/x'\n[c2s]\nlisten = '127.0.0.1:0'\nmax_stanza_size = 5000\n",
        )
        .unwrap();
        assert_eq!(s.core.domains, vec!["example.org"]);
        assert_eq!(s.core.xml.max_stanza_size, 5000);
        assert_eq!(s.listen.port(), 0);
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_key_named() {
        for (text, key) in [
            (
                "[c2s]\nidle_timeout_secs = 9223372036854775807\n",
                "c2s.idle_timeout_secs",
            ),
            ("[c2s]\nread_burst = 0\n", "c2s.read_burst"),
            ("[c2s]\nmax_stanza_size = 10\n", "c2s.max_stanza_size"),
            (
                "[c2s]\nheader_timeout_secs = 0\n",
                "c2s.header_timeout_secs",
            ),
            (
                "[storage]\nscram_iterations = 1\n",
                "storage.scram_iterations",
            ),
        ] {
            let error = Settings::from_toml(text).unwrap_err().to_string();
            assert!(error.starts_with(key), "{text}: {error}");
        }
        // No rate: the burst means nothing.
        assert!(Settings::from_toml("[c2s]\nread_rate = 0\nread_burst = 0\n").is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Settings::from_toml("domian = 'x'").is_err());
    }
}
