//! SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.

use super::SaslFailure;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlainMessage {
    pub authzid: String,
    pub authcid: String,
    pub password: String,
}

pub(crate) fn parse(message: &[u8]) -> Result<PlainMessage, SaslFailure> {
    let text = std::str::from_utf8(message).map_err(|_| SaslFailure::MalformedRequest)?;
    let mut parts = text.split('\0');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(authzid), Some(authcid), Some(password), None) if !authcid.is_empty() => {
            Ok(PlainMessage {
                authzid: authzid.to_owned(),
                authcid: authcid.to_owned(),
                password: password.to_owned(),
            })
        }
        _ => Err(SaslFailure::MalformedRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_authzid_authcid_and_password() {
        assert_eq!(
            parse(b"juliet@example.com\0juliet\0r0m30").unwrap(),
            PlainMessage {
                authzid: "juliet@example.com".into(),
                authcid: "juliet".into(),
                password: "r0m30".into()
            }
        );
    }

    #[test]
    fn two_fields_are_malformed() {
        assert_eq!(parse(b"juliet\0r0m30"), Err(SaslFailure::MalformedRequest));
    }
}
