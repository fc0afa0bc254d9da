//! Harnesses shared by the fuzz targets (`fuzz/`) and the corpus replay
//! test, so that a corpus file means the same thing in both. Not part of
//! the server's API.

use crate::sasl::StoredCredentials;
use crate::xml::{StreamParser, XmlLimits};
use crate::{
    Config, ConnectionId, Output, Seed, Server, StorageAnswer, StorageRequest, StoreOutcome,
};
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A stored personal eventing node, as storage answers every read of one.
const NODE: &str = "<node xmlns='urn:rookery:pep:0' name='http://jabber.org/protocol/nick' \
    access='presence' max-items='1' persist='1' send-last='on_sub_and_presence' \
    notify-retract='1'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>\
    Juliet</nick></item></node>";

/// A stream header for `localhost`.
pub const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// Fragments of real client traffic, so that fuzzing reaches deep states
/// without guessing a whole login. Logins are PLAIN for juliet/r0m30 and
/// romeo/r0m30.
pub const FRAGMENTS: &[&[u8]] = &[
    HEADER,
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMA==</auth>",
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHIwbTMw</auth>",
    b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
    b"<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
    b"<presence/>",
    b"<presence type='unavailable'/>",
    b"<presence to='romeo@localhost' type='subscribe'/>",
    b"<presence to='juliet@localhost' type='subscribed'/>",
    b"<presence to='juliet@localhost' type='subscribe'/>",
    b"<presence to='romeo@localhost' type='subscribed'/>",
    b"<presence to='romeo@localhost' type='unsubscribe'/>",
    b"<message to='romeo@localhost' type='chat'><body>hi</body></message>",
    b"<message to='juliet@localhost/r' type='chat'><body>hi</body></message>",
    b"<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    b"<iq type='set' id='s'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost'/></query></iq>",
    b"<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost' subscription='remove'/></query></iq>",
    b"</stream:stream>",
    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>cD10bHMtZXhwb3J0ZXIsLG49anVsaWV0LHI9YWJj</auth>",
    b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
    b"<enable xmlns='urn:xmpp:sm:3'/>",
    b"<r xmlns='urn:xmpp:sm:3'/>",
    b"<a xmlns='urn:xmpp:sm:3' h='1'/>",
    b"<a xmlns='urn:xmpp:sm:3' h='4294967295'/>",
    b"<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
    b"<inactive xmlns='urn:xmpp:csi:0'/>",
    b"<active xmlns='urn:xmpp:csi:0'/>",
    b"<iq type='set' id='k'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>",
    b"<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    b"<iq type='get' id='l' to='romeo@localhost'><query xmlns='jabber:iq:last'/></iq>",
    b"<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>",
    b"<iq type='get' id='w' to='romeo@localhost'><vCard xmlns='vcard-temp'/></iq>",
    b"<iq type='set' id='q'><query xmlns='jabber:iq:private'><a xmlns='a:b'>x</a></query></iq>",
    b"<iq type='get' id='g'><query xmlns='jabber:iq:private'><a xmlns='a:b'/></query></iq>",
    b"<iq type='set' id='m'><query xmlns='urn:xmpp:mam:2' queryid='q'><set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set></query></iq>",
    b"<iq type='set' id='n'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>romeo@localhost</value></field><field var='start'><value>2026-01-01T00:00:00Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><after>1</after></set><flip-page/></query></iq>",
    b"<iq type='set' id='p'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@localhost/x</jid></always><never><jid>juliet@localhost</jid></never></prefs></iq>",
    b"<iq type='get' id='p'><prefs xmlns='urn:xmpp:mam:2'/></iq>",
    // Entity capabilities following nicknames, and the answer to the
    // server's first question about them.
    b"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://tester' ver='vURgFtUSdFBvX8sSiItx4MN3H9o='/></presence>",
    b"<iq type='result' to='localhost' id='caps vURgFtUSdFBvX8sSiItx4MN3H9o='><query xmlns='http://jabber.org/protocol/disco#info' node='https://tester#vURgFtUSdFBvX8sSiItx4MN3H9o='><identity category='client' type='pc' name='Tester'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/nick'/><feature var='http://jabber.org/protocol/nick+notify'/></query></iq>",
    b"<iq type='set' id='pp'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>J</nick></item></publish></pubsub></iq>",
    b"<iq type='set' id='po'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item><nick xmlns='http://jabber.org/protocol/nick'>J</nick></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#max_items'><value>max</value></field></x></publish-options></pubsub></iq>",
    b"<iq type='get' id='pi' to='romeo@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick' max_items='1'/></pubsub></iq>",
    b"<iq type='set' id='pr'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='http://jabber.org/protocol/nick' notify='1'><item id='current'/></retract></pubsub></iq>",
    b"<iq type='set' id='pd'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='http://jabber.org/protocol/nick'/></pubsub></iq>",
    b"<iq type='get' id='pc'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='http://jabber.org/protocol/nick'/></pubsub></iq>",
    b"<iq type='set' id='bk'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='verona@chat.localhost' autojoin='true'><nick>j</nick></conference></storage></query></iq>",
    b"<iq type='get' id='bg'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>",
    // In-band registration before login, a password change, a removal.
    b"<iq type='set' id='rg'><query xmlns='jabber:iq:register'><username>nurse</username><password>pw</password></query></iq>",
    b"<iq type='set' id='rp'><query xmlns='jabber:iq:register'><username>juliet</username><password>r0m30</password></query></iq>",
    b"<iq type='set' id='rx'><query xmlns='jabber:iq:register'><remove/></query></iq>",
];

