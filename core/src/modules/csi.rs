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
use crate::ns;
use crate::session::SessionId;
use crate::xml::Element;
use std::collections::{HashMap, VecDeque};

pub const NS: &str = "urn:xmpp:csi:0";

pub(crate) const MODULE: Module = Module {
    name: "csi",
    stream_features: |_| vec![Element::new("csi", NS)],
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
pub(crate) enum Importance {
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
        importance: Importance,
        limits: &crate::config::CsiLimits,
    ) -> Option<VecDeque<Waiting>> {
        let from = match importance {
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

/// Classify a stanza about to be delivered.
pub(crate) fn importance(stanza: &Element) -> Importance {
    let kind = stanza.get_attr("type");
    match stanza.name() {
        "presence" => match kind {
            None | Some("unavailable") => {
                Importance::Presence(stanza.get_attr("from").unwrap_or_default().to_owned())
            }
            // Subscription requests and errors want an answer.
            Some(_) => Importance::Urgent,
        },
        "message" if kind != Some("error") && !spoken(stanza) => Importance::Later,
        _ => Importance::Urgent,
    }
}

/// A body, or a carbon copy of a message with one, is someone talking;
/// without one a message is a chat state, a receipt or a marker.
fn spoken(message: &Element) -> bool {
    if message.get_child("body", ns::CLIENT).is_some() {
        return true;
    }
    ["received", "sent"]
        .iter()
        .filter_map(|d| message.get_child(d, super::carbons::NS))
        .filter_map(|c| c.get_child("forwarded", super::carbons::NS_FORWARD))
        .flat_map(|f| f.children())
        .any(|inner| inner.get_child("body", ns::CLIENT).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, attrs: &[(&str, &str)], child: Option<Element>) -> Element {
        let mut e = Element::new(name, ns::CLIENT);
        for (n, v) in attrs {
            e.set_attr(n, v);
        }
        if let Some(c) = child {
            e.push_child(c);
        }
        e
    }

    #[test]
    fn presence_updates_wait_coalesced_by_sender() {
        let show = Element::new("show", ns::CLIENT).text("away");
        let update = stanza(
            "presence",
            &[("from", "romeo@localhost/orchard")],
            Some(show),
        );
        assert_eq!(
            importance(&update),
            Importance::Presence("romeo@localhost/orchard".into())
        );
        let subscribe = stanza("presence", &[("type", "subscribe")], None);
        assert_eq!(importance(&subscribe), Importance::Urgent);
    }

    #[test]
    fn a_quote_in_an_attribute_cannot_pose_as_another_sender() {
        // The review's finding: text classification read this `id` as
        // the sender.
        let sly = stanza(
            "presence",
            &[
                ("id", "x' from='juliet@localhost/balcony"),
                ("from", "mallory@localhost/r"),
            ],
            None,
        );
        assert_eq!(
            importance(&sly),
            Importance::Presence("mallory@localhost/r".into())
        );
    }

    #[test]
    fn messages_with_a_body_are_urgent_and_chat_states_wait() {
        let body = Element::new("body", ns::CLIENT).text("hi");
        assert_eq!(
            importance(&stanza("message", &[], Some(body))),
            Importance::Urgent
        );
        let state = Element::new("composing", "http://jabber.org/protocol/chatstates");
        assert_eq!(
            importance(&stanza("message", &[], Some(state))),
            Importance::Later
        );
        assert_eq!(importance(&stanza("iq", &[], None)), Importance::Urgent);
    }
}
