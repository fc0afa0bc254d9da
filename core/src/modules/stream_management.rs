//! Stream Management (XEP-0198): acknowledgements, and sessions that
//! survive the loss of their connection.
//!
//! Once a client enables it, every stanza delivered to its session is
//! counted and kept until the client acknowledges it (`<a h='…'/>`), and
//! every stanza it sends is counted for its own requests (`<r/>`). With
//! resumption, a session whose connection breaks is detached for a while
//! instead of ended; a new connection of the same account that presents
//! its token (`<resume/>`) takes it over, learns how many of its stanzas
//! were handled, and receives again whatever it had not acknowledged.
//!
//! Nothing acknowledged to a sender is lost on the way: when a managed
//! session ends (closed, evicted, or its hibernation expired), the
//! messages its client never acknowledged go to offline storage, and
//! stanzas that were read from offline storage stay there until their
//! delivery is acknowledged.
//!
//! A session that has not enabled stream management has no entry here.

use super::Module;
use crate::hub::Ctx;
use crate::ns;
use crate::session::SessionId;
use crate::stream::StreamError;
use crate::xml::Element;
use crate::ConnectionId;
use jid::BareJid;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const NS: &str = "urn:xmpp:sm:3";

pub(crate) const MODULE: Module = Module {
    name: "stream_management",
    stream_features: |_| vec![Element::new("sm", NS)],
    ..Module::NONE
};

/// What the hub keeps for managed sessions.
#[derive(Default)]
pub(crate) struct StreamManagement {
    sessions: HashMap<SessionId, Box<Managed>>,
    /// Resumable sessions by their token.
    tokens: HashMap<Box<str>, SessionId>,
    /// Detached sessions, by when their hibernation ends.
    expiries: BTreeSet<(Instant, SessionId)>,
    /// Tokens of sessions that ended, with how many stanzas from their
    /// client were handled, oldest first; bounded.
    gone: HashMap<Box<str>, u32>,
    gone_order: VecDeque<Box<str>>,
}

/// One managed session.
struct Managed {
    /// Its resumption token, if the client asked for resumption.
    token: Option<Box<str>>,
    /// How long it hibernates once its connection is lost.
    hibernation: Duration,
    /// While it hibernates: when it ends (its entry in `expiries`).
    until: Option<Instant>,
    /// Stanzas received from the client (`h` of our answers), mod 2^32.
    handled: u32,
    /// Stanzas delivered to the client, mod 2^32.
    sent: u32,
    /// Delivered and not yet acknowledged, oldest first: the last is
    /// number `sent`.
    unacked: VecDeque<Kept>,
    unacked_bytes: usize,
    /// Receipts owed once the stanza of that number is acknowledged.
    receipts: VecDeque<(u32, u64)>,
    /// An `<r/>` is out and not yet answered.
    requested: bool,
}

/// A stanza delivered and kept until acknowledged.
struct Kept {
    stanza: Box<str>,
    /// Read from offline storage, where it stays until acknowledged: not
    /// to be stored again.
    stored: bool,
}

/// What delivering one stanza to a managed session asks of the hub.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Not managed: write it, nothing more.
    Unmanaged,
    /// Kept; write it, then `<r/>` if `request`.
    Kept { request: bool },
    /// Past the bounds: kept, but the session must end.
    Overflow,
}

/// `<r/>`, asking the client how much it has handled.
pub(crate) const REQUEST: &str = "<r xmlns='urn:xmpp:sm:3'/>";

impl StreamManagement {
    pub fn is_managed(&self, session: SessionId) -> bool {
        !self.sessions.is_empty() && self.sessions.contains_key(&session)
    }

    /// Whether the session may keep another stanza while detached.
    pub fn has_room(&self, session: SessionId, config: &crate::config::Config) -> bool {
        let limits = &config.stream_management;
        self.sessions.get(&session).is_some_and(|m| {
            m.token.is_some()
                && m.unacked.len() < limits.max_unacked_stanzas
                && m.unacked_bytes < limits.max_unacked_bytes
        })
    }

