//! The server side of SCRAM (RFC 5802), with or without channel binding.
//!
//! The nonce comes from the connection's entropy and the credentials from
//! storage, so an exchange is a pure function of its inputs.

use super::credentials::{constant_time_eq, ScramHash, StoredCredentials};
use super::SaslFailure;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The GS2 channel-binding flag (RFC 5802 section 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gs2Flag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but believes the server does not.
    ClientOnly,
    /// `p=<type>`: the client binds to this channel-binding type.
    Binding(String),
}

/// The parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst {
    pub flag: Gs2Flag,
    /// `n,,`, `p=tls-exporter,,` or `n,a=authzid,`.
    pub gs2_header: String,
    /// What the final message's `c=` must decode to: the GS2 header, then
    /// the channel-binding data when there is a binding. Set by the
    /// exchange once it knows the stream's binding.
    pub channel_binding: Vec<u8>,
    pub authzid: Option<String>,
    /// The SASLprepped user name, `=2C` and `=3D` decoded.
    pub username: String,
    pub client_nonce: String,
    pub bare: String,
}

pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst, SaslFailure> {
    let text = std::str::from_utf8(message).map_err(|_| SaslFailure::MalformedRequest)?;
    let mut fields = text.splitn(3, ',');
    let flag = fields.next().ok_or(SaslFailure::MalformedRequest)?;
    let authzid_field = fields.next().ok_or(SaslFailure::MalformedRequest)?;
    let bare = fields.next().ok_or(SaslFailure::MalformedRequest)?;
    let parsed_flag = match flag {
        "n" => Gs2Flag::NotSupported,
        "y" => Gs2Flag::ClientOnly,
        f => match f.strip_prefix("p=") {
            Some(kind)
                if !kind.is_empty()
                    && kind
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                Gs2Flag::Binding(kind.to_owned())
            }
            _ => return Err(SaslFailure::MalformedRequest),
        },
    };
    let authzid = match authzid_field {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or(SaslFailure::MalformedRequest)?,
        )?),
    };
    let mut attrs = bare.split(',');
    let user = attrs.next().ok_or(SaslFailure::MalformedRequest)?;
    if user.starts_with("m=") {
        // Mandatory extensions we do not know must fail the exchange.
        return Err(SaslFailure::MalformedRequest);
    }
    let username = decode_saslname(
        user.strip_prefix("n=")
            .ok_or(SaslFailure::MalformedRequest)?,
    )?;
    let nonce = attrs
        .next()
        .and_then(|n| n.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or(SaslFailure::MalformedRequest)?;
    let username = stringprep::saslprep(&username)
        .map_err(|_| SaslFailure::NotAuthorized)?
        .into_owned();
    let gs2_header = format!("{flag},{authzid_field},");
    Ok(ClientFirst {
        flag: parsed_flag,
        channel_binding: gs2_header.as_bytes().to_vec(),
        gs2_header,
        authzid,
        username,
        client_nonce: nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

fn decode_saslname(name: &str) -> Result<String, SaslFailure> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslFailure::MalformedRequest),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(SaslFailure::MalformedRequest);
    }
    Ok(out)
}

/// A SCRAM exchange after the server-first-message was sent.
#[derive(Debug, Clone)]
pub(crate) struct ScramServer {
    hash: ScramHash,
    first: ClientFirst,
    server_first: String,
    nonce: String,
    credentials: StoredCredentials,
}

