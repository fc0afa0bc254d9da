//! XMPP Ping (XEP-0199): an empty result proves the server is there.

use super::{Addressee, Answer, IqHandler, Module};

const NS: &str = "urn:xmpp:ping";

pub(crate) const MODULE: Module = Module {
    name: "ping",
    features: &[NS],
    iqs: &[IqHandler {
        to: Addressee::Server,
        name: "ping",
        ns: NS,
        get: Some(|_, _| Answer::Result(None)),
        set: None,
    }],
    ..Module::NONE
};
