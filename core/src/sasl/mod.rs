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

use crate::tls::ChannelBinding;
pub use credentials::{PasswordError, ScramHash, ScramKeys, StoredCredentials, DEFAULT_ITERATIONS};

use crate::entropy::Entropy;
use crate::ns;
use crate::xml::Element;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use scram::{ClientFirst, ScramServer};

/// SASL failure conditions (RFC 6120 section 6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslFailure {
    Aborted,
    /// The mechanism needs an encrypted stream (RFC 6120 section 6.5.3).
    EncryptionRequired,
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
            SaslFailure::EncryptionRequired => "encryption-required",
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
    /// SCRAM with channel binding (RFC 5802 section 6).
    ScramPlus(ScramHash),
}

/// What a connection may offer, from its state and the operator's policy.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Offer<'a> {
    pub plain: bool,
    /// The stream's channel bindings; `-PLUS` mechanisms are offered only
    /// with at least one type.
    pub binding: Option<&'a ChannelBinding>,
}

impl Offer<'_> {
    fn plus(&self) -> bool {
        self.binding.is_some_and(|b| !b.is_empty())
    }
}

impl Mechanism {
    /// Every mechanism, strongest first: the order they are offered in.
    const ALL: [Mechanism; 5] = [
        Mechanism::ScramPlus(ScramHash::Sha256),
        Mechanism::ScramPlus(ScramHash::Sha1),
        Mechanism::Scram(ScramHash::Sha256),
        Mechanism::Scram(ScramHash::Sha1),
        Mechanism::Plain,
    ];

    /// SCRAM mechanisms, with and without channel binding.
    pub const SCRAM_COUNT: usize = 4;

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(ScramHash::Sha1) => "SCRAM-SHA-1",
            Mechanism::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
            Mechanism::ScramPlus(ScramHash::Sha1) => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramPlus(ScramHash::Sha256) => "SCRAM-SHA-256-PLUS",
        }
    }

    fn is_offered(self, offer: &Offer) -> bool {
        match self {
            Mechanism::Plain => offer.plain,
            Mechanism::Scram(_) => true,
            Mechanism::ScramPlus(_) => offer.plus(),
        }
    }

    /// The mechanisms offered, strongest first.
    pub fn offered<'a>(offer: &'a Offer<'a>) -> impl Iterator<Item = &'static str> + 'a {
        Self::ALL
            .into_iter()
            .filter(|m| m.is_offered(offer))
            .map(Mechanism::name)
    }

    pub fn from_offered(name: &str, offer: &Offer) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name && m.is_offered(offer))
    }
}

/// What the connection must do next in an exchange.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send `<challenge>` with these bytes and wait for `<response>`.
    Challenge(Vec<u8>),
    /// Fetch this user's credentials and call [`Exchange::credentials`].
    LookUp(String),
    /// Have storage check this PLAIN password off the serving thread
    /// ([`verify_plain`]) and call [`Exchange::verified`].
    Verify {
        username: String,
        password: Password,
    },
    /// Authenticated as this (nodeprepped) user; send `<success>`.
    Success {
        username: String,
        additional: Option<Vec<u8>>,
    },
    Failure(SaslFailure),
    /// The password (or proof) for this user was wrong, or the user does
    /// not exist: `<not-authorized/>`, and one failed login for the user.
    Denied(String),
    /// The client asked for something this stream does not offer (a
    /// channel binding type we lack, the `y` flag after we offered
    /// `-PLUS`): refused, but no password was tried. Clients walk down the
    /// offered mechanisms this way (slixmpp 1.8).
    Refused(SaslFailure),
}

/// A password on its way to be checked; never shown in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Check a PLAIN password against `found` credentials, or against
/// `stand_in`'s when the user does not exist, so that both take the same
/// time (PBKDF2): true only for an existing user with this password. Runs
/// wherever storage runs, never on the thread serving connections.
pub fn verify_plain(
    found: Option<&StoredCredentials>,
    username: &str,
    password: &Password,
    stand_in: &StandIn,
) -> bool {
    match found {
        Some(credentials) => credentials.verify_password(&password.0),
        None => {
            let _ = stand_in.credentials(username).verify_password(&password.0);
            false
        }
    }
}

