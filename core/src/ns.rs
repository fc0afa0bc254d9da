//! XML namespaces used on a client stream.

pub const CLIENT: &str = "jabber:client";
pub const STREAM: &str = "http://etherx.jabber.org/streams";
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// XEP-0440: which channel-binding types the server supports.
pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
