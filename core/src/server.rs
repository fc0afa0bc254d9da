//! The server endpoint: owns every connection and the hub, and is the only
//! type a shim talks to.

use crate::admission::Admission;
use crate::clock::WallClock;
use crate::config::Config;
use crate::connection::{Connection, Ctx, Flow, Outbox};
use crate::entropy::Seed;
use crate::hub::{Env, Hub};
use crate::limits::AuthThrottle;
use crate::session_manager::SessionManager;
use crate::storage::{RequestId, StorageAnswer, StorageRequest};
use crate::stream::{StreamError, StreamErrorCondition};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;

/// Names a transport connection. The shim chooses it at accept time and
/// must not reuse it while the core still knows the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// An effect for the shim to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the connection.
    Transmit {
        connection: ConnectionId,
        data: Vec<u8>,
    },
    /// Flush what was transmitted, then close the connection. The core has
    /// forgotten its stream, but counts it against the connection limits
    /// until the shim reports the socket closed
    /// ([`Server::handle_peer_closed`]), or until `close_drain_timeout`
    /// passes: then [`Output::Abort`].
    Close { connection: ConnectionId },
    /// Cut the connection at once, dropping what is still queued: a
    /// closed connection did not drain within `close_drain_timeout` (its
    /// client reads too slowly, or not at all).
    Abort { connection: ConnectionId },
    /// Flush what was transmitted (`<proceed/>`), then run a TLS server
    /// handshake on the connection and report it with
    /// [`Server::handle_tls_established`] (or [`Server::handle_peer_closed`]
    /// if it fails). Nothing more may be read in plaintext: bytes the
    /// client sent before its handshake are dropped by the core, and the
    /// shim must not have read past the input that produced this.
    StartTls { connection: ConnectionId },
    /// Run this query and report the answer with
    /// [`Server::handle_storage`].
    Storage {
        request: RequestId,
        query: StorageRequest,
    },
    /// Once every byte transmitted to the connection before this output
    /// has been written to its socket, call [`Server::handle_written`]
    /// with `token`. If the connection closes first, never.
    NotifyWritten {
        connection: ConnectionId,
        token: u64,
    },
}

/// Lend the server's shared state to one input's handling.
macro_rules! ctx {
    ($server:ident, $now:expr) => {
        Ctx {
            config: &$server.config,
            throttle: &mut $server.throttle,
            out: &mut $server.out,
            hub: &mut $server.hub,
            now: $now,
            clock: $server.clock,
        }
    };
}

/// Lend the hub what it borrows from the server for one event.
macro_rules! hub {
    ($server:ident, $now:expr) => {
        (
            &mut $server.hub,
            Env {
                config: &$server.config,
                out: &mut $server.out,
                now: $now,
                clock: $server.clock,
            },
        )
    };
}

