//! Software Version (XEP-0092), which operators may hide
//! (`expose_version = false`); hidden, it answers `service-unavailable`
//! as if the service did not exist.

use super::Handler;
use crate::stanza::StanzaErrorCondition as E;
use crate::xml::Element;

const NS: &str = "jabber:iq:version";

pub(crate) const VERSION: Handler = Handler {
    ns: NS,
    name: "query",
    get: |ctx, _| {
        if !ctx.config.expose_version {
            return Err(E::ServiceUnavailable);
        }
        Ok(Some(
            Element::new("query", NS)
                .child(Element::new("name", NS).text("Rookery"))
                .child(Element::new("version", NS).text(env!("CARGO_PKG_VERSION"))),
        ))
    },
};
