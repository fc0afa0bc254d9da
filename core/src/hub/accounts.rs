//! Accounts by address: the one place where a JID becomes the sessions a
//! stanza to it reaches.
//!
//! A module that sends to another account (a message to a bare JID,
//! presence to subscribers, a probe's answer) names the account or
//! resource by address and gets back [`Recipients`], a set it can combine
//! and deliver to but not look into; or asks the account a question
//! (its presences, whether it is available). None of them reads another
//! account's sessions, so that an account served by another core or node
//! is one more answer here, not a change in every module.
//!
//! What a module does for the account it acts for (its own resources:
//! roster pushes, `<sent/>` carbon copies, the blocklist) it still does
//! with the session manager directly. A message's `<received/>` copies
//! are made here, on the receiving account's side.

use super::Ctx;
use crate::modules::{blocking, carbons};
use crate::router::Destination;
use crate::session::{Priority, SessionId};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};
use std::collections::BTreeSet;

/// Resources a stanza goes to, each once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recipients {
    sessions: BTreeSet<SessionId>,
}

impl Recipients {
    /// One session, known already (the sender's own).
    pub fn of(session: SessionId) -> Self {
        Recipients {
            sessions: BTreeSet::from([session]),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Add `other`'s recipients; one in both still gets a stanza once.
    pub fn extend(&mut self, other: Recipients) {
        self.sessions.extend(other.sessions);
    }

    pub fn remove(&mut self, session: SessionId) {
        self.sessions.remove(&session);
    }

    /// Those in both.
    pub fn intersection(&self, other: &Recipients) -> Recipients {
        Recipients {
            sessions: self
                .sessions
                .intersection(&other.sessions)
                .copied()
                .collect(),
        }
    }

    /// Those not in `other`.
    pub fn difference(&self, other: &Recipients) -> Recipients {
        Recipients {
            sessions: self.sessions.difference(&other.sessions).copied().collect(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.iter().copied()
    }
}

impl FromIterator<SessionId> for Recipients {
    fn from_iter<I: IntoIterator<Item = SessionId>>(iter: I) -> Self {
        Recipients {
            sessions: iter.into_iter().collect(),
        }
    }
}

/// Whether a recipient far behind in reading (see `backpressure`) may go
/// without a stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Everyone gets it: it retracts something they were sent, or is an
    /// answer they wait for.
    Owed,
    /// An update from `from`'s session: others far behind in reading
    /// skip it, `from` itself never does.
    Update { from: SessionId },
}

/// Where a message to an account goes (RFC 6121 section 8.5.2.1.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AccountReach {
    /// No resource can receive messages to the bare JID: available at a
    /// non-negative priority.
    NoneAvailable,
    /// Some could, but each is far behind in reading.
    Congested,
    /// These receive it.
    Resources(Recipients),
}

impl Ctx<'_> {
    /// The resources a stanza to `to` reaches: a connected resource
    /// itself; an account, its available resources; nothing else (a
    /// resource that is gone, the server).
    pub fn reach(&self, to: &Destination) -> Recipients {
        match to {
            Destination::Session(session) => Recipients::of(*session),
            Destination::Account {
                user,
                resource_gone: false,
            } => self.available(user),
            _ => Recipients::default(),
        }
    }

    /// The connected resource `jid`, if any.
    pub fn resource(&self, jid: &FullJid) -> Recipients {
        self.sessions
            .by_full_jid(jid)
            .map(|s| s.id)
            .into_iter()
            .collect()
    }

    /// The account one of our sessions belongs to (the sender of what
    /// is being handled), while the session lives.
    pub fn account_of(&self, session: SessionId) -> Option<BareJid> {
        self.sessions.get(session).map(|s| s.jid.to_bare())
    }

    /// The account's available resources.
    pub fn available(&self, user: &BareJid) -> Recipients {
        self.sessions.available_of(user).map(|s| s.id).collect()
    }

    /// Whether the account has an available resource.
    pub fn is_available(&self, user: &BareJid) -> bool {
        self.sessions.available_of(user).next().is_some()
    }

    /// A message of type `kind` to the account: headlines to every
    /// resource available at a non-negative priority, other messages to
    /// those of them at the highest priority (several, like Prosody, if
    /// they share it). Resources far behind in reading take nothing more
    /// from others.
    pub fn message_reach(&self, user: &BareJid, kind: &str) -> AccountReach {
        let available: Vec<(Priority, SessionId)> = self
            .sessions
            .available_of(user)
            .filter(|s| s.priority >= Priority(0))
            .map(|s| (s.priority, s.id))
            .collect();
        if available.is_empty() {
            return AccountReach::NoneAvailable;
        }
        let accepting: Vec<_> = available
            .into_iter()
            .filter(|(_, s)| self.accepts(*s))
            .collect();
        let Some(top) = accepting.iter().map(|(p, _)| *p).max() else {
            return AccountReach::Congested;
        };
        let chosen = accepting
            .into_iter()
            .filter(|(p, _)| kind == "headline" || *p == top)
            .map(|(_, s)| s)
            .collect();
        AccountReach::Resources(chosen)
    }

    /// The presence of each of the account's available resources, `from`
    /// its full JID: what a probe of the account is answered with
    /// (RFC 6121 section 4.3.2).
    pub fn probe(&self, user: &BareJid) -> Vec<(FullJid, Element)> {
        self.sessions
            .available_of(user)
            .filter_map(|s| Some((s.jid.clone(), s.presence.clone()?)))
            .collect()
    }

    /// `recipients` but those a presence from `from` may not reach
    /// (XEP-0191): blocked by `from_blocks` (the sender's blocklist,
    /// passed in because presence runs with its roster lent out), or
    /// whose account blocks `from`. The sender's own account is never
    /// blocked from its own presence.
    pub fn unblocked(
        &self,
        recipients: Recipients,
        from: &Jid,
        from_blocks: &BTreeSet<String>,
    ) -> Recipients {
        if from_blocks.is_empty() && !self.rosters.any_blocklist() {
            return recipients;
        }
        let own = from.to_bare();
        recipients
            .sessions
            .into_iter()
            .filter(|id| {
                self.sessions.get(*id).is_some_and(|s| {
                    let to = Jid::from(s.jid.clone());
                    let user = s.jid.to_bare();
                    user == own
                        || !(blocking::matches(from_blocks, &to)
                            || blocking::user_blocks(self, &user, from))
                })
            })
            .collect()
    }

    /// Deliver a message to some of `user`'s resources, `from` the
    /// sender's resource; the account's other resources get their
    /// carbon copies (XEP-0280) here, on the receiving account's side.
    pub fn deliver_message(
        &mut self,
        user: &BareJid,
        message: &Element,
        recipients: &Recipients,
        from: &FullJid,
    ) {
        self.deliver_all(message, recipients, Urgency::Owed);
        carbons::received(self, user, message, recipients, from);
    }

    /// Deliver `stanza` to each recipient, serialized once.
    pub fn deliver_all(&mut self, stanza: &Element, recipients: &Recipients, urgency: Urgency) {
        let text = stanza.to_stream_string();
        for id in recipients.iter() {
            let skip = match urgency {
                Urgency::Owed => false,
                Urgency::Update { from } => from != id && !self.accepts(id),
            };
            if !skip {
                self.deliver_serialized(id, stanza, &text);
            }
        }
    }
}
