//! Opening a stream: checking the client's header and writing ours.

use super::{StreamError, StreamErrorCondition};
use crate::config::Config;
use crate::ns;
use crate::xml::{escape_into, Element, StreamHeader};

/// Check a client's stream header (RFC 6120 sections 4.7 and 4.9.3) and
/// return the served domain it addresses.
pub(crate) fn validate_header(
    header: &StreamHeader,
    config: &Config,
) -> Result<String, StreamError> {
    use StreamErrorCondition::*;
    if header.ns != ns::STREAM {
        return Err(StreamError::new(InvalidNamespace));
    }
    if header.name != "stream" {
        return Err(StreamError::new(BadFormat));
    }
    // A missing version means a pre-1.0 (RFC 3920-less) peer, which we do
    // not speak; any 1.x is fine (section 4.7.5).
    let major = header
        .get_attr("version")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if major != Some(1) {
        return Err(StreamError::new(UnsupportedVersion));
    }
    // Prosody requires `to` as well; without it we cannot tell which
    // domain's credentials apply.
    let Some(to) = header.get_attr("to") else {
        return Err(StreamError::with_text(
            ImproperAddressing,
            "a 'to' attribute is required on stream headers",
        ));
    };
    let domain = jid::DomainPart::new(to)
        .map(|d| d.as_str().to_owned())
        .map_err(|_| StreamError::new(HostUnknown))?;
    if !config.serves(&domain) {
        return Err(StreamError::new(HostUnknown));
    }
    Ok(domain)
}

/// Our response header. `from` is omitted when the client's header was
/// unacceptable (we answer only to open the stream and report the error).
pub(crate) fn response_header(id: &str, from: Option<&str>) -> String {
    let mut out = String::from(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='",
    );
    escape_into(&mut out, id);
    out.push('\'');
    if let Some(from) = from {
        out.push_str(" from='");
        escape_into(&mut out, from);
        out.push('\'');
    }
    out.push_str(" version='1.0' xml:lang='en'>");
    out
}

/// Which stage of negotiation the features describe.
pub(crate) enum Features<'a> {
    /// Before authentication: STARTTLS if offered (`Some(required)`), the
    /// SASL mechanisms on offer and the channel-binding types (XEP-0440).
    Unauthed {
        starttls: Option<bool>,
        mechanisms: Vec<&'static str>,
        binding_types: Vec<&'static str>,
        /// In-band registration (XEP-0077) is offered.
        register: bool,
    },
    /// After authentication: resource binding, what the loaded modules
    /// offer (serialized), and the legacy session.
    Bind { modules: &'a str },
}

pub(crate) fn features(stage: Features) -> String {
    let children = match stage {
        Features::Unauthed {
            starttls,
            mechanisms,
            binding_types,
            register,
        } => {
            let mut children = Vec::new();
            if let Some(required) = starttls {
                let mut tls = Element::new("starttls", ns::TLS);
                if required {
                    tls.push_child(Element::new("required", ns::TLS));
                }
                children.push(tls);
            }
            if !mechanisms.is_empty() {
                let mut m = Element::new("mechanisms", ns::SASL);
                for name in mechanisms {
                    m.push_child(Element::new("mechanism", ns::SASL).text(name));
                }
                children.push(m);
            }
            if !binding_types.is_empty() {
                let mut cb = Element::new("sasl-channel-binding", ns::SASL_CB);
                for kind in binding_types {
                    cb.push_child(Element::new("channel-binding", ns::SASL_CB).attr("type", kind));
                }
                children.push(cb);
            }
            if register {
                children.push(Element::new("register", crate::modules::register::FEATURE));
            }
            children
        }
        Features::Bind { modules } => {
            let mut out = String::from("<stream:features>");
            out.push_str(&Element::new("bind", ns::BIND).to_stream_string());
            // What the loaded modules offer.
            out.push_str(modules);
            // RFC 6121 dropped the session iq; advertise it as optional
            // (draft-cridland-xmpp-session) for clients that still send it.
            let session =
                Element::new("session", ns::SESSION).child(Element::new("optional", ns::SESSION));
            out.push_str(&session.to_stream_string());
            out.push_str("</stream:features>");
            return out;
        }
    };
    let mut out = String::from("<stream:features>");
    for c in &children {
        c.write_to(&mut out, ns::STREAM);
    }
    out.push_str("</stream:features>");
    out
}