fn credentials() -> &'static StoredCredentials {
    static C: OnceLock<StoredCredentials> = OnceLock::new();
    C.get_or_init(|| StoredCredentials::derive("r0m30", b"fuzz-salt", 1).expect("valid password"))
}

/// A server with in-memory storage that answers at once, and checks of
/// everything that must always hold.
pub struct Harness {
    pub server: Server,
    pub now: Instant,
    closed: HashSet<ConnectionId>,
    next: u64,
    /// Stream management resumption tokens the server handed out.
    pub tokens: Vec<String>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        // STARTTLS offered but optional, so that both the plaintext logins
        // of the captured corpus and the TLS paths are reachable.
        let mut config = Config {
            encryption: crate::Encryption::Optional,
            ..Config::default()
        };
        // Every module, the archive's too (off by default), and
        // registration.
        config.archive.enabled = true;
        config.registration.allowed = true;
        Harness {
            server: Server::new(config),
            now: Instant::now(),
            closed: HashSet::new(),
            next: 0,
            tokens: Vec::new(),
        }
    }

    pub fn connect(&mut self) -> ConnectionId {
        self.next += 1;
        let id = ConnectionId(self.next);
        let seed = Seed([self.next as u8; 32]);
        self.server
            .handle_accept(id, std::net::Ipv4Addr::LOCALHOST.into(), seed, self.now);
        self.pump();
        id
    }

    pub fn send(&mut self, id: ConnectionId, data: &[u8]) {
        self.server.handle_bytes(id, data, self.now);
        self.pump();
    }

    pub fn close(&mut self, id: ConnectionId) {
        self.server.handle_peer_closed(id, self.now);
        self.pump();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        self.pump();
    }

    /// Carry out outputs (storage answered from fixed data) and check the
    /// invariants. Panics on a broken one: that is the finding.
    fn pump(&mut self) {
        loop {
            let mut queries = Vec::new();
            let mut handshakes = Vec::new();
            let mut written = Vec::new();
            let mut sockets_closed = Vec::new();
            while let Some(output) = self.server.poll_output() {
                match output {
                    Output::Transmit { connection, data } => {
                        assert!(!self.closed.contains(&connection), "write after close");
                        let text = String::from_utf8_lossy(&data);
                        if let Some(rest) = text.split("<enabled ").nth(1) {
                            if let Some(id) = rest.split("id='").nth(1) {
                                let token = id.split('\'').next().unwrap_or_default();
                                self.tokens.push(token.to_owned());
                            }
                        }
                    }
                    Output::Close { connection } => {
                        self.closed.insert(connection);
                        // The shim flushes, closes the socket, reports it.
                        sockets_closed.push(connection);
                    }
                    Output::Abort { connection } => {
                        self.closed.insert(connection);
                    }
                    Output::Storage { request, query } => queries.push((request, query)),
                    Output::StartTls { connection } => {
                        assert!(!self.closed.contains(&connection), "TLS after close");
                        handshakes.push(connection);
                    }
                    Output::NotifyWritten { connection, token } => {
                        if !self.closed.contains(&connection) {
                            written.push((connection, token));
                        }
                    }
                }
            }
            // Every write completes at once.
            let wrote = !written.is_empty() || !sockets_closed.is_empty();
            for connection in sockets_closed {
                self.server.handle_peer_closed(connection, self.now);
            }
            for (connection, token) in written {
                self.server.handle_written(connection, token, self.now);
            }
            // Every handshake succeeds at once, with fixed binding data.
            for connection in handshakes {
                let binding = crate::ChannelBinding {
                    tls_exporter: Some(vec![0x42; 32]),
                    tls_server_end_point: Some(vec![0x24; 32]),
                };
                self.server
                    .handle_tls_established(connection, binding, self.now);
            }
            if let Err(broken) = self.server.check_invariants() {
                panic!("invariant broken: {broken}");
            }
            // (An established handshake produces no output of its own.)
            if queries.is_empty() && !wrote {
                return;
            }
            for (request, query) in queries {
                let answer = match query {
                    StorageRequest::CreateAccount { username, .. } => {
                        StorageAnswer::AccountCreated(username.len() % 2 == 0)
                    }
                    StorageRequest::SetPassword { .. } | StorageRequest::DeleteAccount { .. } => {
                        StorageAnswer::Written
                    }
                    StorageRequest::LoadCredentials { .. } => {
                        StorageAnswer::Credentials(Some(credentials().clone()))
                    }
                    StorageRequest::VerifyPlain {
                        username,
                        password,
                        stand_in,
                        ..
                    } => StorageAnswer::PlainVerified(crate::sasl::verify_plain(
                        Some(credentials()),
                        &username,
                        &password,
                        &stand_in,
                    )),
                    StorageRequest::LoadRoster { .. } => {
                        StorageAnswer::Roster(Some(Default::default()))
                    }
                    StorageRequest::WriteRoster { .. } => StorageAnswer::Written,
                    StorageRequest::StoreOffline { .. } => {
                        StorageAnswer::Stored(StoreOutcome::Stored)
                    }
                    StorageRequest::LoadOffline { .. } => StorageAnswer::Offline {
                        messages: Vec::new(),
                        more: false,
                    },
                    StorageRequest::DeleteOffline { .. } => StorageAnswer::Written,
                    StorageRequest::StoreLastActivity { .. } => StorageAnswer::Written,
                    StorageRequest::LoadLastActivity { .. } => {
                        StorageAnswer::LastActivity(Some((0, "gone".into())))
                    }
                    // Every other node is missing, the rest hold a nick.
                    StorageRequest::LoadDocument {
                        key,
                        store: crate::storage::DocumentStore::Pep,
                        ..
                    } => StorageAnswer::Document((key.len() % 2 == 0).then(|| NODE.to_owned())),
                    StorageRequest::LoadDocuments { users, keys, .. } => StorageAnswer::Documents(
                        users
                            .iter()
                            .zip(keys.iter().cycle())
                            .map(|(user, key)| (user.clone(), key.clone(), NODE.to_owned()))
                            .collect(),
                    ),
                    // Every other document is missing, the rest a vCard.
                    StorageRequest::LoadDocument { key, .. } => {
                        StorageAnswer::Document((key.len() % 2 == 0).then(|| {
                            "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>".to_owned()
                        }))
                    }
                    StorageRequest::ArchiveMessage { .. } => StorageAnswer::Written,
                    // A page of one message, or an unknown id.
                    StorageRequest::QueryArchive { query, .. } => {
                        StorageAnswer::Archive(query.after.is_none().then(|| {
                            let stanza = "<message type='chat'><body>old</body></message>";
                            let message = crate::storage::ArchivedMessage {
                                seq: 1,
                                stanza: stanza.into(),
                            };
                            (vec![message], query.backward)
                        }))
                    }
                    StorageRequest::ExpireArchive { max, .. } => StorageAnswer::Expired {
                        deleted: max / 2,
                        more: false,
                    },
                    StorageRequest::StoreDocuments { documents, .. } => {
                        StorageAnswer::Stored(if documents.len() > 3 {
                            StoreOutcome::QuotaExceeded
                        } else {
                            StoreOutcome::Stored
                        })
                    }
                };
                self.server.handle_storage(request, answer, self.now);
            }
        }
    }

    /// Everyone leaves, and hibernating sessions expire: nothing may
    /// remain.
    pub fn finish(mut self) {
        for id in 1..=self.next {
            self.close(ConnectionId(id));
        }
        let hibernation = self.server.config().stream_management.hibernation;
        self.advance(hibernation + Duration::from_secs(1));
        assert_eq!(self.server.connection_count(), 0);
        assert!(self.server.sessions().is_empty());
        assert_eq!(
            self.server.rosters_held(),
            0,
            "a roster outlived its sessions"
        );
    }
}

