//! Resource binding (RFC 6120 section 7) and the legacy session iq
//! (RFC 3921 section 3).

use crate::entropy::Entropy;
use crate::ns;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition};
use crate::xml::Element;
use jid::{BareJid, FullJid};

/// What an `<iq type='set'><bind/></iq>` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BindRequest {
    /// Bind this full JID (resource prepared, or generated).
    Bind(FullJid),
    /// Answer with this error and keep the stream.
    Refuse(Element),
}

/// Decide the full JID for a bind request from user `bare`.
pub(crate) fn bind_request(
    iq: &Element,
    bind: &Element,
    bare: &BareJid,
    entropy: &mut Entropy,
) -> BindRequest {
    let requested = bind
        .get_child("resource", ns::BIND)
        .map(Element::text_content);
    let resource = match requested.as_deref().map(str::trim) {
        // RFC 6120 section 7.6: an empty or absent resource asks the
        // server to generate one.
        None | Some("") => entropy.hex_token(16),
        Some(r) => r.to_owned(),
    };
    // Resourceprep (RFC 7622 section 3.4) happens in the jid crate; a
    // resource that fails it is `bad-request` (RFC 6120 section 7.7.2.1).
    match bare.with_resource_str(&resource) {
        Ok(full) => BindRequest::Bind(full),
        Err(_) => BindRequest::Refuse(error_reply(iq, StanzaErrorCondition::BadRequest)),
    }
}

/// The bind result carrying the full JID.
pub(crate) fn bind_result(iq: &Element, jid: &FullJid) -> Element {
    let mut result = iq_result(
        iq,
        Some(
            Element::new("bind", ns::BIND).child(Element::new("jid", ns::BIND).text(jid.as_str())),
        ),
    );
    // The client has no JID yet: a reply addressed to it would be odd.
    result.remove_attr("to");
    result
}

/// Is this iq a bind request? Returns the `<bind/>` child.
pub(crate) fn as_bind(iq: &Element) -> Option<&Element> {
    (iq.get_attr("type") == Some("set"))
        .then(|| iq.get_child("bind", ns::BIND))
        .flatten()
}

/// Is this iq the legacy `<session/>` request?
pub(crate) fn is_session_request(iq: &Element) -> bool {
    iq.get_attr("type") == Some("set") && iq.get_child("session", ns::SESSION).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::Seed;

    fn iq(resource: Option<&str>) -> Element {
        let mut bind = Element::new("bind", ns::BIND);
        if let Some(r) = resource {
            bind.push_child(Element::new("resource", ns::BIND).text(r));
        }
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "b")
            .child(bind)
    }

    fn decide(resource: Option<&str>) -> BindRequest {
        let iq = iq(resource);
        let bind = as_bind(&iq).unwrap();
        let bare = BareJid::new("juliet@localhost").unwrap();
        bind_request(&iq, bind, &bare, &mut Entropy::new(Seed([1; 32])))
    }

    #[test]
    fn client_chosen_resource_is_kept() {
        assert_eq!(
            decide(Some("balcony")),
            BindRequest::Bind(FullJid::new("juliet@localhost/balcony").unwrap())
        );
    }

    #[test]
    fn missing_resource_is_generated() {
        let BindRequest::Bind(jid) = decide(None) else {
            panic!()
        };
        assert_eq!(jid.resource().as_str().len(), 16);
    }

    #[test]
    fn unpreparable_resource_is_bad_request() {
        let BindRequest::Refuse(e) = decide(Some("a\u{7}b")) else {
            panic!()
        };
        assert!(e.to_stream_string().contains("<bad-request"));
    }
}
