//! One client connection: the stream, SASL and resource binding.
//!
//! This is the per-connection half of the core (quinn-proto's `Connection`
//! to the hub's `Endpoint`). It owns the XML parser and the negotiation
//! state, and knows nothing of rosters or other users: once its resource
//! is bound it hands each stanza to the [`Hub`] as a typed event.

use crate::bind::{self, BindRequest};
use crate::config::Config;
use crate::entropy::{Entropy, Seed};
use crate::hub::{Env, Hub};
use crate::limits::TokenBucket;
use crate::modules::stream_management as sm;
use crate::modules::{csi, register};
use crate::ns;
use crate::sasl::{self, Exchange, Mechanism, Offer, SaslFailure, Step};
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition, StanzaKind};
use crate::storage::{RequestId, StorageAnswer, StorageRequest};
use crate::stream::{self, Features, StreamError, StreamErrorCondition as Cond};
use crate::tls::{ChannelBinding, Encryption, Security};
use crate::xml::{Element, StreamParser, XmlError, XmlEvent};
use crate::{ConnectionId, Output};
use jid::BareJid;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

/// Effects collected while handling one input.
#[derive(Default)]
pub(crate) struct Outbox {
    pub outputs: VecDeque<Output>,
    /// Storage requests, kept apart from `outputs` and polled after
    /// them: a request queued between two stanzas for one connection
    /// (an archived chat's write, say) would otherwise split their write
    /// in two, and a client sending ten chats would cost its contact ten
    /// writes instead of one. Nothing orders a request against bytes.
    pub queries: VecDeque<(RequestId, StorageRequest)>,
    /// Other connections that must end with a stream error (e.g. the loser
    /// of a resource conflict).
    pub evictions: Vec<(ConnectionId, StreamError)>,
    /// Storage requests in flight, and whom they are for.
    pub lookups: HashMap<RequestId, ConnectionId>,
    /// Connections past their output high-water mark: stanzas from others
    /// are refused (see `backpressure`). Empty while everyone keeps up.
    pub congested: HashSet<ConnectionId>,
    next_request: u64,
}

impl Outbox {
    /// Queue bytes for a connection, appending to its last queued write when
    /// possible so that one input yields one write per connection.
    pub fn send(&mut self, connection: ConnectionId, text: &str) {
        if let Some(Output::Transmit {
            connection: c,
            data,
        }) = self.outputs.back_mut()
        {
            if *c == connection {
                data.extend_from_slice(text.as_bytes());
                return;
            }
        }
        self.outputs.push_back(Output::Transmit {
            connection,
            data: text.as_bytes().to_vec(),
        });
    }

    /// Record a crossing of a connection's output high-water mark.
    pub fn set_congested(&mut self, connection: ConnectionId, crossed: Option<bool>) {
        match crossed {
            Some(true) => {
                self.congested.insert(connection);
            }
            Some(false) => {
                self.congested.remove(&connection);
            }
            None => {}
        }
    }

    /// Whether a stanza from another session may be queued for
    /// `connection` (see `backpressure`).
    pub fn accepts(&self, connection: ConnectionId) -> bool {
        // Nearly always empty: no hashing then, on the path of every message.
        self.congested.is_empty() || !self.congested.contains(&connection)
    }

    /// Queue bytes as a write of their own, never joined to another:
    /// what the shim's output budget is measured against.
    pub fn send_separately(&mut self, connection: ConnectionId, text: &str) {
        self.outputs.push_back(Output::Transmit {
            connection,
            data: text.as_bytes().to_vec(),
        });
    }

    pub fn send_element(&mut self, connection: ConnectionId, element: &Element) {
        self.send(connection, &element.to_stream_string());
    }

    /// Ask storage something; the answer comes back under the returned id.
    pub fn storage(&mut self, query: StorageRequest) -> RequestId {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.queries.push_back((request, query));
        request
    }

    /// A storage query whose answer goes to `connection`.
    fn request(&mut self, connection: ConnectionId, query: StorageRequest) -> RequestId {
        let request = self.storage(query);
        self.lookups.insert(request, connection);
        request
    }
}

/// What a connection borrows from the server while it handles an input.
pub(crate) struct Ctx<'a> {
    pub config: &'a Config,
    pub throttle: &'a mut crate::limits::AuthThrottle,
    pub out: &'a mut Outbox,
    /// Where a bound stream's events go.
    pub hub: &'a mut Hub,
    pub now: Instant,
    pub clock: crate::clock::WallClock,
}

