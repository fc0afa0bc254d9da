//! Entity Time (XEP-0202), in UTC: the server's clock is an input.

use super::Handler;
use crate::xml::Element;

const NS: &str = "urn:xmpp:time";

pub(crate) const TIME: Handler = Handler {
    ns: NS,
    name: "time",
    get: |ctx, _| {
        Ok(Some(
            Element::new("time", NS)
                .child(Element::new("tzo", NS).text("+00:00"))
                .child(Element::new("utc", NS).text(&ctx.clock.xmpp_datetime())),
        ))
    },
};