/// Where stand-in credentials for users that do not exist come from: the
/// server secret and the iteration count of new accounts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StandIn {
    pub secret: [u8; 32],
    pub iterations: u32,
}

impl StandIn {
    /// The stand-in credentials of `username` (see
    /// [`StoredCredentials::stand_in`]).
    pub fn credentials(&self, username: &str) -> StoredCredentials {
        StoredCredentials::stand_in(&self.secret, username, self.iterations)
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StandIn {{ iterations: {} }}", self.iterations)
    }
}

/// An authentication attempt in progress.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// PLAIN was chosen without an initial response; waiting for it.
    PlainAwaitingResponse,
    /// Storage checks the password.
    PlainVerifying { username: String },
    ScramAwaitingFirst {
        hash: ScramHash,
        binding: ExpectedBinding,
    },
    ScramLookingUp {
        hash: ScramHash,
        first: ClientFirst,
        username: String,
    },
    ScramAwaitingFinal {
        server: Box<ScramServer>,
        username: String,
        /// The user exists: with stand-in credentials, nothing succeeds.
        exists: bool,
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
    pub fn start(
        mechanism: Mechanism,
        initial: Option<Vec<u8>>,
        domain: &str,
        offer: &Offer,
    ) -> Next {
        let plus = matches!(mechanism, Mechanism::ScramPlus(_));
        match (mechanism, initial) {
            (Mechanism::Plain, None) => (
                Some(Exchange::PlainAwaitingResponse),
                Step::Challenge(Vec::new()),
            ),
            (Mechanism::Plain, Some(data)) => plain_message(&data, domain),
            (Mechanism::Scram(hash) | Mechanism::ScramPlus(hash), None) => (
                Some(Exchange::ScramAwaitingFirst {
                    hash,
                    binding: ExpectedBinding::new(plus, offer),
                }),
                Step::Challenge(Vec::new()),
            ),
            (Mechanism::Scram(hash) | Mechanism::ScramPlus(hash), Some(data)) => {
                scram_first(hash, &ExpectedBinding::new(plus, offer), &data, domain)
            }
        }
    }

    /// The client's `<response>`.
    pub fn response(self, data: Vec<u8>, domain: &str) -> Next {
        match self {
            Exchange::PlainAwaitingResponse => plain_message(&data, domain),
            Exchange::ScramAwaitingFirst { hash, binding } => {
                scram_first(hash, &binding, &data, domain)
            }
            Exchange::ScramAwaitingFinal {
                server,
                username,
                exists,
            } => match server.finish(&data) {
                Ok(last) if exists => (
                    None,
                    Step::Success {
                        username,
                        additional: Some(last),
                    },
                ),
                Ok(_) | Err(SaslFailure::NotAuthorized) => (None, Step::Denied(username)),
                Err(f) => (None, Step::Failure(f)),
            },
            // A response while we look up credentials: the client did not
            // wait for a challenge.
            Exchange::PlainVerifying { .. } | Exchange::ScramLookingUp { .. } => {
                (None, Step::Failure(SaslFailure::MalformedRequest))
            }
        }
    }

    /// Storage answered the look-up: `Ok(None)` for no such user, who is
    /// then told nothing more than a user with a wrong password is, at
    /// the same point and after the same work.
    pub fn credentials(
        self,
        found: Result<Option<StoredCredentials>, ()>,
        stand_in: &StandIn,
        entropy: &mut Entropy,
    ) -> Next {
        let (credentials, exists) = match (found, &self) {
            (Ok(Some(c)), _) => (c, true),
            (Ok(None), Exchange::ScramLookingUp { username, .. }) => {
                (stand_in.credentials(username), false)
            }
            (Ok(None), _) => return (None, Step::Failure(SaslFailure::MalformedRequest)),
            (Err(()), _) => return (None, Step::Failure(SaslFailure::TemporaryAuthFailure)),
        };
        match self {
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
                        exists,
                    }),
                    Step::Challenge(challenge),
                )
            }
            other => (Some(other), Step::Failure(SaslFailure::MalformedRequest)),
        }
    }

    /// Storage checked a PLAIN password: `Err` if it could not.
    pub fn verified(self, outcome: Result<bool, ()>) -> Next {
        let Exchange::PlainVerifying { username } = self else {
            return (Some(self), Step::Failure(SaslFailure::MalformedRequest));
        };
        match outcome {
            Ok(true) => (
                None,
                Step::Success {
                    username,
                    additional: None,
                },
            ),
            Ok(false) => (None, Step::Denied(username)),
            Err(()) => (None, Step::Failure(SaslFailure::TemporaryAuthFailure)),
        }
    }

    pub fn is_looking_up(&self) -> bool {
        matches!(
            self,
            Exchange::PlainVerifying { .. } | Exchange::ScramLookingUp { .. }
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
            Some(Exchange::PlainVerifying {
                username: username.clone(),
            }),
            Step::Verify {
                username,
                password: Password(message.password),
            },
        ),
        Err(f) => (None, Step::Failure(f)),
    }
}