    /// A stanza goes to the session's client: count and keep it.
    pub fn keep(
        &mut self,
        session: SessionId,
        stanza: &str,
        stored: bool,
        config: &crate::config::Config,
    ) -> Keep {
        if self.sessions.is_empty() {
            // No session uses stream management: no hashing on the path
            // of every stanza.
            return Keep::Unmanaged;
        }
        let Some(m) = self.sessions.get_mut(&session) else {
            return Keep::Unmanaged;
        };
        m.sent = m.sent.wrapping_add(1);
        m.unacked_bytes += stanza.len();
        m.unacked.push_back(Kept {
            stanza: stanza.into(),
            stored,
        });
        let limits = &config.stream_management;
        if m.unacked.len() > limits.max_unacked_stanzas
            || m.unacked_bytes > limits.max_unacked_bytes
        {
            return Keep::Overflow;
        }
        let request = !m.requested;
        m.requested = true;
        Keep::Kept { request }
    }

    /// Report `token` to the hub once everything delivered so far is
    /// acknowledged; `false` if the session is not managed.
    pub fn receipt(&mut self, session: SessionId, token: u64) -> bool {
        let Some(m) = self.sessions.get_mut(&session) else {
            return false;
        };
        m.receipts.push_back((m.sent, token));
        true
    }

    /// Report `token` once the next stanza delivered is acknowledged.
    fn receipt_after_next(&mut self, session: SessionId, token: u64) {
        if let Some(m) = self.sessions.get_mut(&session) {
            m.receipts.push_back((m.sent.wrapping_add(1), token));
        }
    }

    /// How many sessions hibernate.
    pub fn hibernating(&self) -> usize {
        self.expiries.len()
    }

    /// When the next hibernation ends.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// End a hibernating session's hibernation now (its queue is full,
    /// or it was told to go).
    pub fn expire_now(&mut self, session: SessionId, now: Instant) {
        if let Some(m) = self.sessions.get_mut(&session) {
            if let Some(until) = m.until.replace(now) {
                self.expiries.remove(&(until, session));
                self.expiries.insert((now, session));
            }
        }
    }

    /// The session no longer hibernates (resumed, or ended).
    fn wake(&mut self, session: SessionId) {
        if let Some(until) = self.sessions.get_mut(&session).and_then(|m| m.until.take()) {
            self.expiries.remove(&(until, session));
        }
    }

    /// Every entry refers to a live session, and every hibernating
    /// session has exactly its expiry.
    pub fn check_invariants(
        &self,
        sessions: &crate::session_manager::SessionManager,
    ) -> Result<(), String> {
        for (session, m) in &self.sessions {
            let s = sessions
                .get(*session)
                .ok_or(format!("stream management keeps ended {session:?}"))?;
            let detached = s.connection().is_none();
            if detached != m.until.is_some() {
                return Err(format!(
                    "{session:?} is detached: {detached}, until {:?}",
                    m.until
                ));
            }
            if let Some(until) = m.until {
                if !self.expiries.contains(&(until, *session)) {
                    return Err(format!("{session:?} hibernates with no expiry"));
                }
            }
        }
        if self.expiries.len() != self.sessions.values().filter(|m| m.until.is_some()).count() {
            return Err("an expiry refers to no hibernating session".into());
        }
        for (token, session) in &self.tokens {
            let own = self.sessions.get(session).and_then(|m| m.token.as_deref());
            if own != Some(&**token) {
                return Err(format!("token of {session:?} is stale"));
            }
        }
        Ok(())
    }

    /// Sessions whose hibernation has ended by `now`, taken off the list.
    pub fn expired(&mut self, now: Instant) -> Vec<SessionId> {
        let mut out = Vec::new();
        while let Some(&(at, session)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(m) = self.sessions.get_mut(&session) {
                m.until = None;
            }
            out.push(session);
        }
        out
    }

    fn remember_gone(&mut self, token: Box<str>, handled: u32, capacity: usize) {
        if capacity == 0 {
            return;
        }
        while self.gone_order.len() >= capacity {
            if let Some(old) = self.gone_order.pop_front() {
                self.gone.remove(&old);
            }
        }
        self.gone.insert(token.clone(), handled);
        self.gone_order.push_back(token);
    }
}

/// A stanza from the session's client was handled.
pub(crate) fn handled(ctx: &mut Ctx, session: SessionId) {
    if ctx.sm.sessions.is_empty() {
        return;
    }
    if let Some(m) = ctx.sm.sessions.get_mut(&session) {
        m.handled = m.handled.wrapping_add(1);
    }
}

