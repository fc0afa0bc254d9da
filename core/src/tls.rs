//! Encryption as the core sees it: a policy, a stream state, and the
//! channel-binding data SASL needs. The TLS library lives in the shims.
//!
//! STARTTLS (RFC 6120 section 5) runs like this: the client sends
//! `<starttls/>`; the core answers `<proceed/>`, emits
//! [`Output::StartTls`](crate::Output::StartTls), drops every byte that came
//! after the command (a client may not speak until the handshake is done,
//! and bytes that arrive early are how STARTTLS command injection works),
//! and waits. The shim runs the handshake and reports it with
//! [`Server::handle_tls_established`](crate::Server::handle_tls_established);
//! the client then opens a fresh stream. Direct TLS (XEP-0368) is the same
//! minus the `<starttls/>` exchange.

/// What the operator asks of encryption on client streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// The shim has no TLS: STARTTLS is not offered and SASL runs in the
    /// clear. Only for tests and embedding behind a TLS terminator.
    Unavailable,
    /// STARTTLS is offered; a client may authenticate without it (loopback
    /// tests and benchmarks). PLAIN is then offered in the clear too.
    Optional,
    /// STARTTLS is offered and required: before it, no SASL mechanism is
    /// offered (RFC 6120 section 5.3.1) and `<auth>` gets
    /// `<encryption-required/>`.
    Required,
}

/// Channel-binding data of an established TLS session, computed by the
/// shim from its TLS library.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelBinding {
    /// RFC 9266: 32 bytes of keying material exported with the label
    /// `EXPORTER-Channel-Binding` and no context. Only defined for TLS 1.3.
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929: the hash of the server's certificate (SHA-256 unless its
    /// signature uses a stronger hash).
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBinding {
    /// The binding types available, in our order of preference.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("tls-exporter", self.tls_exporter.is_some()),
            ("tls-server-end-point", self.tls_server_end_point.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
    }

    /// The data for a binding type a client named.
    pub fn data(&self, kind: &str) -> Option<&[u8]> {
        match kind {
            "tls-exporter" => self.tls_exporter.as_deref(),
            "tls-server-end-point" => self.tls_server_end_point.as_deref(),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.types().next().is_none()
    }
}

/// Where a connection is with encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Security {
    Plain,
    /// `<proceed/>` was sent (or the listener is direct TLS); the shim is
    /// running the handshake. Nothing may be read or written meanwhile.
    Handshaking,
    Encrypted,
}
