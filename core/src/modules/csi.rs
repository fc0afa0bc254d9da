//! Client State Indication (XEP-0352): while a client says it is
//! inactive (a phone in a pocket), what it need not see at once waits,
//! so that the radio can sleep.
//!
//! Held back while inactive: presence updates, coalesced to the latest
//! from each sender, and messages without a body (chat states, receipts,
//! markers). Anything else (a message with a body, an iq, a subscription
//! request) is urgent: the held stanzas go first, in order, then it.
//! `<active/>` sends everything held. The queue is bounded; past its
//! bounds it is sent, as if urgent. A session that never says it is
//! inactive has no entry here.

use super::Module;
use crate::session::SessionId;
use std::collections::{HashMap, VecDeque};

pub const NS: &str = "urn:xmpp:csi:0";

pub(crate) const MODULE: Module = Module {
    name: "csi",
    stream_features: |_| vec![crate::xml::Element::new("csi", NS)],
    ..Module::NONE
};

/// Inactive sessions and what waits for each.
#[derive(Default)]
pub(crate) struct ClientState {
    inactive: HashMap<SessionId, Held>,
}

#[derive(Default)]
struct Held {
    stanzas: VecDeque<Waiting>,
    bytes: usize,
}

/// A stanza held back, as the delivery pipeline will carry it on.
pub(crate) struct Waiting {
    /// The presence's sender, for coalescing.
    from: Option<Box<str>>,
    pub stanza: Box<str>,
    pub separately: bool,
    pub stored: bool,
}

/// How a stanza for an inactive client is treated.
#[derive(Debug, PartialEq, Eq)]
enum Importance {
    Urgent,
    /// A presence update from this sender: only the latest matters.
    Presence(String),
    /// Something that can wait.
    Later,
}

impl ClientState {
    pub fn is_inactive(&self, session: SessionId) -> bool {
        !self.inactive.is_empty() && self.inactive.contains_key(&session)
    }

    /// The client says it is inactive.
    pub fn set_inactive(&mut self, session: SessionId) {
        self.inactive.entry(session).or_default();
    }

    /// The client is active again, or the session ends or resumes: what
    /// was held, in order.
    pub fn set_active(&mut self, session: SessionId) -> VecDeque<Waiting> {
        self.inactive
            .remove(&session)
            .map(|h| h.stanzas)
            .unwrap_or_default()
    }

    /// Offer `stanza` for an inactive session. `None`: urgent, send it
    /// after everything held. `Some(held)`: it was held; `held` is what
    /// must go now because the queue is past its bounds (usually
    /// nothing).
    pub fn hold(
        &mut self,
        session: SessionId,
        stanza: &str,
        separately: bool,
        stored: bool,
        limits: &crate::config::CsiLimits,
    ) -> Option<VecDeque<Waiting>> {
        let from = match importance(stanza) {
            Importance::Urgent => return None,
            Importance::Presence(from) => Some(from),
            Importance::Later => None,
        };
        let held = self.inactive.get_mut(&session)?;
        if let Some(from) = &from {
            // Only the latest presence from each sender is worth sending.
            if let Some(i) = held
                .stanzas
                .iter()
                .position(|w| w.from.as_deref() == Some(from.as_str()))
            {
                if let Some(old) = held.stanzas.remove(i) {
                    held.bytes -= old.stanza.len();
                }
            }
        }
        held.bytes += stanza.len();
        held.stanzas.push_back(Waiting {
            from: from.map(Into::into),
            stanza: stanza.into(),
            separately,
            stored,
        });
        if held.stanzas.len() > limits.max_held_stanzas || held.bytes > limits.max_held_bytes {
            held.bytes = 0;
            return Some(std::mem::take(&mut held.stanzas));
        }
        Some(VecDeque::new())
    }

    /// Everything held, to be sent before an urgent stanza.
    pub fn take_held(&mut self, session: SessionId) -> VecDeque<Waiting> {
        match self.inactive.get_mut(&session) {
            Some(held) => {
                held.bytes = 0;
                std::mem::take(&mut held.stanzas)
            }
            None => VecDeque::new(),
        }
    }
}

/// Classify a serialized stanza (as the server itself wrote it: single
/// quotes, `from` stamped).
fn importance(stanza: &str) -> Importance {
    let tag_end = stanza.find('>').unwrap_or(stanza.len());
    let tag = &stanza[..tag_end];
    if tag.starts_with("<presence") {
        return match attr(tag, "type") {
            None | Some("unavailable") => {
                Importance::Presence(attr(tag, "from").unwrap_or_default().to_owned())
            }
            // Subscription requests and errors want an answer.
            Some(_) => Importance::Urgent,
        };
    }
    if tag.starts_with("<message") {
        // A body (a carbon copy's included) is someone talking; without
        // one it is a chat state, a receipt or a marker.
        let spoken = stanza.contains("<body>") || stanza.contains("<body ");
        if spoken || attr(tag, "type") == Some("error") {
            return Importance::Urgent;
        }
        return Importance::Later;
    }
    Importance::Urgent
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}='");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('\'')?;
    Some(&tag[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_updates_wait_coalesced_by_sender() {
        assert_eq!(
            importance("<presence from='romeo@localhost/orchard'><show>away</show></presence>"),
            Importance::Presence("romeo@localhost/orchard".into())
        );
        assert_eq!(
            importance("<presence type='subscribe' from='romeo@localhost'/>"),
            Importance::Urgent
        );
    }

    #[test]
    fn messages_with_a_body_are_urgent_and_chat_states_wait() {
        assert_eq!(
            importance("<message type='chat' from='r@l/o'><body>hi</body></message>"),
            Importance::Urgent
        );
        assert_eq!(
            importance(
                "<message type='chat' from='r@l/o'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            Importance::Later
        );
        assert_eq!(
            importance("<iq type='set' id='push1'/>"),
            Importance::Urgent
        );
    }
}