impl ScramServer {
    /// Build the server-first-message for `first` with our nonce half.
    pub fn new(
        hash: ScramHash,
        first: ClientFirst,
        server_nonce: &str,
        credentials: StoredCredentials,
    ) -> Self {
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credentials.salt),
            credentials.iterations
        );
        ScramServer {
            hash,
            first,
            server_first,
            nonce,
            credentials,
        }
    }

    pub fn server_first(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// Check the client-final-message; on success return the
    /// server-final-message (`v=…`).
    pub fn finish(&self, message: &[u8]) -> Result<Vec<u8>, SaslFailure> {
        let text = std::str::from_utf8(message).map_err(|_| SaslFailure::MalformedRequest)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslFailure::MalformedRequest)?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .ok_or(SaslFailure::MalformedRequest)?;
        let nonce = attrs
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or(SaslFailure::MalformedRequest)?;
        let binding = B64
            .decode(binding)
            .map_err(|_| SaslFailure::IncorrectEncoding)?;
        if !constant_time_eq(&binding, &self.first.channel_binding) || nonce != self.nonce {
            return Err(SaslFailure::NotAuthorized);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| SaslFailure::IncorrectEncoding)?;
        let auth_message = format!(
            "{},{},{}",
            self.first.bare, self.server_first, without_proof
        );
        let keys = self.credentials.keys(self.hash);
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(SaslFailure::NotAuthorized);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&self.hash.hash(&client_key), &keys.stored_key) {
            return Err(SaslFailure::NotAuthorized);
        }
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the complete SCRAM-SHA-256 example exchange.
    #[test]
    fn reproduces_the_rfc_7677_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = StoredCredentials::derive("pencil", &salt, 4096).unwrap();
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let server = ScramServer::new(
            ScramHash::Sha256,
            first,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            creds,
        );
        assert_eq!(
            server.server_first(),
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let last = server
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    /// RFC 5802 section 5: the SCRAM-SHA-1 example exchange.
    #[test]
    fn reproduces_the_rfc_5802_exchange() {
        let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
        let creds = StoredCredentials::derive("pencil", &salt, 4096).unwrap();
        let first = parse_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        let server = ScramServer::new(ScramHash::Sha1, first, "3rfcNHYJY1ZVvWVs7j", creds);
        let last = server
            .finish(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
            .unwrap();
        assert_eq!(last, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn wrong_proof_is_not_authorized() {
        let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
        let creds = StoredCredentials::derive("pencils", &salt, 4096).unwrap();
        let first = parse_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        let server = ScramServer::new(ScramHash::Sha1, first, "3rfcNHYJY1ZVvWVs7j", creds);
        assert_eq!(
            server.finish(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
            Err(SaslFailure::NotAuthorized)
        );
    }

    #[test]
    fn p_flag_names_the_binding_type() {
        let first = parse_client_first(b"p=tls-exporter,,n=user,r=abc").unwrap();
        assert_eq!(first.flag, Gs2Flag::Binding("tls-exporter".into()));
        assert_eq!(first.gs2_header, "p=tls-exporter,,");
    }

    #[test]
    fn final_message_with_tampered_binding_is_not_authorized() {
        let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
        let creds = StoredCredentials::derive("pencil", &salt, 4096).unwrap();
        let mut first = parse_client_first(b"p=tls-exporter,,n=user,r=abc").unwrap();
        first.channel_binding = [b"p=tls-exporter,,".as_slice(), &[9; 32]].concat();
        let server = ScramServer::new(ScramHash::Sha1, first, "xyz", creds);
        // The client bound to other data (a man in the middle's channel).
        let forged = B64.encode([b"p=tls-exporter,,".as_slice(), &[8; 32]].concat());
        let message = format!("c={forged},r=abcxyz,p=AAAA");
        assert_eq!(
            server.finish(message.as_bytes()),
            Err(SaslFailure::NotAuthorized)
        );
    }

    #[test]
    fn escaped_username_is_decoded() {
        let first = parse_client_first(b"n,,n=a=2Cb=3Dc,r=abc").unwrap();
        assert_eq!(first.username, "a,b=c");
    }

    #[test]
    fn mandatory_extension_is_malformed() {
        assert_eq!(
            parse_client_first(b"n,,m=ext,n=user,r=abc"),
            Err(SaslFailure::MalformedRequest)
        );
    }
}
