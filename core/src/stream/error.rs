//! Stream errors (RFC 6120 section 4.9). A stream error is unrecoverable:
//! it is followed by `</stream:stream>` and the connection is closed.

use crate::ns;
use crate::xml::Element;

/// The defined conditions Rookery emits (RFC 6120 section 4.9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamErrorCondition {
    BadFormat,
    Conflict,
    ConnectionTimeout,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RestrictedXml,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamErrorCondition {
    pub fn name(self) -> &'static str {
        use StreamErrorCondition::*;
        match self {
            BadFormat => "bad-format",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            RestrictedXml => "restricted-xml",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }
}

/// A stream error with optional human-readable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamErrorCondition,
    pub text: Option<String>,
    /// An application-specific condition (RFC 6120 section 4.9.4),
    /// serialized.
    pub app: Option<String>,
}

impl StreamError {
    pub fn new(condition: StreamErrorCondition) -> Self {
        StreamError {
            condition,
            text: None,
            app: None,
        }
    }

    pub fn with_text(condition: StreamErrorCondition, text: &str) -> Self {
        StreamError {
            condition,
            text: Some(text.to_owned()),
            app: None,
        }
    }

    /// `undefined-condition` with an application-specific condition.
    pub fn application(condition: &crate::xml::Element) -> Self {
        StreamError {
            condition: StreamErrorCondition::UndefinedCondition,
            text: None,
            app: Some(condition.to_stream_string()),
        }
    }

    /// `<stream:error>…</stream:error></stream:stream>`.
    pub fn to_closing_bytes(&self) -> String {
        let mut inner = Element::new("error", ns::STREAM)
            .child(Element::new(self.condition.name(), ns::STREAMS));
        if let Some(text) = &self.text {
            inner = inner.child(Element::new("text", ns::STREAMS).text(text));
        }
        let mut out = String::from("<stream:error>");
        for child in inner.children() {
            child.write_to(&mut out, ns::STREAM);
        }
        if let Some(app) = &self.app {
            out.push_str(app);
        }
        out.push_str("</stream:error></stream:stream>");
        out
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream error {}", self.condition.name())?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StreamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_condition_text_and_stream_close() {
        let e = StreamError::with_text(StreamErrorCondition::PolicyViolation, "stanza too large");
        assert_eq!(
            e.to_closing_bytes(),
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza too large</text>\
             </stream:error></stream:stream>"
        );
    }
}
