//! Software Version (XEP-0092), which operators may hide
//! (`expose_version = false`): then the module is not loaded, nothing
//! advertises it, and a request gets `service-unavailable` as for any
//! service that does not exist.

use super::{Addressee, Answer, IqHandler, Module};
use crate::xml::Element;

const NS: &str = "jabber:iq:version";

pub(crate) const MODULE: Module = Module {
    name: "version",
    loaded: |config| config.expose_version,
    features: &[NS],
    iqs: &[IqHandler {
        to: Addressee::Server,
        name: "query",
        ns: NS,
        get: Some(|_, _| {
            Answer::Result(Some(
                Element::new("query", NS)
                    .child(Element::new("name", NS).text("Rookery"))
                    .child(Element::new("version", NS).text(env!("CARGO_PKG_VERSION"))),
            ))
        }),
        set: None,
    }],
    ..Module::NONE
};