impl Ctx<'_> {
    /// The hub, and what it borrows from the server for one event.
    fn hub(&mut self) -> (&mut Hub, Env<'_>) {
        let env = Env {
            config: self.config,
            out: self.out,
            now: self.now,
            clock: self.clock,
        };
        (self.hub, env)
    }
}

/// Whether the connection lives on after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Open,
    Closed,
}

/// RFC 6120 section 4.2: a stream is opened by the client's header and
/// opened anew after SASL success.
enum StreamState {
    /// `notopen` in the session model: waiting for `<stream:stream>`.
    AwaitingHeader,
    Open,
}

/// `c2s_unauthed` or `c2s` in the session model.
enum Kind {
    Unauthed {
        failures: u32,
        /// Mechanism negotiations refused (see [`Step::Refused`]).
        refusals: u8,
        /// Boxed: SCRAM's state is most of a connection's size, and only
        /// the moments of a login need it.
        exchange: Option<Box<Exchange>>,
        /// The TLS session's channel bindings, kept until SASL is done.
        binding: Option<Box<ChannelBinding>>,
        /// A registration (XEP-0077) waiting for storage: its iq, for
        /// the answer.
        registering: Option<Box<Element>>,
    },
    Authenticated {
        user: BareJid,
        /// A resource is bound: the hub has a session for this stream.
        bound: bool,
    },
}

pub(crate) struct Connection {
    id: ConnectionId,
    parser: StreamParser,
    stream: StreamState,
    /// Set by the first header; the same for every restart.
    domain: Option<String>,
    kind: Kind,
    security: Security,
    entropy: Entropy,
    peer: IpAddr,
    /// Input not processed yet: received past the read rate, or while an
    /// exchange waits for storage. Empty (unallocated) otherwise.
    held: Vec<u8>,
    bucket: TokenBucket,
    /// Login deadline until bound, then idle deadline.
    session_deadline: Instant,
    /// Deadline for the TLS handshake while one runs, then for the first
    /// stream header.
    header_deadline: Option<Instant>,
    /// When the stanza being received started, if one is incomplete.
    stanza_started: Option<Instant>,
    /// When held input may be processed again.
    resume_at: Option<Instant>,
    /// When the stream, quiet between stanzas, parks its XML parser.
    park_at: Option<Instant>,
    /// The earliest of the above: when `handle_timeout` is due.
    pub deadline: Instant,
    /// Bytes sent to the shim and confirmed written (`backpressure`).
    pub output: crate::backpressure::OutputLevel,
    /// The connection broke rather than ended: the peer vanished, timed
    /// out or stopped reading. A resumable session outlives it.
    abrupt: bool,
}