/// What a SCRAM exchange must find in the client's GS2 header: what the
/// stream offered, copied out so that the exchange owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedBinding {
    /// The mechanism is a `-PLUS` one.
    plus: bool,
    /// We advertised `-PLUS` mechanisms on this stream.
    advertised: bool,
    data: ChannelBinding,
}

impl ExpectedBinding {
    fn new(plus: bool, offer: &Offer) -> Self {
        ExpectedBinding {
            plus,
            advertised: offer.plus(),
            data: offer.binding.cloned().unwrap_or_default(),
        }
    }

    /// RFC 5802 section 6: the `c=` value the client must send back, or
    /// why its GS2 flag fails the exchange.
    fn check(&self, flag: &scram::Gs2Flag, gs2_header: &str) -> Result<Vec<u8>, SaslFailure> {
        use scram::Gs2Flag;
        let mut expected = gs2_header.as_bytes().to_vec();
        match (self.plus, flag) {
            (false, Gs2Flag::NotSupported) => {}
            // The client could bind but thinks we cannot: we offered
            // -PLUS, so someone stripped it from our features.
            (false, Gs2Flag::ClientOnly) if self.advertised => {
                return Err(SaslFailure::NotAuthorized)
            }
            (false, Gs2Flag::ClientOnly) => {}
            (true, Gs2Flag::Binding(kind)) => {
                let data = self.data.data(kind).ok_or(SaslFailure::NotAuthorized)?;
                expected.extend_from_slice(data);
            }
            // Binding asked for under a mechanism without it, or a -PLUS
            // mechanism without binding.
            (false, Gs2Flag::Binding(_)) => return Err(SaslFailure::NotAuthorized),
            (true, _) => return Err(SaslFailure::MalformedRequest),
        }
        Ok(expected)
    }
}

