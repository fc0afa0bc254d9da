//! SASL negotiation (RFC 6120 section 6) with PLAIN, SCRAM-SHA-1 and
//! SCRAM-SHA-256.
//!
//! An [`Exchange`] is one authentication attempt. It never waits on
//! anything itself: when it needs the user's credentials it says so
//! ([`Step::LookUp`]) and the connection asks storage, then feeds the answer
//! back with [`Exchange::credentials`].

mod credentials;
mod plain;
mod scram;

pub use credentials::{PasswordError, ScramHash, ScramKeys, StoredCredentials, DEFAULT_ITERATIONS};

use crate::entropy::Entropy;
use crate::ns;
use crate::xml::Element;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use plain::PlainMessage;
use scram::{ClientFirst, ScramServer};

/// SASL failure conditions (RFC 6120 section 6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslFailure {
    Aborted,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    NotAuthorized,
    TemporaryAuthFailure,
}

impl SaslFailure {
    pub fn name(self) -> &'static str {
        match self {
            SaslFailure::Aborted => "aborted",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::InvalidAuthzid => "invalid-authzid",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    pub(crate) fn to_element(self) -> Element {
        Element::new("failure", ns::SASL).child(Element::new(self.name(), ns::SASL))
    }
}

/// A mechanism we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    Scram(ScramHash),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(ScramHash::Sha1) => "SCRAM-SHA-1",
            Mechanism::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
        }
    }

    /// The mechanisms offered, strongest first.
    pub fn offered(offer_plain: bool) -> &'static [&'static str] {
        if offer_plain {
            &["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
        } else {
            &["SCRAM-SHA-256", "SCRAM-SHA-1"]
        }
    }

    pub fn from_offered(name: &str, offer_plain: bool) -> Option<Self> {
        [
            Mechanism::Scram(ScramHash::Sha256),
            Mechanism::Scram(ScramHash::Sha1),
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name() == name && (offer_plain || *m != Mechanism::Plain))
    }
}

/// What the connection must do next in an exchange.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send `<challenge>` with these bytes and wait for `<response>`.
    Challenge(Vec<u8>),
    /// Fetch this user's credentials and call [`Exchange::credentials`].
    LookUp(String),
    /// Authenticated as this (nodeprepped) user; send `<success>`.
    Success {
        username: String,
        additional: Option<Vec<u8>>,
    },
    Failure(SaslFailure),
}

/// An authentication attempt in progress.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// PLAIN was chosen without an initial response; waiting for it.
    PlainAwaitingResponse,
    PlainLookingUp {
        message: PlainMessage,
        username: String,
    },
    ScramAwaitingFirst(ScramHash),
    ScramLookingUp {
        hash: ScramHash,
        first: ClientFirst,
        username: String,
    },
    ScramAwaitingFinal {
        server: Box<ScramServer>,
        username: String,
    },
}

/// Base64 payload of `<auth>` or `<response>`: no text means no data,
/// `=` means an empty message (RFC 6120 section 6.4.2).
pub(crate) fn decode_payload(element: &Element) -> Result<Option<Vec<u8>>, SaslFailure> {
    let text = element.text_content();
    let text = text.trim();
    match text {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        t => B64
            .decode(t)
            .map(Some)
            .map_err(|_| SaslFailure::IncorrectEncoding),
    }
}

pub(crate) fn encode_payload(name: &str, data: Option<&[u8]>) -> Element {
    let element = Element::new(name, ns::SASL);
    match data {
        None => element,
        Some([]) => element.text("="),
        Some(d) => element.text(&B64.encode(d)),
    }
}

type Next = (Option<Exchange>, Step);

impl Exchange {
    /// Begin an exchange with `<auth mechanism=…>` and its initial response.
    pub fn start(mechanism: Mechanism, initial: Option<Vec<u8>>, domain: &str) -> Next {
        match (mechanism, initial) {
            (Mechanism::Plain, None) => (
                Some(Exchange::PlainAwaitingResponse),
                Step::Challenge(Vec::new()),
            ),
            (Mechanism::Plain, Some(data)) => plain_message(&data, domain),
            (Mechanism::Scram(hash), None) => (
                Some(Exchange::ScramAwaitingFirst(hash)),
                Step::Challenge(Vec::new()),
            ),
            (Mechanism::Scram(hash), Some(data)) => scram_first(hash, &data, domain),
        }
    }

    /// The client's `<response>`.
    pub fn response(self, data: Vec<u8>, domain: &str) -> Next {
        match self {
            Exchange::PlainAwaitingResponse => plain_message(&data, domain),
            Exchange::ScramAwaitingFirst(hash) => scram_first(hash, &data, domain),
            Exchange::ScramAwaitingFinal { server, username } => match server.finish(&data) {
                Ok(last) => (
                    None,
                    Step::Success {
                        username,
                        additional: Some(last),
                    },
                ),
                Err(f) => (None, Step::Failure(f)),
            },
            // A response while we look up credentials: the client did not
            // wait for a challenge.
            Exchange::PlainLookingUp { .. } | Exchange::ScramLookingUp { .. } => {
                (None, Step::Failure(SaslFailure::MalformedRequest))
            }
        }
    }

