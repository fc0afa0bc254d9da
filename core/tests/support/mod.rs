//! A deterministic test bench for the core: simulated clients, a fake
//! clock and an in-memory account store. No sockets, no threads.
#![allow(dead_code)]

use rookery_core::roster::{Roster, RosterItem, Subscription};
use rookery_core::sasl::StoredCredentials;
use rookery_core::{
    ArchivedMessage, Config, ConnectionId, DocumentStore, Output, RequestId, Seed, Server,
    StorageAnswer, StorageRequest, StoreOutcome, WallClock,
};
use rookery_tests::scram::{Hash, ScramClient};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

pub const SASL_FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
    <mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>\
    </mechanisms></stream:features>";

pub const BIND_FEATURES: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
    <ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>\
    <sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://rookery.chat' ver='v6TAkcexCj3HnySaitwUCKG2ZKc='/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

/// Our stream header as the server sends it, with the id replaced by `ID`.
pub const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='ID' from='localhost' version='1.0' xml:lang='en'>";

pub fn stream_error(condition: &str) -> String {
    format!(
        "<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    )
}

pub fn plain(user: &str, password: &str) -> String {
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>")
}

pub struct Bench {
    pub server: Server,
    pub now: Instant,
    accounts: HashMap<String, StoredCredentials>,
    /// Durable rosters, as storage would hold them.
    pub rosters: HashMap<String, Roster>,
    /// Stored offline messages per bare JID, oldest first.
    pub offline: HashMap<String, Vec<String>>,
    /// The number of each user's first stored message, less one.
    offline_deleted: HashMap<String, u64>,
    /// Each account's last logout and status (XEP-0012).
    pub last_activity: HashMap<String, (u64, String)>,
    /// Stored documents by account, store and key.
    pub documents: HashMap<(String, DocumentStore, String), String>,
    /// Archived messages by account, in archive order, with the other party.
    pub archive: HashMap<String, Vec<Archived>>,
    /// When false, the shim's reports that a write reached the socket
    /// wait in `unwritten` for `report_written`.
    pub auto_written: bool,
    pub unwritten: Vec<(ConnectionId, u64)>,
    /// When false, closed connections' sockets stay open (their clients
    /// read nothing) until the test says otherwise.
    pub auto_socket_close: bool,
    pub sockets_closing: Vec<ConnectionId>,
    /// Connections the core cut with `Output::Abort`.
    pub aborted: Vec<ConnectionId>,
    /// When false, storage requests wait in `pending` for `answer_storage`.
    pub auto_storage: bool,
    pub pending: Vec<(RequestId, StorageRequest)>,
    received: HashMap<ConnectionId, String>,
    closed: HashSet<ConnectionId>,
    /// Every output, in order, for determinism checks (when `record`).
    pub log: Vec<Output>,
    /// Benchmarks turn off recording and invariant checks, which would
    /// otherwise dominate what they measure.
    pub record: bool,
    checks: bool,
    /// Connections the core asked to start TLS on, in order.
    pub tls_started: Vec<ConnectionId>,
    next_conn: u64,
}

/// A connection whose stream is open, its features read.
pub fn opened(b: &mut Bench) -> ConnectionId {
    let c = b.connect();
    b.send(c, HEADER);
    b.take(c);
    c
}

/// An archived message and the other party (bare JID, resource).
pub type Archived = (ArchivedMessage, (String, Option<String>));

/// The defaults, minus TLS: most tests speak to the core in the clear,
/// as a shim without TLS would (`tls.rs` covers encryption).
pub fn plaintext() -> Config {
    Config {
        encryption: rookery_core::Encryption::Unavailable,
        ..Config::default()
    }
}

/// [`plaintext`] with message archives (off by default).
pub fn archiving() -> Config {
    let mut config = plaintext();
    config.archive.enabled = true;
    config
}

impl Bench {
    pub fn new() -> Self {
        Self::with_config(plaintext())
    }

    pub fn with_config(config: Config) -> Self {
        let mut server = Server::new(config);
        // 2026-11-25T04:13:20Z: a fixed wall clock keeps stamps exact.
        server.handle_wall_clock(WallClock(Duration::from_secs(1_795_580_000)));
        let mut bench = Bench {
            server,
            now: Instant::now(),
            accounts: HashMap::new(),
            rosters: HashMap::new(),
            offline: HashMap::new(),
            offline_deleted: HashMap::new(),
            last_activity: HashMap::new(),
            documents: HashMap::new(),
            archive: HashMap::new(),
            auto_written: true,
            unwritten: Vec::new(),
            auto_socket_close: true,
            sockets_closing: Vec::new(),
            aborted: Vec::new(),
            auto_storage: true,
            pending: Vec::new(),
            received: HashMap::new(),
            closed: HashSet::new(),
            log: Vec::new(),
            record: true,
            checks: true,
            tls_started: Vec::new(),
            next_conn: 0,
        };
        // Few iterations keep the tests fast; the count is stored per user.
        bench.add_user("juliet", "r0m30", 64);
        bench.add_user("romeo", "j00l13t", 64);
        bench
    }

    /// A bench for benchmarks: no read-rate or connection limits (a
    /// benchmark pushes far more than one client may, from one address),
    /// and no recording or invariant checks, which would dominate.
    pub fn for_benchmarks() -> Self {
        let mut bench = Self::with_config(Config {
            limits: rookery_core::limits::Limits {
                read_rate: 0,
                max_connections: 0,
                max_connections_per_address: 0,
                max_unauthenticated_per_address: 0,
                connection_rate_per_address: 0,
                ..Default::default()
            },
            ..plaintext()
        });
        bench.record = false;
        bench.checks = false;
        bench
    }

    /// Store a roster for `user` (a bare JID) with `contact` at this
    /// subscription, as if set up earlier.
    pub fn stored_contact(&mut self, user: &str, contact: &str, subscription: Subscription) {
        let contact: jid::BareJid = contact.parse().unwrap();
        let mut item = RosterItem::new(contact.clone());
        item.subscription = subscription;
        let roster = self.rosters.entry(user.to_owned()).or_default();
        roster.items.insert(contact, item);
    }

    pub fn add_user(&mut self, name: &str, password: &str, iterations: u32) {
        let salt = format!("salt-of-{name}");
        let creds = StoredCredentials::derive(password, salt.as_bytes(), iterations).unwrap();
        self.accounts.insert(name.to_owned(), creds);
    }

    pub fn connect(&mut self) -> ConnectionId {
        self.next_conn += 1;
        let id = ConnectionId(self.next_conn);
        self.server.handle_accept(
            id,
            std::net::Ipv4Addr::LOCALHOST.into(),
            Seed([self.next_conn as u8; 32]),
            self.now,
        );
        self.pump();
        id
    }

    pub fn send(&mut self, conn: ConnectionId, data: &str) {
        self.send_bytes(conn, data.as_bytes());
    }

    pub fn send_bytes(&mut self, conn: ConnectionId, data: &[u8]) {
        self.server.handle_bytes(conn, data, self.now);
        self.pump();
    }

    /// The shim finished the handshake the core asked for.
    pub fn tls_established(&mut self, conn: ConnectionId, binding: rookery_core::ChannelBinding) {
        self.server.handle_tls_established(conn, binding, self.now);
        self.pump();
    }

    pub fn peer_close(&mut self, conn: ConnectionId) {
        self.server.handle_peer_closed(conn, self.now);
        self.pump();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.pump();
    }

    /// The shim wrote everything asked about so far to the sockets.
    pub fn report_written(&mut self) {
        for (connection, token) in std::mem::take(&mut self.unwritten) {
            self.server.handle_written(connection, token, self.now);
        }
        self.pump();
    }

    pub fn answer_storage(&mut self) {
        for (request, query) in std::mem::take(&mut self.pending) {
            let answer = self.lookup(&query);
            self.server.handle_storage(request, answer, self.now);
        }
        self.pump();
    }

    fn lookup(&mut self, query: &StorageRequest) -> StorageAnswer {
        match query {
            StorageRequest::CreateAccount {
                username,
                password,
                iterations,
                ..
            } => {
                if self.accounts.contains_key(username) {
                    return StorageAnswer::AccountCreated(false);
                }
                let salt = format!("salt-of-{username}");
                match StoredCredentials::derive(&password.0, salt.as_bytes(), *iterations) {
                    Ok(creds) => {
                        self.accounts.insert(username.clone(), creds);
                        StorageAnswer::AccountCreated(true)
                    }
                    Err(e) => StorageAnswer::Failed(e.to_string()),
                }
            }
            StorageRequest::SetPassword {
                user,
                password,
                iterations,
            } => {
                let username = user.node().map_or("", |n| n.as_str()).to_owned();
                let salt = format!("new-salt-of-{username}");
                match StoredCredentials::derive(&password.0, salt.as_bytes(), *iterations) {
                    Ok(creds) => {
                        self.accounts.insert(username, creds);
                        StorageAnswer::Written
                    }
                    Err(e) => StorageAnswer::Failed(e.to_string()),
                }
            }
            StorageRequest::DeleteAccount { user } => {
                let bare = user.to_string();
                self.accounts.remove(user.node().map_or("", |n| n.as_str()));
                self.rosters.remove(&bare);
                self.offline.remove(&bare);
                self.documents.retain(|(owner, _, _), _| *owner != bare);
                self.archive.remove(&bare);
                StorageAnswer::Written
            }
            StorageRequest::LoadCredentials { username, .. } => {
                StorageAnswer::Credentials(self.accounts.get(username).cloned())
            }
            StorageRequest::VerifyPlain {
                username,
                password,
                stand_in,
                ..
            } => StorageAnswer::PlainVerified(rookery_core::sasl::verify_plain(
                self.accounts.get(username),
                username,
                password,
                stand_in,
            )),
            StorageRequest::LoadRoster { user } => {
                let name = user
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                if self.accounts.contains_key(&name) {
                    StorageAnswer::Roster(Some(
                        self.rosters.get(user.as_str()).cloned().unwrap_or_default(),
                    ))
                } else {
                    StorageAnswer::Roster(None)
                }
            }
            StorageRequest::WriteRoster {
                user,
                changes,
                version,
            } => {
                self.rosters
                    .entry(user.to_string())
                    .or_default()
                    .apply(changes, *version);
                StorageAnswer::Written
            }
            StorageRequest::StoreOffline {
                user,
                sender,
                unless_blocked,
                stanza,
                quota,
                sender_quota,
            } => {
                let name = user
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                if !self.accounts.contains_key(&name) {
                    return StorageAnswer::Stored(StoreOutcome::NoSuchUser);
                }
                let blocked = self
                    .rosters
                    .get(user.as_str())
                    .is_some_and(|r| unless_blocked.iter().any(|j| r.blocked.contains(j)));
                if blocked {
                    return StorageAnswer::Stored(StoreOutcome::Blocked);
                }
                let queue = self.offline.entry(user.to_string()).or_default();
                let from_sender = queue
                    .iter()
                    .filter(|m| m.contains(&format!("from='{sender}/")))
                    .count();
                if queue.len() >= *quota || from_sender >= *sender_quota {
                    return StorageAnswer::Stored(StoreOutcome::QuotaExceeded);
                }
                queue.push(stanza.clone());
                StorageAnswer::Stored(StoreOutcome::Stored)
            }
            StorageRequest::LoadOffline {
                user,
                after,
                max_bytes,
            } => {
                let base = self
                    .offline_deleted
                    .get(user.as_str())
                    .copied()
                    .unwrap_or(0);
                let queue = self.offline.get(user.as_str()).cloned().unwrap_or_default();
                let mut messages = Vec::new();
                let mut bytes = 0;
                let mut more = false;
                for (i, stanza) in queue.into_iter().enumerate() {
                    let id = base + i as u64 + 1;
                    if id <= *after {
                        continue;
                    }
                    if !messages.is_empty() && bytes + stanza.len() > *max_bytes {
                        more = true;
                        break;
                    }
                    bytes += stanza.len();
                    messages.push(rookery_core::OfflineMessage { id, stanza });
                }
                StorageAnswer::Offline { messages, more }
            }
            StorageRequest::StoreLastActivity { user, at, status } => {
                self.last_activity
                    .insert(user.to_string(), (*at, status.clone()));
                StorageAnswer::Written
            }
            StorageRequest::LoadLastActivity { user } => {
                StorageAnswer::LastActivity(self.last_activity.get(user.as_str()).cloned())
            }
            StorageRequest::ArchiveMessage {
                seq,
                stanza,
                archives,
                unless_blocked,
                prefs_of,
                max_messages,
                ..
            } => {
                for (i, (user, with)) in archives.iter().enumerate() {
                    let roster = self.rosters.get(user.as_str());
                    let blocked = i == 0
                        && roster
                            .is_some_and(|r| unless_blocked.iter().any(|j| r.blocked.contains(j)));
                    let left_out = prefs_of.contains(user)
                        && roster.is_some_and(|r| {
                            jid::BareJid::new(&with.0).is_ok_and(|with| !r.archives(&with))
                        });
                    if blocked || left_out {
                        continue;
                    }
                    let archive = self.archive.entry(user.to_string()).or_default();
                    let message = ArchivedMessage {
                        seq: *seq,
                        stanza: stanza.clone(),
                    };
                    archive.push((message, with.clone()));
                    let excess = archive.len().saturating_sub(*max_messages);
                    archive.drain(..excess);
                }
                StorageAnswer::Written
            }
            StorageRequest::QueryArchive { user, query } => {
                let empty = Vec::new();
                let archive = self.archive.get(user.as_str()).unwrap_or(&empty);
                let position = |seq: &Option<u64>| match seq {
                    None => Some(None),
                    Some(seq) => archive.iter().position(|(m, _)| m.seq == *seq).map(Some),
                };
                let (Some(after), Some(before)) = (position(&query.after), position(&query.before))
                else {
                    return StorageAnswer::Archive(None);
                };
                let matches: Vec<ArchivedMessage> = archive
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| after.is_none_or(|a| *i > a) && before.is_none_or(|b| *i < b))
                    .filter(|(_, (m, _))| query.start.is_none_or(|s| m.seq >= s))
                    .filter(|(_, (m, _))| query.end.is_none_or(|e| m.seq <= e))
                    .filter(|(_, (_, with))| match &query.with {
                        None => true,
                        Some((bare, None)) => &with.0 == bare,
                        Some(whole) => with == whole,
                    })
                    .map(|(_, (m, _))| m.clone())
                    .collect();
                let complete = matches.len() <= query.max;
                let page = if query.backward {
                    matches[matches.len().saturating_sub(query.max)..].to_vec()
                } else {
                    matches.into_iter().take(query.max).collect()
                };
                StorageAnswer::Archive(Some((page, complete)))
            }
            StorageRequest::ExpireArchive { before, max } => {
                let mut expired = 0;
                for archive in self.archive.values_mut() {
                    let old = archive.iter().take_while(|(m, _)| m.seq < *before).count();
                    let n = old.min(max - expired);
                    archive.drain(..n);
                    expired += n;
                }
                StorageAnswer::Expired {
                    deleted: expired,
                    more: expired == *max,
                }
            }
            StorageRequest::LoadDocument { user, store, key } => StorageAnswer::Document(
                self.documents
                    .get(&(user.to_string(), *store, key.clone()))
                    .cloned(),
            ),
            StorageRequest::LoadDocuments {
                users,
                store,
                keys,
                max_bytes,
            } => {
                let mut found = Vec::new();
                let mut bytes = 0;
                for user in users {
                    for key in keys {
                        let Some(document) =
                            self.documents.get(&(user.to_string(), *store, key.clone()))
                        else {
                            continue;
                        };
                        if bytes + document.len() > *max_bytes && !found.is_empty() {
                            continue;
                        }
                        bytes += document.len();
                        found.push((user.clone(), key.clone(), document.clone()));
                    }
                }
                StorageAnswer::Documents(found)
            }
            StorageRequest::StoreDocuments {
                user,
                store,
                documents,
                max_documents,
                max_bytes,
            } => {
                if !self
                    .accounts
                    .contains_key(user.node().map_or("", |n| n.as_str()))
                {
                    return StorageAnswer::Stored(StoreOutcome::NoSuchUser);
                }
                let mut after = self.documents.clone();
                for (key, document) in documents {
                    let at = (user.to_string(), *store, key.clone());
                    match document {
                        Some(d) => after.insert(at, d.clone()),
                        None => after.remove(&at),
                    };
                }
                let usage = |all: &HashMap<(String, DocumentStore, String), String>| {
                    let mine = all
                        .iter()
                        .filter(|((u, s, _), _)| u == user.as_str() && s == store);
                    mine.fold((0, 0), |(n, b), (_, d)| (n + 1, b + d.len()))
                };
                let (before, now) = (usage(&self.documents), usage(&after));
                let grows = |now: usize, then: usize, max: usize| now > max && now > then;
                if grows(now.0, before.0, *max_documents) || grows(now.1, before.1, *max_bytes) {
                    return StorageAnswer::Stored(StoreOutcome::QuotaExceeded);
                }
                self.documents = after;
                StorageAnswer::Stored(StoreOutcome::Stored)
            }
            StorageRequest::DeleteOffline { user, up_to } => {
                let base = self.offline_deleted.entry(user.to_string()).or_insert(0);
                if let Some(queue) = self.offline.get_mut(user.as_str()) {
                    let n = (up_to.saturating_sub(*base) as usize).min(queue.len());
                    queue.drain(..n);
                    *base += n as u64;
                    if queue.is_empty() {
                        self.offline.remove(user.as_str());
                    }
                }
                StorageAnswer::Written
            }
        }
    }

    fn pump(&mut self) {
        loop {
            while let Some(output) = self.server.poll_output() {
                if !self.record {
                    match output {
                        Output::Storage { request, query } => self.pending.push((request, query)),
                        Output::Close { connection } => {
                            self.closed.insert(connection);
                            self.sockets_closing.push(connection);
                        }
                        Output::Abort { connection } => {
                            self.closed.insert(connection);
                        }
                        Output::NotifyWritten { connection, token } => {
                            self.unwritten.push((connection, token))
                        }
                        Output::Transmit { .. } | Output::StartTls { .. } => {}
                    }
                    continue;
                }
                self.log.push(output.clone());
                match output {
                    Output::Transmit { connection, data } => {
                        assert!(!self.closed.contains(&connection), "write after close");
                        let text = String::from_utf8(data).expect("server writes UTF-8");
                        self.received.entry(connection).or_default().push_str(&text);
                    }
                    Output::Close { connection } => {
                        self.closed.insert(connection);
                        self.sockets_closing.push(connection);
                    }
                    Output::Abort { connection } => {
                        self.closed.insert(connection);
                        self.aborted.push(connection);
                    }
                    Output::Storage { request, query } => self.pending.push((request, query)),
                    Output::StartTls { connection } => {
                        assert!(!self.closed.contains(&connection), "TLS after close");
                        self.tls_started.push(connection);
                    }
                    Output::NotifyWritten { connection, token } => {
                        assert!(!self.closed.contains(&connection), "notify after close");
                        self.unwritten.push((connection, token));
                    }
                }
            }
            if self.checks {
                self.server
                    .check_invariants()
                    .expect("session model invariants");
            }
            // A shim flushes a closed connection and reports its socket
            // closed (unless the test plays a client that stops reading).
            if self.auto_socket_close && !self.sockets_closing.is_empty() {
                for connection in std::mem::take(&mut self.sockets_closing) {
                    self.server.handle_peer_closed(connection, self.now);
                }
                continue;
            }
            if self.auto_written && !self.unwritten.is_empty() {
                for (connection, token) in std::mem::take(&mut self.unwritten) {
                    self.server.handle_written(connection, token, self.now);
                }
                continue;
            }
            if !self.auto_storage || self.pending.is_empty() {
                return;
            }
            for (request, query) in std::mem::take(&mut self.pending) {
                let answer = self.lookup(&query);
                self.server.handle_storage(request, answer, self.now);
            }
        }
    }

    /// Everything the server wrote to `conn` since the last call, with
    /// stream ids replaced by `ID`.
    pub fn take(&mut self, conn: ConnectionId) -> String {
        let text = self.received.remove(&conn).unwrap_or_default();
        mask_ids(&text)
    }

    pub fn is_closed(&self, conn: ConnectionId) -> bool {
        self.closed.contains(&conn)
    }

    /// Open a stream and authenticate with PLAIN, up to the restarted
    /// stream's features.
    pub fn authenticated(&mut self, user: &str, password: &str) -> ConnectionId {
        let c = self.connect();
        self.send(c, HEADER);
        self.send(c, &plain(user, password));
        self.send(c, HEADER);
        let got = self.take(c);
        // Other modules loaded, other features (modules.rs tests them).
        let config = self.server.config();
        let default_modules = config.expose_version
            && config.modules_disabled.is_empty()
            && config.contact_info.is_empty();
        let expected = if default_modules {
            BIND_FEATURES
        } else {
            "</stream:features>"
        };
        assert!(!self.record || got.ends_with(expected), "{got}");
        c
    }

    /// What disco#info says of `account`, asked by its resource `conn`.
    pub fn own_account_info(&mut self, conn: ConnectionId, account: &str) -> String {
        self.send(
            conn,
            &format!(
                "<iq type='get' id='d' to='{account}'>\
                 <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            ),
        );
        self.take(conn)
    }

    /// Log in and bind `resource`.
    pub fn bound(&mut self, user: &str, password: &str, resource: &str) -> ConnectionId {
        let c = self.authenticated(user, password);
        self.send(
            c,
            &format!(
                "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <resource>{resource}</resource></bind></iq>"
            ),
        );
        let got = self.take(c);
        assert!(!self.record || got.contains("<jid>"), "{got}");
        c
    }

    /// Run a SCRAM exchange with the independent client; returns what the
    /// server wrote in the end (success or failure).
    pub fn scram(&mut self, c: ConnectionId, hash: Hash, user: &str, password: &str) -> String {
        let client = ScramClient::new(hash, user, password, "fyko+d2lbbFgONRv9qkxdawL");
        self.scram_with(c, hash.mechanism(), client)
    }

    /// Run a SCRAM exchange under `mechanism` with a prepared client.
    pub fn scram_with(
        &mut self,
        c: ConnectionId,
        mechanism: &str,
        mut client: ScramClient,
    ) -> String {
        use base64::engine::general_purpose::STANDARD as B64;
        use base64::Engine;
        self.send(
            c,
            &format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{}</auth>",
                B64.encode(client.client_first())
            ),
        );
        let challenge = self.take(c);
        let Some(first) = between(
            &challenge,
            "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
            "</challenge>",
        ) else {
            return challenge;
        };
        let first = String::from_utf8(B64.decode(first).unwrap()).unwrap();
        let last = client.client_final(&first).unwrap();
        self.send(
            c,
            &format!(
                "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                B64.encode(last)
            ),
        );
        let outcome = self.take(c);
        if let Some(v) = between(
            &outcome,
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
            "</success>",
        ) {
            let v = String::from_utf8(B64.decode(v).unwrap()).unwrap();
            client
                .verify_server_final(&v)
                .expect("server proves it knows the keys");
        }
        outcome
    }
}

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

pub fn mask_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" id='") {
        // Only stream ids are masked; stanza ids sit on stanzas, whose
        // `id` attribute never directly follows `xmlns:stream='…'`.
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if head.ends_with("xmlns:stream='http://etherx.jabber.org/streams'") {
            let end = tail[5..].find('\'').map(|e| e + 6).unwrap_or(tail.len());
            out.push_str(" id='ID'");
            rest = &tail[end..];
        } else {
            out.push_str(" id='");
            rest = &tail[5..];
        }
    }
    out.push_str(rest);
    out
}
