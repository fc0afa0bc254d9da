//! A session: the server's view of one logged-in resource.
//!
//! A session is distinct from the connection that carries it: stream
//! management (XEP-0198) lets a session outlive its connection, and
//! clustering will put some sessions on other nodes, which is why the
//! session is addressed by [`SessionId`] and names its connection through
//! a [`Link`] instead of owning it.

use crate::xml::Element;
use crate::ConnectionId;
use jid::FullJid;
use std::collections::BTreeSet;
use std::time::Instant;

/// Identifies a session within this server, stable for its lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// Resource priority (RFC 6121 section 4.7.2.3): -128..=127, default 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Priority(pub i8);

/// Whether the resource asked for the roster, and so receives roster
/// pushes (the *interested* set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RosterInterest {
    #[default]
    NotRequested,
    Interested,
}

/// How a session reaches its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Carried by this connection.
    Attached(ConnectionId),
    /// Its connection was lost and it waits, until `until`, for the
    /// client to resume it on a new one (XEP-0198); what is delivered
    /// meanwhile is kept by stream management.
    Detached { until: Instant },
}

/// A connected resource: a session with a bound full JID.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub link: Link,
    pub jid: FullJid,
    pub priority: Priority,
    /// The last broadcast presence (no `to`, no `type`); `Some` makes the
    /// session an *available* resource.
    pub presence: Option<Element>,
    pub interest: RosterInterest,
    /// Sessions this resource sent directed available presence to,
    /// outside its presence subscribers: each is owed an unavailable when
    /// the resource goes (RFC 6121 section 4.6.3). Sessions, not JIDs, so
    /// that a later session under the same JID is not told of a presence
    /// it never saw. (Remote entities join this with federation.)
    pub directed: BTreeSet<SessionId>,
    /// Offline messages were fetched for this resource.
    pub offline_delivered: bool,
}

impl Session {
    /// The connection carrying the session, unless it is detached.
    pub fn connection(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Attached(connection) => Some(connection),
            Link::Detached { .. } => None,
        }
    }

    pub fn is_available(&self) -> bool {
        self.presence.is_some()
    }

    pub fn is_interested(&self) -> bool {
        self.interest == RosterInterest::Interested
    }
}
