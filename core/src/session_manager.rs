//! The session manager: the one owner of the connected, available and
//! interested resource sets (see `shared/session-model.md`).
//!
//! Everything that asks "who is online" goes through here, so the sets can
//! never disagree with the sessions. A session that is not in the map does
//! not exist; there are no half-destroyed sessions.

use crate::session::{Link, Priority, RosterInterest, Session, SessionId};
use crate::ConnectionId;
use jid::{BareJid, FullJid};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

#[derive(Default, Debug)]
pub struct SessionManager {
    /// Boxed: a map of sessions inline holds their size again in spare
    /// capacity, per session.
    sessions: HashMap<SessionId, Box<Session>>,
    /// Connected resources by full JID: at most one session per full JID.
    connected: HashMap<FullJid, SessionId>,
    /// Connected resources of each account, for bare-JID routing.
    by_bare: HashMap<BareJid, BTreeSet<SessionId>>,
    /// Attached sessions by the connection carrying them.
    by_connection: HashMap<ConnectionId, SessionId>,
    available: BTreeSet<SessionId>,
    interested: BTreeSet<SessionId>,
    next_id: u64,
}

/// The result of binding a full JID.
#[derive(Debug)]
pub struct Bound {
    pub session: SessionId,
    /// The session that held this full JID before and was replaced; its
    /// connection must be closed with `<conflict/>`.
    pub replaced: Option<Session>,
}

