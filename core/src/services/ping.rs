//! XMPP Ping (XEP-0199): an empty result proves the server is there.

use super::Handler;

pub(crate) const PING: Handler = Handler {
    ns: "urn:xmpp:ping",
    name: "ping",
    get: |_, _| Ok(None),
};