/// Target 1: arbitrary bytes into one session. Byte 0 picks a prelude
/// (nothing, a header, or a header, login and bind); the rest is cut into
/// chunks at every 0xFF, and a 0xFE advances the clock by ten minutes.
pub fn session_bytes(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut h = Harness::new();
    let c = h.connect();
    let prelude: &[&[u8]] = match mode % 3 {
        0 => &[],
        1 => &[HEADER],
        _ => &[HEADER, FRAGMENTS[1], HEADER, FRAGMENTS[3]],
    };
    for chunk in prelude {
        h.send(c, chunk);
    }
    for chunk in rest.split(|&b| b == 0xff) {
        for (i, part) in chunk.split(|&b| b == 0xfe).enumerate() {
            if i > 0 {
                h.advance(Duration::from_secs(600));
            }
            h.send(c, part);
        }
    }
    h.finish();
}

/// Target 3: the XML layer alone. The outcome must not depend on where the
/// input is split (byte 0 picks the split point).
pub fn xml_stream(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let parse = |chunks: &[&[u8]]| {
        let mut parser = StreamParser::new(XmlLimits::default());
        let mut events = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            loop {
                match parser.next_event(&mut input) {
                    Ok(Some(event)) => events.push(Ok(event)),
                    Ok(None) => break,
                    Err(e) => {
                        events.push(Err(e));
                        return events;
                    }
                }
            }
        }
        events
    };
    let whole = parse(&[rest]);
    let at = if rest.is_empty() {
        0
    } else {
        usize::from(cut) % rest.len()
    };
    let split = parse(&[&rest[..at], &rest[at..]]);
    // An error may be reported with different detail; where it happens and
    // everything before it must agree.
    assert_eq!(whole.len(), split.len(), "event count depends on chunking");
    for (a, b) in whole.iter().zip(&split) {
        match (a, b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "events depend on chunking"),
            (Err(_), Err(_)) => {}
            _ => panic!("outcome depends on chunking: {a:?} vs {b:?}"),
        }
    }
}

