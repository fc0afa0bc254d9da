//! What the operator can tune. Every limit has a safe default.

use crate::xml::XmlLimits;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Domains served, already in canonical (nameprepped) form. The first is
    /// the default.
    pub domains: Vec<String>,
    pub xml: XmlLimits,
    /// Failed SASL attempts allowed on one stream before it is closed.
    /// RFC 6120 section 6.4.5 asks for at least 2 and at most 5 retries.
    pub max_auth_failures: u32,
    /// How long a stream may take from accept to a bound resource
    /// (Prosody's `c2s_timeout`, 300 s).
    pub login_timeout: Duration,
    /// How long an established session may stay silent before it is closed
    /// with `<connection-timeout/>`. Clients keep alive with whitespace or
    /// XEP-0199 pings well within this.
    pub idle_timeout: Duration,
    /// Offer SASL PLAIN. Until TLS exists (issue 7) this is the only way for
    /// clients that know no SCRAM (mcabber, sendxmpp) to log in.
    pub offer_plain: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: vec!["localhost".to_owned()],
            xml: XmlLimits::default(),
            max_auth_failures: 3,
            login_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(900),
            offer_plain: true,
        }
    }
}

impl Config {
    pub fn serves(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }
}