impl SessionManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `jid` a connected resource carried by `connection`.
    ///
    /// Conflict policy: the new session wins and the old one is destroyed
    /// (Prosody's default `conflict_resolve = "kick_old"`); a client that
    /// reconnects after a dropped TCP connection gets its resource back
    /// instead of waiting for the stale session to time out.
    pub fn bind(&mut self, connection: ConnectionId, jid: FullJid) -> Bound {
        let replaced = self
            .connected
            .get(&jid)
            .copied()
            .and_then(|old| self.destroy(old));
        self.next_id += 1;
        let id = SessionId(self.next_id);
        self.connected.insert(jid.clone(), id);
        self.by_bare.entry(jid.to_bare()).or_default().insert(id);
        self.by_connection.insert(connection, id);
        self.sessions.insert(
            id,
            Box::new(Session {
                id,
                link: Link::Attached(connection),
                jid,
                priority: Priority::default(),
                presence: None,
                interest: RosterInterest::NotRequested,
                directed: Default::default(),
                offline_delivered: false,
            }),
        );
        Bound {
            session: id,
            replaced,
        }
    }

    /// Remove a session from every set. Returns it if it still existed.
    pub fn destroy(&mut self, id: SessionId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        self.connected.remove(&session.jid);
        if let Some(connection) = session.connection() {
            self.by_connection.remove(&connection);
        }
        let bare = session.jid.to_bare();
        if let Some(set) = self.by_bare.get_mut(&bare) {
            set.remove(&id);
            if set.is_empty() {
                self.by_bare.remove(&bare);
            }
        }
        self.available.remove(&id);
        self.interested.remove(&id);
        Some(*session)
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id).map(|s| &**s)
    }

    /// The session a connection carries.
    pub fn by_connection(&self, connection: ConnectionId) -> Option<SessionId> {
        self.by_connection.get(&connection).copied()
    }

    /// The session's connection is lost, and it waits until `until` for
    /// its client to resume it.
    pub fn detach(&mut self, id: SessionId, until: Instant) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if let Some(connection) = s.connection() {
                self.by_connection.remove(&connection);
            }
            s.link = Link::Detached { until };
        }
    }

    /// The session moves to `connection` (a resumption); returns the
    /// connection it leaves, if it was still attached to one.
    pub fn attach(&mut self, id: SessionId, connection: ConnectionId) -> Option<ConnectionId> {
        let s = self.sessions.get_mut(&id)?;
        let old = s.connection();
        if let Some(old) = old {
            self.by_connection.remove(&old);
        }
        s.link = Link::Attached(connection);
        self.by_connection.insert(connection, id);
        old
    }

    pub fn by_full_jid(&self, jid: &FullJid) -> Option<&Session> {
        self.connected.get(jid).and_then(|id| self.get(*id))
    }

    /// Every session, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().map(|s| &**s)
    }

    /// Connected resources of one account.
    pub fn resources_of<'a>(&'a self, bare: &BareJid) -> impl Iterator<Item = &'a Session> + 'a {
        self.by_bare
            .get(bare)
            .into_iter()
            .flatten()
            .filter_map(|id| self.get(*id))
    }

    /// Available resources of one account.
    pub fn available_of<'a>(&'a self, bare: &BareJid) -> impl Iterator<Item = &'a Session> + 'a {
        self.resources_of(bare).filter(|s| s.is_available())
    }

    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&id).map(|s| &mut **s)
    }

    /// Make the session available with this presence, or unavailable with
    /// `None` (which also forgets its directed presences).
    pub fn set_presence(
        &mut self,
        id: SessionId,
        presence: Option<crate::xml::Element>,
        priority: Priority,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if presence.is_some() {
            self.available.insert(id);
        } else {
            self.available.remove(&id);
            s.directed.clear();
        }
        s.presence = presence;
        s.priority = priority;
    }

    /// The session asked for the roster: it now receives roster pushes.
    pub fn set_interested(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.interest = RosterInterest::Interested;
            self.interested.insert(id);
        }
    }

    /// Interested resources of one account.
    pub fn interested_of<'a>(&'a self, bare: &BareJid) -> impl Iterator<Item = &'a Session> + 'a {
        self.resources_of(bare).filter(|s| s.is_interested())
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Check the model's invariants; property tests and fuzzing call this
    /// after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (jid, id) in &self.connected {
            let s = self
                .sessions
                .get(id)
                .ok_or(format!("{jid} maps to missing session {id:?}"))?;
            if &s.jid != jid {
                return Err(format!("{jid} maps to session of {}", s.jid));
            }
        }
        if self.connected.len() != self.sessions.len() {
            return Err("a session is missing from the connected set".into());
        }
        for id in &self.available {
            let s = self
                .sessions
                .get(id)
                .ok_or(format!("available {id:?} is not connected"))?;
            if !s.is_available() {
                return Err(format!("{id:?} is in the available set without presence"));
            }
        }
        for id in &self.interested {
            let s = self
                .sessions
                .get(id)
                .ok_or(format!("interested {id:?} is not connected"))?;
            if !s.is_interested() {
                return Err(format!("{id:?} is in the interested set without interest"));
            }
        }
        for (connection, id) in &self.by_connection {
            let s = self
                .sessions
                .get(id)
                .ok_or(format!("{connection:?} carries missing session {id:?}"))?;
            if s.connection() != Some(*connection) {
                return Err(format!(
                    "{connection:?} carries {id:?}, linked {:?}",
                    s.link
                ));
            }
        }
        let attached = self.sessions.values().filter(|s| s.connection().is_some());
        if attached.count() != self.by_connection.len() {
            return Err("an attached session is missing from the connection index".into());
        }
        let indexed: usize = self.by_bare.values().map(BTreeSet::len).sum();
        if indexed != self.sessions.len() {
            return Err("bare-JID index disagrees with the sessions".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    #[test]
    fn binding_makes_a_connected_resource() {
        let mut sm = SessionManager::new();
        let b = sm.bind(ConnectionId(1), jid("juliet@localhost/balcony"));
        assert_eq!(
            sm.by_full_jid(&jid("juliet@localhost/balcony")).unwrap().id,
            b.session
        );
        assert!(b.replaced.is_none());
        sm.check_invariants().unwrap();
    }

    #[test]
    fn binding_a_taken_full_jid_replaces_the_old_session() {
        let mut sm = SessionManager::new();
        let old = sm
            .bind(ConnectionId(1), jid("juliet@localhost/balcony"))
            .session;
        let b = sm.bind(ConnectionId(2), jid("juliet@localhost/balcony"));
        assert_eq!(b.replaced.map(|s| s.id), Some(old));
        assert_eq!(sm.len(), 1);
        assert!(sm.get(old).is_none());
        sm.check_invariants().unwrap();
    }

    #[test]
    fn destroyed_session_is_in_no_set() {
        let mut sm = SessionManager::new();
        let id = sm
            .bind(ConnectionId(1), jid("juliet@localhost/balcony"))
            .session;
        sm.destroy(id);
        assert!(sm.is_empty());
        assert_eq!(
            sm.resources_of(&BareJid::new("juliet@localhost").unwrap())
                .count(),
            0
        );
        sm.check_invariants().unwrap();
    }
}