fn scram_first(hash: ScramHash, binding: &ExpectedBinding, data: &[u8], domain: &str) -> Next {
    let mut first = match scram::parse_client_first(data) {
        Ok(first) => first,
        Err(f) => return (None, Step::Failure(f)),
    };
    match binding.check(&first.flag, &first.gs2_header) {
        Ok(expected) => first.channel_binding = expected,
        Err(f) => return (None, Step::Refused(f)),
    }
    let outcome = prepare_username(&first.username).and_then(|username| {
        check_authzid(first.authzid.as_deref(), &username, domain)?;
        Ok(username)
    });
    match outcome.map(|username| (first, username)) {
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
            &Offer::default(),
        );
        assert_eq!(step, Step::Failure(SaslFailure::InvalidAuthzid));
    }

    #[test]
    fn plain_with_own_bare_jid_as_authzid_looks_up_the_user() {
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"Juliet@localhost\0juliet\0pw".to_vec()),
            "localhost",
            &Offer::default(),
        );
        assert_eq!(step, verify("juliet", "pw"));
    }

    #[test]
    fn plain_username_is_nodeprepped() {
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"\0JULIET\0pw".to_vec()),
            "localhost",
            &Offer::default(),
        );
        assert_eq!(step, verify("juliet", "pw"));
    }

    fn verify(username: &str, password: &str) -> Step {
        Step::Verify {
            username: username.into(),
            password: Password(password.into()),
        }
    }

    #[test]
    fn passwords_do_not_show_in_debug_output() {
        assert_eq!(
            format!("{:?}", verify("juliet", "r0m30")),
            "Verify { username: \"juliet\", password: Password(..) }"
        );
    }

    #[test]
    fn plain_is_not_offered_when_disabled() {
        let without = Offer::default();
        let with = Offer {
            plain: true,
            binding: None,
        };
        assert_eq!(Mechanism::from_offered("PLAIN", &without), None);
        assert_eq!(
            Mechanism::from_offered("PLAIN", &with),
            Some(Mechanism::Plain)
        );
    }

    #[test]
    fn plus_mechanisms_are_offered_only_with_a_binding() {
        let binding = exporter_only();
        assert_eq!(
            Mechanism::offered(&binding_offer(&binding)).collect::<Vec<_>>(),
            [
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1"
            ]
        );
        let empty = ChannelBinding::default();
        assert_eq!(
            Mechanism::offered(&binding_offer(&empty)).collect::<Vec<_>>(),
            ["SCRAM-SHA-256", "SCRAM-SHA-1"]
        );
    }

    /// What SCRAM sees on a TLS stream with these bindings.
    fn binding_offer(binding: &ChannelBinding) -> Offer<'_> {
        Offer {
            plain: false,
            binding: Some(binding),
        }
    }

    fn exporter_only() -> ChannelBinding {
        ChannelBinding {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: None,
        }
    }

    fn first_step(mechanism: Mechanism, message: &[u8], offer: &Offer) -> Step {
        Exchange::start(mechanism, Some(message.to_vec()), "localhost", offer).1
    }

    #[test]
    fn y_flag_after_plus_was_advertised_is_a_downgrade() {
        let binding = exporter_only();
        let step = first_step(
            Mechanism::Scram(ScramHash::Sha256),
            b"y,,n=juliet,r=abc",
            &binding_offer(&binding),
        );
        assert_eq!(step, Step::Refused(SaslFailure::NotAuthorized));
    }

    #[test]
    fn y_flag_without_plus_advertised_is_accepted() {
        let step = first_step(
            Mechanism::Scram(ScramHash::Sha256),
            b"y,,n=juliet,r=abc",
            &Offer::default(),
        );
        assert_eq!(step, Step::LookUp("juliet".into()));
    }

    #[test]
    fn plus_with_an_unavailable_binding_type_fails() {
        let binding = ChannelBinding {
            tls_exporter: None,
            tls_server_end_point: Some(vec![1; 32]),
        };
        let step = first_step(
            Mechanism::ScramPlus(ScramHash::Sha256),
            b"p=tls-exporter,,n=juliet,r=abc",
            &binding_offer(&binding),
        );
        assert_eq!(step, Step::Refused(SaslFailure::NotAuthorized));
    }

    #[test]
    fn plus_without_p_flag_is_malformed() {
        let binding = exporter_only();
        let step = first_step(
            Mechanism::ScramPlus(ScramHash::Sha256),
            b"n,,n=juliet,r=abc",
            &binding_offer(&binding),
        );
        assert_eq!(step, Step::Refused(SaslFailure::MalformedRequest));
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
