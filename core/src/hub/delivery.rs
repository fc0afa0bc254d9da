//! The one place a stanza reaches a session's client.
//!
//! Every module hands what a session must receive to [`Ctx::deliver`];
//! only here is a session's [`Link`] turned into a connection. That is
//! where stream management will count and keep, client state indication
//! hold back and carbons copy (the pipeline of `shared/hub-design.md`).

use super::Ctx;
use crate::session::{Link, SessionId};
use crate::stream::StreamError;
use crate::xml::Element;

impl Ctx<'_> {
    /// Deliver `stanza` to the session's client.
    pub fn deliver(&mut self, session: SessionId, stanza: &Element) {
        self.deliver_text(session, &stanza.to_stream_string());
    }

    /// Deliver a stanza already serialized, for one sent to many.
    pub fn deliver_text(&mut self, session: SessionId, stanza: &str) {
        if let Some(connection) = self.link(session) {
            self.out.send(connection, stanza);
        }
    }

    /// Deliver a stanza as a write of its own, never joined to another:
    /// what the shim's output budget is measured against.
    pub fn deliver_separately(&mut self, session: SessionId, stanza: &str) {
        if let Some(connection) = self.link(session) {
            self.out.send_separately(connection, stanza);
        }
    }

    /// Whether the session may be given a stanza from someone else: not
    /// while its client is far behind in reading (see `backpressure`).
    pub fn accepts(&self, session: SessionId) -> bool {
        match self.sessions.get(session).map(|s| s.link) {
            Some(Link::Attached(connection)) => self.out.accepts(connection),
            Some(Link::Detached { .. }) | None => false,
        }
    }

    /// Once what was delivered to the session so far has reached its
    /// client, call the hub's `written` with `token`; never if the
    /// session's connection goes first.
    pub fn notify_delivered(&mut self, session: SessionId, token: u64) {
        if let Some(connection) = self.link(session) {
            self.out
                .outputs
                .push_back(crate::Output::NotifyWritten { connection, token });
        }
    }

    /// End the session's stream with `error`. The server closes the
    /// connection once the event is handled, and the session ends then.
    pub fn evict(&mut self, session: SessionId, error: StreamError) {
        if let Some(connection) = self.link(session) {
            self.out.evictions.push((connection, error));
        }
    }

    fn link(&self, session: SessionId) -> Option<crate::ConnectionId> {
        self.sessions.get(session)?.connection()
    }
}