/// A stream management element from `connection`, authenticated as
/// `user`, carrying `session` if bound. `token` is fresh randomness for a
/// resumption token. Returns the session the connection now carries, if
/// `<resume/>` gave it one.
pub(crate) fn handle(
    ctx: &mut Ctx,
    connection: ConnectionId,
    user: &BareJid,
    session: Option<SessionId>,
    element: &Element,
    token: impl FnOnce() -> String,
) -> Result<Option<SessionId>, StreamError> {
    match (element.name(), session) {
        ("enable", Some(session)) => {
            enable(ctx, connection, session, element, token);
            Ok(None)
        }
        ("r", Some(session)) if ctx.sm.is_managed(session) => {
            let handled = ctx.sm.sessions.get(&session).map_or(0, |m| m.handled);
            ctx.out.send(connection, &answer(handled));
            Ok(None)
        }
        ("a", Some(session)) if ctx.sm.is_managed(session) => {
            acknowledged(ctx, session, element).map(|()| None)
        }
        ("resume", None) => Ok(resume(ctx, connection, user, element)),
        // Enabling twice, resuming on a bound stream, or acknowledging
        // without stream management enabled.
        _ => {
            ctx.out
                .send(connection, &failed(None, "unexpected-request"));
            Ok(None)
        }
    }
}

fn answer(handled: u32) -> String {
    format!("<a xmlns='{NS}' h='{handled}'/>")
}

fn failed(handled: Option<u32>, condition: &str) -> String {
    let h = handled.map(|h| format!(" h='{h}'")).unwrap_or_default();
    format!(
        "<failed xmlns='{NS}'{h}><{condition} xmlns='{}'/></failed>",
        ns::STANZAS
    )
}

fn enable(
    ctx: &mut Ctx,
    connection: ConnectionId,
    session: SessionId,
    element: &Element,
    token: impl FnOnce() -> String,
) {
    if ctx.sm.is_managed(session) {
        ctx.out
            .send(connection, &failed(None, "unexpected-request"));
        return;
    }
    let resume = matches!(element.get_attr("resume"), Some("true") | Some("1"));
    let limit = ctx.config.stream_management.hibernation;
    // A client may ask for a shorter hibernation, never a longer one.
    let hibernation = element
        .get_attr("max")
        .and_then(|m| m.parse::<u64>().ok())
        .map_or(limit, |secs| Duration::from_secs(secs).min(limit));
    let token: Option<Box<str>> = resume.then(|| token().into());
    let mut enabled = Element::new("enabled", NS);
    if let Some(token) = &token {
        enabled.set_attr("id", token);
        enabled.set_attr("resume", "true");
        enabled.set_attr("max", &hibernation.as_secs().to_string());
        ctx.sm.tokens.insert(token.clone(), session);
    }
    ctx.sm.sessions.insert(
        session,
        Box::new(Managed {
            token,
            hibernation,
            until: None,
            handled: 0,
            sent: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            receipts: VecDeque::new(),
            requested: false,
        }),
    );
    ctx.out.send(connection, &enabled.to_stream_string());
    // Offline pages sent before this wait for their socket write, which
    // a resumption would never report: they leave storage once the
    // client acknowledges a stanza sent after them instead.
    for token in crate::offline::pages_in_flight(ctx, session) {
        ctx.sm.receipt_after_next(session, token);
    }
}

/// `<a h='…'/>`: the client handled every stanza up to number `h`.
fn acknowledged(ctx: &mut Ctx, session: SessionId, element: &Element) -> Result<(), StreamError> {
    let h = element.get_attr("h").and_then(|h| h.parse::<u32>().ok());
    let Some(m) = ctx.sm.sessions.get_mut(&session) else {
        return Ok(());
    };
    m.requested = false;
    let Some(h) = h else {
        return Err(StreamError::with_text(
            crate::stream::StreamErrorCondition::BadFormat,
            "an acknowledgement needs a number",
        ));
    };
    let first = m.sent.wrapping_sub(m.unacked.len() as u32);
    if (h.wrapping_sub(first) as i32) < 0 {
        // Behind what was acknowledged already: nothing new.
        return Ok(());
    }
    let newly = h.wrapping_sub(first) as usize;
    if newly > m.unacked.len() {
        // XEP-0198 section 4: the client claims more than was sent.
        let condition = Element::new("handled-count-too-high", NS)
            .attr("h", &h.to_string())
            .attr("send-count", &m.sent.to_string());
        return Err(StreamError::application(&condition));
    }
    for kept in m.unacked.drain(..newly) {
        m.unacked_bytes -= kept.stanza.len();
    }
    let mut due = Vec::new();
    while let Some(&(number, token)) = m.receipts.front() {
        // Acknowledged when `number` lies within the acknowledged span.
        if h.wrapping_sub(number) as i32 >= 0 {
            m.receipts.pop_front();
            due.push(token);
        } else {
            break;
        }
    }
    for token in due {
        crate::offline::delivered(ctx, session, token);
    }
    Ok(())
}