/// A sans-IO XMPP c2s server. See the crate documentation for the loop.
pub struct Server {
    config: Config,
    /// Boxed: a connection is about a kilobyte, and a map of them inline
    /// would hold that much again in spare capacity per connection.
    connections: HashMap<ConnectionId, Box<Connection>>,
    /// Sessions, rosters and the IM modules.
    hub: Hub,
    throttle: AuthThrottle,
    /// Who may connect: counts and rates per address prefix.
    admission: Admission,
    out: Outbox,
    /// Each live connection's deadline, soonest first.
    timers: BTreeSet<(Instant, ConnectionId)>,
    clock: WallClock,
    /// The server is stopping: new connections are refused.
    shutting_down: bool,
    /// Connections closed by the core whose sockets the shim has not yet
    /// reported closed: their address and when they are cut.
    closing: HashMap<ConnectionId, (IpAddr, bool, Instant)>,
    closing_timers: BTreeSet<(Instant, ConnectionId)>,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Server {
            hub: Hub::new(&config),
            config,
            connections: HashMap::new(),
            throttle: AuthThrottle::default(),
            admission: Admission::default(),
            out: Outbox::default(),
            timers: BTreeSet::new(),
            clock: WallClock::default(),
            shutting_down: false,
            closing: HashMap::new(),
            closing_timers: BTreeSet::new(),
        }
    }

    /// The operator stops the server (SIGTERM): every stream ends with
    /// `<system-shutdown/>` and every session with its unavailable
    /// presence; connections that come later are refused the same way.
    /// Storage requests already emitted stay to be run: the shim drains
    /// them before it exits, so nothing acknowledged is lost.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            self.with_connection(id, now, |c, ctx| {
                c.fail(StreamError::new(StreamErrorCondition::SystemShutdown), ctx)
            });
        }
        let (hub, mut env) = hub!(self, now);
        hub.shutdown(&mut env);
    }

    /// The current wall-clock time, for dates shown to clients (delay
    /// stamps, entity time). Report it before each input, or at least
    /// every second.
    pub fn handle_wall_clock(&mut self, now: WallClock) {
        self.clock = now;
        self.hub.clock(now);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A client connected from `peer`. `seed` must come from a
    /// cryptographic RNG: the connection draws its stream ids and SCRAM
    /// nonces from it.
    pub fn handle_accept(
        &mut self,
        connection: ConnectionId,
        peer: IpAddr,
        seed: Seed,
        now: Instant,
    ) {
        self.accept(connection, peer, seed, false, now);
    }

    /// A client connected to the direct TLS listener (XEP-0368). The shim
    /// runs the handshake at once and reports it with
    /// [`Server::handle_tls_established`]; the core times it out with
    /// `tls_handshake_timeout`. Connection limits apply before the
    /// handshake, so refusing costs no cryptography.
    pub fn handle_accept_direct_tls(
        &mut self,
        connection: ConnectionId,
        peer: IpAddr,
        seed: Seed,
        now: Instant,
    ) {
        self.accept(connection, peer, seed, true, now);
    }

    fn accept(
        &mut self,
        connection: ConnectionId,
        peer: IpAddr,
        seed: Seed,
        direct_tls: bool,
        now: Instant,
    ) {
        if self.connections.contains_key(&connection) {
            return;
        }
        let limits = &self.config.limits;
        // A hibernating session stands for a connection that will come
        // back: it counts.
        let open = self.connections.len() + self.closing.len() + self.hub.hibernating();
        let admitted = match self.shutting_down {
            true => Err("shutting down"),
            false => self.admission.admit(peer, open, limits, now),
        };
        if let Err(why) = admitted {
            if direct_tls {
                // No TLS yet, so no stream to carry an error on.
                self.out.outputs.push_back(Output::Close { connection });
                return;
            }
            // Refused before any state is kept: our header, the error, close.
            let id = crate::entropy::Entropy::new(seed).hex_token(24);
            let mut text = crate::stream::response_header(&id, None);
            let error = if self.shutting_down {
                StreamError::new(StreamErrorCondition::SystemShutdown)
            } else {
                StreamError::with_text(StreamErrorCondition::PolicyViolation, why)
            };
            text.push_str(&error.to_closing_bytes());
            self.out.send(connection, &text);
            self.out.outputs.push_back(Output::Close { connection });
            return;
        }
        let conn = Connection::new(connection, peer, seed, direct_tls, &self.config, now);
        self.timers.insert((conn.deadline, connection));
        self.connections.insert(connection, Box::new(conn));
        self.throttle.expire(&self.config.limits, now);
    }

    /// Bytes arrived from the client, split anywhere.
    pub fn handle_bytes(&mut self, connection: ConnectionId, data: &[u8], now: Instant) {
        self.with_connection(connection, now, |c, ctx| c.handle_bytes(data, ctx));
    }

    /// The TLS handshake asked for by [`Output::StartTls`] (or for a direct
    /// TLS connection) completed; `binding` carries what SCRAM-PLUS needs.
    pub fn handle_tls_established(
        &mut self,
        connection: ConnectionId,
        binding: crate::ChannelBinding,
        now: Instant,
    ) {
        self.with_connection(connection, now, |c, ctx| {
            c.handle_tls_established(binding, ctx)
        });
    }

    /// Whether the client may still send `<starttls/>`. While it may, the
    /// shim must hand the core one read at a time and wait for it to be
    /// handled before reading more: the bytes after `<starttls/>` belong to
    /// the TLS handshake, not to the XML stream.
    pub fn may_start_tls(&self, connection: ConnectionId) -> bool {
        self.connections
            .get(&connection)
            .is_some_and(|c| c.may_start_tls(&self.config))
    }

    /// The connection's output queue is full: the client reads slower than
    /// it is sent to. Its session ends with `<policy-violation/>` (the shim
    /// sends these last bytes past its queue bound) and its contacts see it
    /// go unavailable.
    pub fn handle_output_overflow(&mut self, connection: ConnectionId, now: Instant) {
        self.with_connection(connection, now, |c, ctx| c.overflowed(ctx));
    }

    /// What was transmitted before [`Output::NotifyWritten`] with this
    /// `token` has been written to the connection's socket.
    pub fn handle_written(&mut self, connection: ConnectionId, token: u64, now: Instant) {
        let budget = self.config.output_buffer;
        let probe = self
            .connections
            .get_mut(&connection)
            .and_then(|conn| conn.output.written(token, budget));
        if let Some(changes) = probe {
            if let Some(token) = changes.probe {
                self.out
                    .outputs
                    .push_back(Output::NotifyWritten { connection, token });
            }
            self.out.set_congested(connection, changes.congested);
            return;
        }
        let (hub, mut env) = hub!(self, now);
        hub.written(&mut env, connection, token);
    }

    /// The operator deleted `user` or changed its password: every
    /// session of the account ends with `<not-authorized/>` and `text`,
    /// as its credentials no longer hold.
    pub fn handle_end_sessions(&mut self, user: &jid::BareJid, text: &str, now: Instant) {
        let error = StreamError::with_text(StreamErrorCondition::NotAuthorized, text);
        let (hub, mut env) = hub!(self, now);
        hub.end_sessions(&mut env, user, &error);
        self.settle(now);
    }

    /// The client closed the TCP connection or it broke.
    pub fn handle_peer_closed(&mut self, connection: ConnectionId, now: Instant) {
        self.with_connection(connection, now, |c, ctx| c.handle_peer_closed(ctx));
        // Its socket is gone: it no longer counts.
        if let Some((peer, authenticated, deadline)) = self.closing.remove(&connection) {
            self.closing_timers.remove(&(deadline, connection));
            self.admission.closed(peer, authenticated);
        }
    }

    /// Time has passed; call at (or after) [`Server::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, connection)) = self.closing_timers.first() {
            if deadline > now {
                break;
            }
            self.closing_timers.pop_first();
            if let Some((peer, authenticated, _)) = self.closing.remove(&connection) {
                self.admission.closed(peer, authenticated);
                self.out.outputs.push_back(Output::Abort { connection });
            }
        }
        while let Some(&(deadline, connection)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            self.with_connection(connection, now, |c, ctx| c.handle_timeout(ctx));
        }
        self.settle(now);
    }

    /// A storage request finished.
    pub fn handle_storage(&mut self, request: RequestId, answer: StorageAnswer, now: Instant) {
        if let Some(connection) = self.out.lookups.remove(&request) {
            self.with_connection(connection, now, |c, ctx| c.handle_credentials(answer, ctx));
        } else {
            let (hub, mut env) = hub!(self, now);
            hub.storage(&mut env, request, answer);
            self.settle(now);
        }
    }

    /// The next effect, if any. Drain this after every `handle_*` call.
    pub fn poll_output(&mut self) -> Option<crate::Output> {
        let Some(output) = self.out.outputs.pop_front() else {
            let (request, query) = self.out.queries.pop_front()?;
            return Some(crate::Output::Storage { request, query });
        };
        if let Output::Transmit { connection, data } = &output {
            // What the connection's client has yet to read: counted as it
            // leaves, so every path that writes is counted once.
            let budget = self.config.output_buffer;
            if let Some(conn) = self.connections.get_mut(connection) {
                let changes = conn.output.sent(data.len(), budget);
                if let Some(token) = changes.probe {
                    self.out.outputs.push_front(Output::NotifyWritten {
                        connection: *connection,
                        token,
                    });
                }
                self.out.set_congested(*connection, changes.congested);
            }
        }
        Some(output)
    }

    /// When [`Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let streams = self.timers.first().map(|(deadline, _)| *deadline);
        let closing = self.closing_timers.first().map(|(deadline, _)| *deadline);
        let hub = self.hub.poll_timeout();
        streams.into_iter().chain(closing).chain(hub).min()
    }

    pub fn sessions(&self) -> &SessionManager {
        self.hub.sessions()
    }

    /// Rosters held in memory (users online, or with work pending).
    pub fn rosters_held(&self) -> usize {
        self.hub.rosters().loaded_count()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// The session model's invariants, plus: every session's connection is
    /// live and points back at it.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.hub.check_invariants()?;
        for s in self.hub.sessions().iter() {
            let Some(connection) = s.connection() else {
                continue;
            };
            if !self
                .connections
                .get(&connection)
                .is_some_and(|c| c.is_bound())
            {
                return Err(format!(
                    "{:?} is carried by {connection:?}, not a bound stream",
                    s.id
                ));
            }
        }
        Ok(())
    }

    fn with_connection(
        &mut self,
        id: ConnectionId,
        now: Instant,
        f: impl FnOnce(&mut Connection, &mut Ctx) -> Flow,
    ) {
        let Some(conn) = self.connections.get_mut(&id) else {
            return;
        };
        let before = conn.deadline;
        let was_authenticated = conn.is_authenticated();
        let mut ctx = ctx!(self, now);
        let flow = f(conn, &mut ctx);
        if !was_authenticated && conn.is_authenticated() {
            self.admission.authenticated(conn.peer());
        }
        match flow {
            Flow::Closed => self.remove(id, before, now),
            Flow::Open => {
                // Also re-arms a timer `handle_timeout` already took.
                self.timers.remove(&(before, id));
                self.timers.insert((conn.deadline, id));
            }
        }
        self.settle(now);
    }

    /// Run what an input left due: hibernating sessions ended, and
    /// connections whose sessions another input ended closed.
    fn settle(&mut self, now: Instant) {
        loop {
            let (hub, mut env) = hub!(self, now);
            hub.handle_timeout(&mut env);
            if self.out.evictions.is_empty() {
                return;
            }
            self.evict(now);
        }
    }

    /// Close connections whose sessions another input ended.
    fn evict(&mut self, now: Instant) {
        while let Some((id, error)) = self.out.evictions.pop() {
            let Some(conn) = self.connections.get_mut(&id) else {
                continue;
            };
            let deadline = conn.deadline;
            let mut ctx = ctx!(self, now);
            conn.fail(error, &mut ctx);
            self.remove(id, deadline, now);
        }
    }

    /// Forget a closed connection; its session, if any, ends: observers
    /// get their unavailable presence and the session leaves every set.
    fn remove(&mut self, id: ConnectionId, deadline: Instant, now: Instant) {
        self.timers.remove(&(deadline, id));
        if let Some(conn) = self.connections.remove(&id) {
            self.timers.remove(&(conn.deadline, id));
            // Answers to its storage queries must not reach anyone else.
            self.out.lookups.retain(|_, c| *c != id);
            self.out.congested.remove(&id);
            // Counted until its socket is closed, which takes at most
            // `close_drain_timeout`.
            let cut = now + self.config.limits.close_drain_timeout;
            self.closing
                .insert(id, (conn.peer(), conn.is_authenticated(), cut));
            self.closing_timers.insert((cut, id));
            if conn.is_bound() {
                let (hub, mut env) = hub!(self, now);
                hub.connection_lost(&mut env, id, conn.is_abrupt());
            }
        }
    }
}
