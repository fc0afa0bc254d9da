//! The one place a stanza reaches a session's client.
//!
//! Every module hands what a session must receive to [`Ctx::deliver`];
//! only here is a session's [`Link`] turned into a connection. The
//! pipeline, in order: stream management (XEP-0198) counts and keeps
//! what it delivers, then the stanza is framed for the connection, if the
//! session has one (a detached session only keeps it). Before that,
//! client state indication (XEP-0352) may hold a stanza back while the
//! client is inactive. (Carbons copy before delivery, in `message`.)

use super::Ctx;
use crate::modules::csi::{self, Importance, Waiting};
use crate::modules::stream_management::{Keep, REQUEST};
use crate::session::{Link, SessionId};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use std::collections::VecDeque;

impl Ctx<'_> {
    /// Deliver `stanza` to the session's client.
    pub fn deliver(&mut self, session: SessionId, stanza: &Element) {
        self.deliver_serialized(session, stanza, &stanza.to_stream_string());
    }

    /// Deliver `stanza`, already serialized as `text`: for one sent to
    /// many.
    pub fn deliver_serialized(&mut self, session: SessionId, stanza: &Element, text: &str) {
        self.transmit(session, text, false, false, || csi::importance(stanza));
    }

    /// Deliver a stanza as a write of its own, never joined to another
    /// (what the shim's output budget is measured against), and never
    /// held back: a subscription request waiting for an answer.
    pub fn deliver_separately(&mut self, session: SessionId, stanza: &str) {
        self.transmit(session, stanza, true, false, || Importance::Urgent);
    }

    /// Deliver a stanza read from offline storage, as a write of its own;
    /// it stays stored until [`Ctx::notify_delivered`] says it arrived.
    /// Never held back, or it could be deleted from storage unseen.
    pub fn deliver_stored(&mut self, session: SessionId, stanza: &str) {
        self.transmit(session, stanza, true, true, || Importance::Urgent);
    }

    fn transmit(
        &mut self,
        session: SessionId,
        stanza: &str,
        separately: bool,
        stored: bool,
        importance: impl FnOnce() -> Importance,
    ) {
        if self.csi.is_inactive(session) {
            let limits = &self.config.csi;
            let importance = importance();
            match self
                .csi
                .hold(session, stanza, separately, stored, importance, limits)
            {
                // Held; and what must go because the queue is full.
                Some(due) => return self.transmit_held(session, due),
                // Urgent: what waited goes first.
                None => {
                    let held = self.csi.take_held(session);
                    self.transmit_held(session, held);
                }
            }
        }
        self.transmit_now(session, stanza, separately, stored);
    }

    /// The client is active (again): everything held is sent, in order.
    pub fn flush_held(&mut self, session: SessionId) {
        let held = self.csi.set_active(session);
        self.transmit_held(session, held);
    }

    /// Send on what client state indication held, in order.
    fn transmit_held(&mut self, session: SessionId, held: VecDeque<Waiting>) {
        for waiting in held {
            self.transmit_now(session, &waiting.stanza, waiting.separately, waiting.stored);
        }
    }

    fn transmit_now(&mut self, session: SessionId, stanza: &str, separately: bool, stored: bool) {
        let Some(link) = self.sessions.get(session).map(|s| s.link) else {
            return;
        };
        let keep = self.sm.keep(session, stanza, stored, self.config);
        let Link::Attached(connection) = link else {
            if keep == Keep::Overflow {
                // Hibernating with no room left: it ends now, and what it
                // kept goes to offline storage.
                self.sm.expire_now(session, self.now);
            }
            return;
        };
        if separately {
            self.out.send_separately(connection, stanza);
        } else {
            self.out.send(connection, stanza);
        }
        match keep {
            Keep::Kept { request: true } => self.out.send(connection, REQUEST),
            Keep::Overflow => self.out.evictions.push((
                connection,
                StreamError::with_text(
                    StreamErrorCondition::PolicyViolation,
                    "too many unacknowledged stanzas",
                ),
            )),
            Keep::Kept { request: false } | Keep::Unmanaged => {}
        }
    }

    /// Whether the session may be given a stanza from someone else: not
    /// while its client is far behind in reading (see `backpressure`),
    /// nor while it hibernates with its stream management queue full.
    pub fn accepts(&self, session: SessionId) -> bool {
        match self.sessions.get(session).map(|s| s.link) {
            Some(Link::Attached(connection)) => self.out.accepts(connection),
            Some(Link::Detached { .. }) => self.sm.has_room(session, self.config),
            None => false,
        }
    }

    /// Once what was delivered to the session so far has reached its
    /// client (acknowledged, with stream management; written to its
    /// socket, without), `offline::delivered` hears of `token`; never if
    /// the session ends first.
    pub fn notify_delivered(&mut self, session: SessionId, token: u64) {
        if self.sm.receipt(session, token) {
            return;
        }
        if let Some(connection) = self.link(session) {
            self.out
                .outputs
                .push_back(crate::Output::NotifyWritten { connection, token });
        }
    }

    /// End the session's stream with `error`. The server closes the
    /// connection once the event is handled, and the session ends then;
    /// a hibernating session ends at once.
    pub fn evict(&mut self, session: SessionId, error: StreamError) {
        match self.sessions.get(session).map(|s| s.link) {
            Some(Link::Attached(connection)) => self.out.evictions.push((connection, error)),
            Some(Link::Detached { .. }) => self.sm.expire_now(session, self.now),
            None => {}
        }
    }

    fn link(&self, session: SessionId) -> Option<crate::ConnectionId> {
        self.sessions.get(session)?.connection()
    }
}
