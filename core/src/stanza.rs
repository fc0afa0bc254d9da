//! Stanza basics (RFC 6120 section 8): kinds, replies and stanza errors.

use crate::ns;
use crate::xml::Element;

/// The three stanza kinds of a `jabber:client` stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StanzaKind {
    Message,
    Presence,
    Iq,
}

impl StanzaKind {
    pub fn of(element: &Element) -> Option<Self> {
        if element.ns() != ns::CLIENT {
            return None;
        }
        match element.name() {
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            "iq" => Some(StanzaKind::Iq),
            _ => None,
        }
    }
}

/// Stanza error conditions (RFC 6120 section 8.3.3) with their default
/// error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StanzaErrorCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    /// RFC 6120 section 8.3.3.12: the entity broke a local policy (a
    /// limit).
    PolicyViolation,
    RemoteServerNotFound,
    ResourceConstraint,
    ServiceUnavailable,
}

impl StanzaErrorCondition {
    pub fn name(self) -> &'static str {
        match self {
            StanzaErrorCondition::BadRequest => "bad-request",
            StanzaErrorCondition::Conflict => "conflict",
            StanzaErrorCondition::FeatureNotImplemented => "feature-not-implemented",
            StanzaErrorCondition::Forbidden => "forbidden",
            StanzaErrorCondition::InternalServerError => "internal-server-error",
            StanzaErrorCondition::ItemNotFound => "item-not-found",
            StanzaErrorCondition::JidMalformed => "jid-malformed",
            StanzaErrorCondition::NotAcceptable => "not-acceptable",
            StanzaErrorCondition::NotAllowed => "not-allowed",
            StanzaErrorCondition::NotAuthorized => "not-authorized",
            StanzaErrorCondition::PolicyViolation => "policy-violation",
            StanzaErrorCondition::ResourceConstraint => "resource-constraint",
            StanzaErrorCondition::RemoteServerNotFound => "remote-server-not-found",
            StanzaErrorCondition::ServiceUnavailable => "service-unavailable",
        }
    }

    /// The error type RFC 6120 section 8.3.3 gives in its examples.
    pub fn error_type(self) -> &'static str {
        match self {
            StanzaErrorCondition::BadRequest => "modify",
            StanzaErrorCondition::Conflict => "cancel",
            StanzaErrorCondition::FeatureNotImplemented => "cancel",
            StanzaErrorCondition::Forbidden => "auth",
            StanzaErrorCondition::InternalServerError => "cancel",
            StanzaErrorCondition::ItemNotFound => "cancel",
            StanzaErrorCondition::JidMalformed => "modify",
            StanzaErrorCondition::NotAcceptable => "modify",
            StanzaErrorCondition::NotAllowed => "cancel",
            StanzaErrorCondition::NotAuthorized => "auth",
            StanzaErrorCondition::PolicyViolation => "modify",
            StanzaErrorCondition::ResourceConstraint => "wait",
            StanzaErrorCondition::RemoteServerNotFound => "cancel",
            StanzaErrorCondition::ServiceUnavailable => "cancel",
        }
    }
}

/// A reply skeleton: same kind and id, `to` the sender, `from` the
/// addressee (or nothing when the stanza was addressed to the server on
/// behalf of which we answer with an implicit `from`).
fn reply(stanza: &Element, kind: &str) -> Element {
    let mut r = Element::new(stanza.name(), ns::CLIENT).attr("type", kind);
    if let Some(id) = stanza.get_attr("id") {
        r.set_attr("id", id);
    }
    if let Some(from) = stanza.get_attr("from") {
        r.set_attr("to", from);
    }
    if let Some(to) = stanza.get_attr("to") {
        r.set_attr("from", to);
    }
    r
}

/// `<iq type='result'>` answering `iq`, with an optional payload.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut r = reply(iq, "result");
    if let Some(p) = payload {
        r.push_child(p);
    }
    r
}

/// An error reply (RFC 6120 section 8.3.1). Must never be sent in answer
/// to a stanza of type `error`; callers check [`is_error`].
pub fn error_reply(stanza: &Element, condition: StanzaErrorCondition) -> Element {
    reply(stanza, "error").child(
        Element::new("error", ns::CLIENT)
            .attr("type", condition.error_type())
            .child(Element::new(condition.name(), ns::STANZAS)),
    )
}

/// An error reply with an application-specific condition beside the
/// defined one (RFC 6120 section 8.3.2).
pub fn error_reply_with(
    stanza: &Element,
    condition: StanzaErrorCondition,
    app: Element,
) -> Element {
    let mut reply = error_reply(stanza, condition);
    let error = Element::new("error", ns::CLIENT)
        .attr("type", condition.error_type())
        .child(Element::new(condition.name(), ns::STANZAS))
        .child(app);
    reply.remove_children("error", ns::CLIENT);
    reply.push_child(error);
    reply
}

pub fn is_error(stanza: &Element) -> bool {
    stanza.get_attr("type") == Some("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_swaps_addresses_and_keeps_id() {
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", "q1")
            .attr("from", "a@localhost/r")
            .attr("to", "localhost");
        assert_eq!(
            error_reply(&iq, StanzaErrorCondition::ServiceUnavailable).to_stream_string(),
            "<iq type='error' id='q1' to='a@localhost/r' from='localhost'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        );
    }
}