/// One step of the structured target (target 2), decoded by `arbitrary`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Action {
    Connect,
    /// A fragment of real traffic (see [`FRAGMENTS`]) on a connection.
    Fragment {
        connection: u8,
        which: u8,
    },
    /// Arbitrary bytes on a connection.
    Bytes {
        connection: u8,
        data: Vec<u8>,
    },
    Close {
        connection: u8,
    },
    Advance {
        seconds: u16,
    },
    /// `<resume/>` with a token the server handed out, on a connection.
    Resume {
        connection: u8,
        token: u8,
        h: u8,
    },
}

/// Target 2: several sessions driven through connects, traffic, closes and
/// time steps; the session model's invariants are checked after each.
pub fn sessions(actions: &[Action]) {
    let mut h = Harness::new();
    let mut live: Vec<ConnectionId> = Vec::new();
    let pick = |live: &[ConnectionId], i: u8| {
        (!live.is_empty()).then(|| live[usize::from(i) % live.len()])
    };
    for action in actions.iter().take(256) {
        match action {
            Action::Connect => live.push(h.connect()),
            Action::Fragment { connection, which } => {
                if let Some(c) = pick(&live, *connection) {
                    h.send(c, FRAGMENTS[usize::from(*which) % FRAGMENTS.len()]);
                }
            }
            Action::Bytes { connection, data } => {
                if let Some(c) = pick(&live, *connection) {
                    h.send(c, data);
                }
            }
            Action::Close { connection } => {
                if let Some(c) = pick(&live, *connection) {
                    h.close(c);
                    live.retain(|l| *l != c);
                }
            }
            Action::Advance { seconds } => h.advance(Duration::from_secs(u64::from(*seconds))),
            Action::Resume {
                connection,
                token,
                h: handled,
            } => {
                let token = (!h.tokens.is_empty())
                    .then(|| h.tokens[usize::from(*token) % h.tokens.len()].clone());
                if let (Some(c), Some(token)) = (pick(&live, *connection), token) {
                    let resume =
                        format!("<resume xmlns='urn:xmpp:sm:3' previd='{token}' h='{handled}'/>");
                    h.send(c, resume.as_bytes());
                }
            }
        }
    }
    h.finish();
}