impl Connection {
    /// A new connection; with `direct_tls` (XEP-0368) its handshake runs
    /// first and nothing is read or sent until it is reported done.
    pub fn new(
        id: ConnectionId,
        peer: IpAddr,
        seed: Seed,
        direct_tls: bool,
        config: &Config,
        now: Instant,
    ) -> Self {
        let limits = &config.limits;
        let (security, first_deadline) = if direct_tls {
            (Security::Handshaking, limits.tls_handshake_timeout)
        } else {
            (Security::Plain, limits.header_timeout)
        };
        let mut conn = Connection {
            id,
            parser: StreamParser::new(config.unauthenticated_xml()),
            stream: StreamState::AwaitingHeader,
            domain: None,
            kind: Kind::Unauthed {
                failures: 0,
                refusals: 0,
                exchange: None,
                binding: None,
                registering: None,
            },
            security,
            entropy: Entropy::new(seed),
            peer,
            held: Vec::new(),
            bucket: TokenBucket::new(limits.read_rate, limits.read_burst, now),
            session_deadline: now + config.login_timeout,
            header_deadline: Some(now + first_deadline),
            stanza_started: None,
            resume_at: None,
            park_at: None,
            deadline: now,
            output: Default::default(),
            abrupt: false,
        };
        conn.refresh_deadline(config);
        conn
    }

    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.kind, Kind::Authenticated { .. })
    }

    /// Whether the client may still send `<starttls/>`: while it may, the
    /// shim must not read ahead of the core, since the next bytes could be
    /// a TLS handshake.
    pub fn may_start_tls(&self, config: &Config) -> bool {
        config.encryption != Encryption::Unavailable
            && self.security == Security::Plain
            && matches!(self.kind, Kind::Unauthed { .. })
    }

    fn refresh_deadline(&mut self, config: &Config) {
        let stanza = self
            .stanza_started
            .map(|t| t + config.limits.stanza_timeout);
        self.deadline = [
            Some(self.session_deadline),
            self.header_deadline,
            stanza,
            self.resume_at,
            self.park_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.session_deadline);
    }

    /// Most input a connection may have waiting before it counts as a
    /// flood.
    fn max_held(config: &Config) -> usize {
        let burst = if config.limits.read_rate == 0 {
            0
        } else {
            config.limits.read_burst
        };
        config.xml.max_stanza_size.saturating_add(burst as usize)
    }

    /// Whether the connection broke rather than ended (see `abrupt`).
    pub fn is_abrupt(&self) -> bool {
        self.abrupt
    }

    /// The client stopped reading what it is sent.
    pub fn overflowed(&mut self, ctx: &mut Ctx) -> Flow {
        self.abrupt = true;
        self.fail(
            StreamError::with_text(Cond::PolicyViolation, "output queue full"),
            ctx,
        )
    }

    /// Whether a resource is bound on this stream.
    pub fn is_bound(&self) -> bool {
        matches!(self.kind, Kind::Authenticated { bound: true, .. })
    }

    fn waiting_for_storage(&self) -> bool {
        match &self.kind {
            Kind::Unauthed {
                exchange,
                registering,
                ..
            } => registering.is_some() || exchange.as_ref().is_some_and(|e| e.is_looking_up()),
            Kind::Authenticated { .. } => false,
        }
    }

    pub fn handle_bytes(&mut self, input: &[u8], ctx: &mut Ctx) -> Flow {
        if self.security == Security::Handshaking {
            // Plaintext while the shim runs a handshake: the shim read
            // past `<starttls/>`, so these bytes are untrustworthy.
            return self.fail(StreamError::new(Cond::PolicyViolation), ctx);
        }
        if self.is_bound() {
            self.session_deadline = ctx.now + ctx.config.idle_timeout;
        }
        let flow = if self.held.is_empty() && !self.waiting_for_storage() {
            // The common case: nothing waits, process what the rate allows
            // straight from the read.
            let allowed = self.bucket.take(input.len(), ctx.now);
            let (now, later) = input.split_at(allowed);
            match self.process(now, ctx) {
                Flow::Closed => Flow::Closed,
                Flow::Open => self.hold(later, ctx),
            }
        } else {
            match self.hold(input, ctx) {
                Flow::Closed => Flow::Closed,
                Flow::Open => self.drain(ctx),
            }
        };
        if flow == Flow::Open {
            self.after_input(ctx);
        }
        flow
    }

    /// Keep input for later; a client that makes us keep too much is
    /// flooding.
    fn hold(&mut self, input: &[u8], ctx: &mut Ctx) -> Flow {
        if input.is_empty() || self.security == Security::Handshaking {
            // Nothing sent after `<starttls/>` before the handshake counts.
            return Flow::Open;
        }
        if self.held.len() + input.len() > Self::max_held(ctx.config) {
            return self.fail(
                StreamError::with_text(Cond::PolicyViolation, "too much input"),
                ctx,
            );
        }
        self.held.extend_from_slice(input);
        Flow::Open
    }

    /// Process held input, as far as the read rate allows.
    fn drain(&mut self, ctx: &mut Ctx) -> Flow {
        if self.waiting_for_storage() || self.held.is_empty() {
            return Flow::Open;
        }
        let held = std::mem::take(&mut self.held);
        let allowed = self.bucket.take(held.len(), ctx.now);
        let flow = self.process(&held[..allowed], ctx);
        if flow == Flow::Closed {
            return flow;
        }
        // Whatever `process` had to keep comes first.
        self.held.extend_from_slice(&held[allowed..]);
        Flow::Open
    }

    /// Parse and act on input; stops (keeping the rest) when an exchange
    /// starts waiting for storage.
    fn process(&mut self, mut input: &[u8], ctx: &mut Ctx) -> Flow {
        while !input.is_empty() {
            if self.waiting_for_storage() {
                self.held.extend_from_slice(input);
                return Flow::Open;
            }
            match self.parser.next_event(&mut input) {
                Ok(None) => break,
                Ok(Some(event)) => {
                    if self.handle_event(event, ctx) == Flow::Closed {
                        return Flow::Closed;
                    }
                    if self.security == Security::Handshaking {
                        // RFC 6120 section 5.4.3.3: what followed
                        // `<starttls/>` was sent in the clear and is
                        // discarded (STARTTLS command injection).
                        return Flow::Open;
                    }
                }
                Err(e) => return self.fail(xml_stream_error(e), ctx),
            }
        }
        self.parser.release_if_idle();
        Flow::Open
    }

    /// Update the timers that depend on what input left behind.
    fn after_input(&mut self, ctx: &mut Ctx) {
        self.stanza_started = match (self.parser.in_stanza(), self.stanza_started) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(ctx.now),
        };
        if self.security == Security::Handshaking {
            self.held.clear();
        }
        self.resume_at = (!self.held.is_empty() && !self.waiting_for_storage())
            .then(|| self.bucket.ready_at(self.held.len(), ctx.now));
        // Zero turns parking off.
        self.park_at = (self.parser.may_park() && !ctx.config.park_parser_after.is_zero())
            .then(|| ctx.now + ctx.config.park_parser_after);
        if self.held.is_empty() {
            self.held = Vec::new();
        }
        self.refresh_deadline(ctx.config);
    }

    fn handle_event(&mut self, event: XmlEvent, ctx: &mut Ctx) -> Flow {
        match (event, &self.stream) {
            (XmlEvent::Header(header), StreamState::AwaitingHeader) => {
                let domain = match stream::validate_header(&header, ctx.config) {
                    Ok(d) => d,
                    Err(e) => return self.fail(e, ctx),
                };
                if self.domain.get_or_insert_with(|| domain.clone()) != &domain {
                    return self.fail(StreamError::new(Cond::HostUnknown), ctx);
                }
                self.header_deadline = None;
                self.open_stream(ctx);
                Flow::Open
            }
            (XmlEvent::Element(element), StreamState::Open) => self.handle_element(element, ctx),
            (XmlEvent::StreamEnd, StreamState::Open) => {
                ctx.out.send(self.id, "</stream:stream>");
                ctx.out.outputs.push_back(Output::Close {
                    connection: self.id,
                });
                Flow::Closed
            }
            // The parser yields a header only first, and elements only
            // after it; anything else is a parser invariant broken.
            _ => self.fail(StreamError::new(Cond::InternalServerError), ctx),
        }
    }

    fn open_stream(&mut self, ctx: &mut Ctx) {
        let id = self.entropy.hex_token(24);
        let mut reply = stream::response_header(&id, self.domain.as_deref());
        reply.push_str(&match &self.kind {
            Kind::Unauthed { binding, .. } => {
                let encryption = ctx.config.encryption;
                let plain = self.security == Security::Plain;
                let starttls = (plain && encryption != Encryption::Unavailable)
                    .then_some(encryption == Encryption::Required);
                // RFC 6120 section 5.3.1: with TLS mandatory, nothing but
                // STARTTLS is offered before it.
                let mechanisms = if self.sasl_allowed(ctx.config) {
                    Mechanism::offered(&self.sasl_offer(ctx.config)).collect()
                } else {
                    Vec::new()
                };
                let binding_types = binding.iter().flat_map(|b| b.types()).collect();
                stream::features(Features::Unauthed {
                    starttls,
                    mechanisms,
                    binding_types,
                    register: register::offered(ctx.config, self.sasl_allowed(ctx.config)),
                })
            }
            Kind::Authenticated { .. } => stream::features(Features::Bind {
                modules: &ctx.hub.loaded().stream_features,
            }),
        });
        ctx.out.send(self.id, &reply);
        self.stream = StreamState::Open;
    }

    /// Whether SASL may run on this stream: once encrypted, or always when
    /// the operator does not require encryption (RFC 6120 section 5.3.1).
    fn sasl_allowed(&self, config: &Config) -> bool {
        self.security == Security::Encrypted || config.encryption != Encryption::Required
    }

    /// What SASL may offer on this stream now.
    fn sasl_offer(&self, config: &Config) -> Offer<'_> {
        let binding = match &self.kind {
            Kind::Unauthed { binding, .. } => binding.as_deref(),
            Kind::Authenticated { .. } => None,
        };
        Offer {
            // PLAIN sends the password itself: only under TLS, unless the
            // operator turned encryption off.
            plain: config.offer_plain && self.sasl_allowed(config),
            binding,
        }
    }

    /// `<starttls/>` (RFC 6120 section 5.4.2): proceed if STARTTLS is on
    /// offer, otherwise `<failure/>` and close.
    fn handle_starttls(&mut self, element: &Element, ctx: &mut Ctx) -> Flow {
        if element.name() != "starttls" || !self.may_start_tls(ctx.config) {
            ctx.out.send(
                self.id,
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>",
            );
            ctx.out.outputs.push_back(Output::Close {
                connection: self.id,
            });
            return Flow::Closed;
        }
        ctx.out.send(
            self.id,
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        );
        ctx.out.outputs.push_back(Output::StartTls {
            connection: self.id,
        });
        self.security = Security::Handshaking;
        self.header_deadline = Some(ctx.now + ctx.config.limits.tls_handshake_timeout);
        self.restart_stream(ctx.config);
        Flow::Open
    }

    /// The shim finished the TLS handshake. The client opens a new stream
    /// over it (RFC 6120 section 5.4.3.3).
    pub fn handle_tls_established(&mut self, binding: ChannelBinding, ctx: &mut Ctx) -> Flow {
        if self.security != Security::Handshaking {
            // No handshake was asked for: a broken shim. Fail closed.
            return self.fail(StreamError::new(Cond::InternalServerError), ctx);
        }
        self.security = Security::Encrypted;
        if let Kind::Unauthed { binding: b, .. } = &mut self.kind {
            *b = (!binding.is_empty()).then(|| Box::new(binding));
        }
        self.header_deadline = Some(ctx.now + ctx.config.limits.header_timeout);
        self.refresh_deadline(ctx.config);
        Flow::Open
    }

    /// Both sides start a new stream: the next bytes are a header for a
    /// fresh parser.
    fn restart_stream(&mut self, config: &Config) {
        let limits = match self.kind {
            Kind::Unauthed { .. } => config.unauthenticated_xml(),
            Kind::Authenticated { .. } => config.xml,
        };
        self.parser = StreamParser::new(limits);
        self.stream = StreamState::AwaitingHeader;
    }

    fn handle_element(&mut self, element: Element, ctx: &mut Ctx) -> Flow {
        if element.ns() == ns::TLS {
            return self.handle_starttls(&element, ctx);
        }
        // A stanza in another namespace means the stream's default
        // namespace was not `jabber:client` (RFC 6120 section 4.9.3.10).
        if matches!(element.name(), "message" | "presence" | "iq") && element.ns() != ns::CLIENT {
            return self.fail(StreamError::new(Cond::InvalidNamespace), ctx);
        }
        match &self.kind {
            Kind::Unauthed { .. } => self.handle_unauthed(element, ctx),
            Kind::Authenticated { .. } => self.handle_authenticated(element, ctx),
        }
    }

    fn handle_unauthed(&mut self, element: Element, ctx: &mut Ctx) -> Flow {
        let offered = register::offered(ctx.config, self.sasl_allowed(ctx.config));
        if offered && StanzaKind::of(&element) == Some(StanzaKind::Iq) {
            return self.handle_registration(&element, ctx);
        }
        if StanzaKind::of(&element).is_some() {
            return self.fail(StreamError::new(Cond::NotAuthorized), ctx);
        }
        if element.ns() != ns::SASL {
            return self.fail(StreamError::new(Cond::UnsupportedStanzaType), ctx);
        }
        if !self.sasl_allowed(ctx.config) {
            return self.sasl_failure(SaslFailure::EncryptionRequired, ctx);
        }
        let Kind::Unauthed { exchange, .. } = &mut self.kind else {
            return Flow::Open;
        };
        let current = exchange.take();
        let domain = self.domain.clone().unwrap_or_default();
        let (next, step) = match (element.name(), current) {
            ("auth", _) if !ctx.throttle.allows(self.peer, &ctx.config.limits, ctx.now) => {
                // Too many failures from this address lately.
                (None, Step::Failure(SaslFailure::TemporaryAuthFailure))
            }
            ("auth", _) => {
                let offer = self.sasl_offer(ctx.config);
                let Some(mechanism) = element
                    .get_attr("mechanism")
                    .and_then(|m| Mechanism::from_offered(m, &offer))
                else {
                    return self.sasl_failure(SaslFailure::InvalidMechanism, ctx);
                };
                match sasl::decode_payload(&element) {
                    Ok(initial) => Exchange::start(mechanism, initial, &domain, &offer),
                    Err(f) => (None, Step::Failure(f)),
                }
            }
            ("response", Some(current)) => match sasl::decode_payload(&element) {
                Ok(data) => (*current).response(data.unwrap_or_default(), &domain),
                Err(f) => (None, Step::Failure(f)),
            },
            ("abort", _) => (None, Step::Failure(SaslFailure::Aborted)),
            // A response with no exchange in progress.
            _ => (None, Step::Failure(SaslFailure::MalformedRequest)),
        };
        self.sasl_step(next, step, ctx)
    }

    /// XEP-0077 before authentication: the form, or an account created
    /// (one storage request at a time; input waits meanwhile), at most
    /// `registration.max_per_address` per window from one address.
    fn handle_registration(&mut self, iq: &Element, ctx: &mut Ctx) -> Flow {
        // Answers to nothing the server asked (RFC 6120 section 8.3.1).
        if matches!(iq.get_attr("type"), Some("result" | "error")) {
            return Flow::Open;
        }
        let domain = self.domain.clone().unwrap_or_default();
        let (username, password, head) = match register::unauthed(iq, &domain, ctx.config) {
            register::Unauthed::Reply(reply) => {
                ctx.out.send_element(self.id, &reply);
                return Flow::Open;
            }
            register::Unauthed::Create {
                username,
                password,
                head,
            } => (username, password, head),
        };
        let limits = &ctx.config.registration;
        if !ctx
            .throttle
            .register(self.peer, limits.max_per_address, limits.window, ctx.now)
        {
            let refusal = error_reply(&head, StanzaErrorCondition::PolicyViolation);
            ctx.out.send_element(self.id, &refusal);
            return Flow::Open;
        }
        if let Kind::Unauthed { registering, .. } = &mut self.kind {
            *registering = Some(Box::new(head));
        }
        let request = StorageRequest::CreateAccount {
            username,
            domain,
            password,
            iterations: ctx.config.scram_iterations,
        };
        ctx.out.request(self.id, request);
        Flow::Open
    }

    fn sasl_step(&mut self, next: Option<Exchange>, step: Step, ctx: &mut Ctx) -> Flow {
        if let Kind::Unauthed { exchange, .. } = &mut self.kind {
            *exchange = next.map(Box::new);
        }
        match step {
            Step::Challenge(data) => {
                ctx.out
                    .send_element(self.id, &sasl::encode_payload("challenge", Some(&data)));
                Flow::Open
            }
            Step::LookUp(username) => {
                let Some(domain) = self.may_try(&username, ctx) else {
                    return self.sasl_failure(SaslFailure::TemporaryAuthFailure, ctx);
                };
                ctx.out.request(
                    self.id,
                    StorageRequest::LoadCredentials { username, domain },
                );
                Flow::Open
            }
            Step::Verify { username, password } => {
                let Some(domain) = self.may_try(&username, ctx) else {
                    return self.sasl_failure(SaslFailure::TemporaryAuthFailure, ctx);
                };
                let request = StorageRequest::VerifyPlain {
                    username,
                    domain,
                    password,
                    stand_in: ctx.config.stand_in(),
                };
                ctx.out.request(self.id, request);
                Flow::Open
            }
            Step::Success {
                username,
                additional,
            } => self.authenticated(&username, additional, ctx),
            Step::Failure(failure) => {
                if failure == SaslFailure::NotAuthorized {
                    let limits = &ctx.config.limits;
                    ctx.throttle.record_failure(self.peer, limits, ctx.now);
                }
                self.sasl_failure(failure, ctx)
            }
            // Counted for the account when the password was tried
            // (`may_try`), for the address now.
            Step::Denied(_) => {
                let limits = &ctx.config.limits;
                ctx.throttle.record_failure(self.peer, limits, ctx.now);
                self.sasl_failure(SaslFailure::NotAuthorized, ctx)
            }
            Step::Refused(failure) => self.sasl_refusal(failure, ctx),
        }
    }

    /// Whether `username` may be tried from this address now: not after
    /// too many failures for it from here lately (others from here are
    /// not affected). If so, the stream's domain, to look the user up in;
    /// if not, the exchange is over.
    fn may_try(&mut self, username: &str, ctx: &mut Ctx) -> Option<String> {
        let domain = self.domain.clone().unwrap_or_default();
        let account = format!("{username}@{domain}");
        let (limits, secret) = (&ctx.config.limits, &ctx.config.secret);
        if ctx
            .throttle
            .attempt(self.peer, &account, secret, limits, ctx.now)
        {
            return Some(domain);
        }
        if let Kind::Unauthed { exchange, .. } = &mut self.kind {
            *exchange = None;
        }
        None
    }

    /// A mechanism negotiation refused: no password was tried, so neither
    /// the stream's failure count nor the address's grows, up to one
    /// refusal per SCRAM mechanism we offer (what a client walking down
    /// our list needs); more count as failures.
    fn sasl_refusal(&mut self, failure: SaslFailure, ctx: &mut Ctx) -> Flow {
        let Kind::Unauthed {
            refusals, exchange, ..
        } = &mut self.kind
        else {
            return Flow::Open;
        };
        if usize::from(*refusals) >= Mechanism::SCRAM_COUNT {
            return self.sasl_failure(failure, ctx);
        }
        *refusals += 1;
        *exchange = None;
        ctx.out.send_element(self.id, &failure.to_element());
        Flow::Open
    }

    fn sasl_failure(&mut self, failure: SaslFailure, ctx: &mut Ctx) -> Flow {
        ctx.out.send_element(self.id, &failure.to_element());
        let Kind::Unauthed {
            failures, exchange, ..
        } = &mut self.kind
        else {
            return Flow::Open;
        };
        *exchange = None;
        *failures += 1;
        if *failures > ctx.config.max_auth_failures {
            // RFC 6120 section 6.4.5: past the retry limit the connection
            // is terminated.
            return self.fail(
                StreamError::with_text(
                    Cond::PolicyViolation,
                    "too many failed authentication attempts",
                ),
                ctx,
            );
        }
        Flow::Open
    }

    fn authenticated(
        &mut self,
        username: &str,
        additional: Option<Vec<u8>>,
        ctx: &mut Ctx,
    ) -> Flow {
        let domain = self.domain.clone().unwrap_or_default();
        let account = format!("{username}@{domain}");
        ctx.throttle
            .succeeded(self.peer, &account, &ctx.config.secret);
        let Ok(user) = BareJid::new(&account) else {
            return self.sasl_failure(SaslFailure::NotAuthorized, ctx);
        };
        ctx.out.send_element(
            self.id,
            &sasl::encode_payload("success", additional.as_deref()),
        );
        self.kind = Kind::Authenticated { user, bound: false };
        // RFC 6120 section 6.4.6: both sides restart the stream.
        self.restart_stream(ctx.config);
        Flow::Open
    }

    /// Storage answered the credentials look-up.
    pub fn handle_credentials(&mut self, answer: StorageAnswer, ctx: &mut Ctx) -> Flow {
        let Kind::Unauthed {
            exchange,
            registering,
            ..
        } = &mut self.kind
        else {
            return Flow::Open;
        };
        if let Some(head) = registering.take() {
            if answer == StorageAnswer::AccountCreated(false) {
                ctx.throttle.registration_refused(self.peer);
            }
            ctx.out
                .send_element(self.id, &register::created(&head, &answer));
            let flow = self.drain(ctx);
            if flow == Flow::Open {
                self.after_input(ctx);
            }
            return flow;
        }
        let Some(current) = exchange.take() else {
            return Flow::Open;
        };
        let stand_in = &ctx.config.stand_in();
        let (next, step) = match answer {
            StorageAnswer::Credentials(c) => {
                (*current).credentials(Ok(c), stand_in, &mut self.entropy)
            }
            StorageAnswer::PlainVerified(ok) => (*current).verified(Ok(ok)),
            _ if matches!(*current, Exchange::PlainVerifying { .. }) => {
                (*current).verified(Err(()))
            }
            _ => (*current).credentials(Err(()), stand_in, &mut self.entropy),
        };
        if self.sasl_step(next, step, ctx) == Flow::Closed {
            return Flow::Closed;
        }
        let flow = self.drain(ctx);
        if flow == Flow::Open {
            self.after_input(ctx);
        }
        flow
    }

    fn handle_authenticated(&mut self, element: Element, ctx: &mut Ctx) -> Flow {
        if element.ns() == sm::NS && ctx.hub.loaded().has(sm::MODULE.name) {
            return self.handle_stream_management(&element, ctx);
        }
        if element.ns() == csi::NS && ctx.hub.loaded().has(csi::MODULE.name) {
            let (hub, mut env) = ctx.hub();
            hub.client_state(&mut env, self.id, &element);
            return Flow::Open;
        }
        let Some(kind) = StanzaKind::of(&element) else {
            return self.fail(StreamError::new(Cond::UnsupportedStanzaType), ctx);
        };
        let Kind::Authenticated { user, bound } = &mut self.kind else {
            return Flow::Open;
        };
        if kind == StanzaKind::Iq {
            if let Some(bind) = bind::as_bind(&element) {
                if *bound {
                    // One resource per stream (RFC 6120 section 7.7.2.1).
                    let error = error_reply(&element, StanzaErrorCondition::NotAllowed);
                    let (hub, mut env) = ctx.hub();
                    hub.answer(&mut env, self.id, &error);
                    return Flow::Open;
                }
                match bind::bind_request(&element, bind, user, &mut self.entropy) {
                    BindRequest::Refuse(error) => ctx.out.send_element(self.id, &error),
                    BindRequest::Bind(jid) => {
                        let (hub, mut env) = ctx.hub();
                        match hub.bind(&mut env, self.id, jid, &element) {
                            Ok(()) => {
                                *bound = true;
                                self.session_deadline = ctx.now + ctx.config.idle_timeout;
                            }
                            Err(refusal) => ctx.out.send_element(self.id, &refusal),
                        }
                    }
                }
                return Flow::Open;
            }
            if bind::is_session_request(&element) {
                let mut result = iq_result(&element, None);
                result.remove_attr("from");
                if *bound {
                    let (hub, mut env) = ctx.hub();
                    hub.answer(&mut env, self.id, &result);
                } else {
                    ctx.out.send_element(self.id, &result);
                }
                return Flow::Open;
            }
        }
        if !*bound {
            // RFC 6120 section 7.1: no stanzas before a resource is bound.
            return self.fail(StreamError::new(Cond::NotAuthorized), ctx);
        }
        let (hub, mut env) = ctx.hub();
        match hub.stanza(&mut env, self.id, kind, element) {
            Ok(()) => Flow::Open,
            Err(e) => self.fail(e, ctx),
        }
    }

    /// XEP-0198's elements are the hub's business (they concern the
    /// session, which may outlive this stream); a resumption makes this
    /// stream carry the session it resumed.
    fn handle_stream_management(&mut self, element: &Element, ctx: &mut Ctx) -> Flow {
        let Kind::Authenticated { user, bound } = &mut self.kind else {
            return Flow::Open;
        };
        let (hub, mut env) = ctx.hub();
        match hub.stream_management(&mut env, self.id, user, element, &mut self.entropy) {
            Ok(resumed) => {
                if resumed {
                    *bound = true;
                    self.session_deadline = ctx.now + ctx.config.idle_timeout;
                }
                Flow::Open
            }
            Err(error) => self.fail(error, ctx),
        }
    }

    pub fn handle_timeout(&mut self, ctx: &mut Ctx) -> Flow {
        let now = ctx.now;
        let limits = ctx.config.limits;
        if self.resume_at.is_some_and(|t| t <= now) {
            self.resume_at = None;
            if self.drain(ctx) == Flow::Closed {
                return Flow::Closed;
            }
            self.after_input(ctx);
        }
        let expired = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if expired(self.park_at) {
            self.park_at = None;
            self.parser.park();
        }
        if expired(self.stanza_started.map(|t| t + limits.stanza_timeout)) {
            self.abrupt = true;
            return self.fail(
                StreamError::with_text(Cond::ConnectionTimeout, "stanza not completed in time"),
                ctx,
            );
        }
        if expired(self.header_deadline) || self.session_deadline <= now {
            self.abrupt = true;
            return self.fail(StreamError::new(Cond::ConnectionTimeout), ctx);
        }
        self.refresh_deadline(ctx.config);
        Flow::Open
    }

    pub fn handle_peer_closed(&mut self, ctx: &mut Ctx) -> Flow {
        // Everything that arrived before the close is handled, past the
        // read rate (go-sendxmpp closes right after its message).
        if !self.held.is_empty() && !self.waiting_for_storage() {
            let held = std::mem::take(&mut self.held);
            if self.process(&held, ctx) == Flow::Closed {
                return Flow::Closed;
            }
        }
        self.abrupt = true;
        ctx.out.outputs.push_back(Output::Close {
            connection: self.id,
        });
        Flow::Closed
    }

    /// End the stream with a stream error and close the connection.
    pub fn fail(&mut self, error: StreamError, ctx: &mut Ctx) -> Flow {
        if self.security == Security::Handshaking {
            // Mid-handshake there is no stream to carry an error, and
            // plaintext must not be written: just close.
            ctx.out.outputs.push_back(Output::Close {
                connection: self.id,
            });
            return Flow::Closed;
        }
        let mut text = String::new();
        if matches!(self.stream, StreamState::AwaitingHeader) {
            // RFC 6120 section 4.9.1.2: an error before our header is sent
            // still needs a stream to be carried on.
            let id = self.entropy.hex_token(24);
            text.push_str(&stream::response_header(&id, self.domain.as_deref()));
        }
        text.push_str(&error.to_closing_bytes());
        ctx.out.send(self.id, &text);
        ctx.out.outputs.push_back(Output::Close {
            connection: self.id,
        });
        Flow::Closed
    }
}

fn xml_stream_error(error: XmlError) -> StreamError {
    match error {
        XmlError::NotWellFormed(_) => StreamError::new(Cond::NotWellFormed),
        XmlError::Restricted(_) => StreamError::new(Cond::RestrictedXml),
        XmlError::TooLarge(what) => StreamError::with_text(Cond::PolicyViolation, what),
        XmlError::Internal(what) => StreamError::with_text(Cond::InternalServerError, what),
    }
}