/// `<resume previd='…' h='…'/>` on an authenticated, unbound stream.
fn resume(
    ctx: &mut Ctx,
    connection: ConnectionId,
    user: &BareJid,
    element: &Element,
) -> Option<SessionId> {
    let previd = element.get_attr("previd").unwrap_or_default();
    let h = element.get_attr("h").and_then(|h| h.parse::<u32>().ok());
    let found = ctx.sm.tokens.get(previd).copied().filter(|s| {
        // Another account's token is as good as none.
        ctx.sessions
            .get(*s)
            .is_some_and(|s| s.jid.to_bare() == *user)
    });
    let Some(h) = h else {
        ctx.out.send(connection, &failed(None, "bad-request"));
        return None;
    };
    let Some(session) = found else {
        let handled = ctx.sm.gone.get(previd).copied();
        ctx.out.send(connection, &failed(handled, "item-not-found"));
        return None;
    };
    let ack = Element::new("a", NS).attr("h", &h.to_string());
    if acknowledged(ctx, session, &ack).is_err() {
        // Claims more than was sent: the old session stays for a
        // resumption that counts right.
        ctx.out
            .send(connection, &failed(None, "unexpected-request"));
        return None;
    }
    ctx.sm.wake(session);
    if let Some(old) = ctx.sessions.attach(session, connection) {
        // A resumption can come before the old connection is known to
        // be dead: it goes now.
        let error = StreamError::with_text(
            crate::stream::StreamErrorCondition::Conflict,
            "replaced by a resumed session",
        );
        ctx.out.evictions.push((old, error));
    }
    let Some(m) = ctx.sm.sessions.get_mut(&session) else {
        return Some(session);
    };
    let resumed = format!(
        "<resumed xmlns='{NS}' previd='{previd}' h='{}'/>",
        m.handled
    );
    ctx.out.send(connection, &resumed);
    // Everything not acknowledged goes again, in order, each a write of
    // its own (they add up to at most `max_unacked_bytes`), then a
    // request.
    for kept in &m.unacked {
        ctx.out.send_separately(connection, &kept.stanza);
    }
    m.requested = !m.unacked.is_empty();
    if m.requested {
        ctx.out.send(connection, REQUEST);
    }
    // A new stream starts active (XEP-0352 section 4).
    ctx.flush_held(session);
    Some(session)
}

/// The session's connection was lost abruptly: a resumable session
/// hibernates (`true`); any other must end.
pub(crate) fn hibernate(ctx: &mut Ctx, session: SessionId) -> bool {
    let Some(m) = ctx.sm.sessions.get_mut(&session) else {
        return false;
    };
    if m.token.is_none() {
        return false;
    }
    m.requested = false;
    let until = ctx.now + m.hibernation;
    m.until = Some(until);
    ctx.sessions.detach(session, until);
    ctx.sm.expiries.insert((until, session));
    true
}

/// A managed session ends: its token is remembered for a late
/// `<resume/>`, and the messages its client never acknowledged go to
/// offline storage (those read from there stay where they are).
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    ctx.sm.wake(session);
    let Some(m) = ctx.sm.sessions.remove(&session) else {
        return;
    };
    if let Some(token) = m.token {
        ctx.sm.tokens.remove(&token);
        let capacity = ctx.config.stream_management.remembered_tokens;
        ctx.sm.remember_gone(token, m.handled, capacity);
    }
    let Some(user) = ctx.account_of(session) else {
        return;
    };
    for kept in m.unacked {
        if !kept.stored {
            crate::offline::undelivered(ctx, &user, &kept.stanza);
        }
    }
}
