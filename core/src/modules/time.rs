//! Entity Time (XEP-0202), in UTC: the server's clock is an input.

use super::{Addressee, Answer, IqHandler, Module};
use crate::xml::Element;

const NS: &str = "urn:xmpp:time";

pub(crate) const MODULE: Module = Module {
    name: "time",
    features: &[NS],
    iqs: &[IqHandler {
        to: Addressee::Server,
        name: "time",
        ns: NS,
        get: Some(|ctx, _| {
            Answer::Result(Some(
                Element::new("time", NS)
                    .child(Element::new("tzo", NS).text("+00:00"))
                    .child(Element::new("utc", NS).text(&ctx.clock.xmpp_datetime())),
            ))
        }),
        set: None,
    }],
    ..Module::NONE
};