    /// Storage answered the look-up: `Ok(None)` for no such user.
    pub fn credentials(
        self,
        found: Result<Option<StoredCredentials>, ()>,
        entropy: &mut Entropy,
    ) -> Next {
        let credentials = match found {
            Ok(Some(c)) => c,
            // No enumeration of users: an unknown user looks like a wrong
            // password.
            Ok(None) => return (None, Step::Failure(SaslFailure::NotAuthorized)),
            Err(()) => return (None, Step::Failure(SaslFailure::TemporaryAuthFailure)),
        };
        match self {
            Exchange::PlainLookingUp { message, username } => {
                if credentials.verify_password(&message.password) {
                    (
                        None,
                        Step::Success {
                            username,
                            additional: None,
                        },
                    )
                } else {
                    (None, Step::Failure(SaslFailure::NotAuthorized))
                }
            }
            Exchange::ScramLookingUp {
                hash,
                first,
                username,
            } => {
                let server = ScramServer::new(hash, first, &entropy.hex_token(32), credentials);
                let challenge = server.server_first().to_vec();
                (
                    Some(Exchange::ScramAwaitingFinal {
                        server: Box::new(server),
                        username,
                    }),
                    Step::Challenge(challenge),
                )
            }
            other => (Some(other), Step::Failure(SaslFailure::MalformedRequest)),
        }
    }

    pub fn is_looking_up(&self) -> bool {
        matches!(
            self,
            Exchange::PlainLookingUp { .. } | Exchange::ScramLookingUp { .. }
        )
    }
}

fn plain_message(data: &[u8], domain: &str) -> Next {
    let outcome = plain::parse(data).and_then(|message| {
        let username = prepare_username(&message.authcid)?;
        check_authzid(Some(&message.authzid), &username, domain)?;
        Ok((message, username))
    });
    match outcome {
        Ok((message, username)) => (
            Some(Exchange::PlainLookingUp {
                message,
                username: username.clone(),
            }),
            Step::LookUp(username),
        ),
        Err(f) => (None, Step::Failure(f)),
    }
}

fn scram_first(hash: ScramHash, data: &[u8], domain: &str) -> Next {
    let outcome = scram::parse_client_first(data).and_then(|first| {
        let username = prepare_username(&first.username)?;
        check_authzid(first.authzid.as_deref(), &username, domain)?;
        Ok((first, username))
    });
    match outcome {
        Ok((first, username)) => (
            Some(Exchange::ScramLookingUp {
                hash,
                first,
                username: username.clone(),
            }),
            Step::LookUp(username),
        ),
        Err(f) => (None, Step::Failure(f)),
    }
}

/// A SASL user name is the localpart of the account's JID (RFC 6120
/// section 6.3.7), so it must survive nodeprep.
fn prepare_username(name: &str) -> Result<String, SaslFailure> {
    jid::NodePart::new(name)
        .map(|n| n.as_str().to_owned())
        .map_err(|_| SaslFailure::NotAuthorized)
}

/// Only the user itself may be named as authorization identity (sendxmpp
/// sends its own bare JID); acting for someone else is not supported.
fn check_authzid(authzid: Option<&str>, username: &str, domain: &str) -> Result<(), SaslFailure> {
    let Some(authzid) = authzid.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let own = jid::BareJid::new(&format!("{username}@{domain}")).ok();
    let named = jid::BareJid::new(authzid).ok();
    if authzid == username || (own.is_some() && own == named) {
        Ok(())
    } else {
        Err(SaslFailure::InvalidAuthzid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_with_foreign_authzid_is_invalid_authzid() {
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"romeo@localhost\0juliet\0pw".to_vec()),
            "localhost",
        );
        assert_eq!(step, Step::Failure(SaslFailure::InvalidAuthzid));
    }

    #[test]
    fn plain_with_own_bare_jid_as_authzid_looks_up_the_user() {
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"Juliet@localhost\0juliet\0pw".to_vec()),
            "localhost",
        );
        assert_eq!(step, Step::LookUp("juliet".into()));
    }

    #[test]
    fn plain_username_is_nodeprepped() {
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"\0JULIET\0pw".to_vec()),
            "localhost",
        );
        assert_eq!(step, Step::LookUp("juliet".into()));
    }

    #[test]
    fn plain_is_not_offered_when_disabled() {
        assert_eq!(Mechanism::from_offered("PLAIN", false), None);
        assert_eq!(
            Mechanism::from_offered("PLAIN", true),
            Some(Mechanism::Plain)
        );
    }

    #[test]
    fn equals_sign_is_an_empty_payload() {
        let auth = Element::new("auth", ns::SASL).text("=");
        assert_eq!(decode_payload(&auth), Ok(Some(Vec::new())));
    }

    #[test]
    fn bad_base64_is_incorrect_encoding() {
        let auth = Element::new("auth", ns::SASL).text("!!!");
        assert_eq!(decode_payload(&auth), Err(SaslFailure::IncorrectEncoding));
    }
}
