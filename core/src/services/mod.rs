//! Iqs the server answers itself, for the domain (`to='localhost'` or no
//! `to`) and on behalf of accounts (`to='user@localhost'`).
//!
//! Each service is a [`Handler`] in a table; the disco#info features are
//! built from the same table, so the server can never advertise a feature
//! it does not implement.

mod disco;
mod ping;
mod time;
mod version;

use crate::hub::Ctx;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::xml::Element;

/// One iq service: the payload it answers and how.
pub(crate) struct Handler {
    /// The payload's namespace, also the disco feature advertised.
    pub ns: &'static str,
    pub name: &'static str,
    /// Answer an iq get; `Ok(None)` is an empty result.
    pub get: fn(&Ctx, &Element) -> Result<Option<Element>, E>,
}

/// Services of the server's domain.
pub(crate) const SERVER: &[Handler] = &[
    disco::SERVER_INFO,
    disco::ITEMS,
    ping::PING,
    version::VERSION,
    time::TIME,
];

/// Services answered on behalf of an account (RFC 6121 section 8.5.2.1.3).
pub(crate) const ACCOUNT: &[Handler] = &[disco::ACCOUNT_INFO, disco::ITEMS];

/// Features implemented outside the iq services but announced in disco.
pub(crate) const OTHER_FEATURES: &[&str] = &[
    // XEP-0160: messages to offline users are stored.
    "msgoffline",
];

/// Answer `iq` (a get or set whose single payload is `payload`) from
/// `table`: a result, or the error the RFC names when nothing handles it.
pub(crate) fn answer(ctx: &Ctx, table: &[Handler], iq: &Element, payload: &Element) -> Element {
    let handler = table.iter().find(|h| payload.is(h.name, h.ns));
    let outcome = match (handler, iq.get_attr("type")) {
        (Some(h), Some("get")) => (h.get)(ctx, payload),
        _ => Err(E::ServiceUnavailable),
    };
    match outcome {
        Ok(result) => iq_result(iq, result),
        Err(condition) => error_reply(iq, condition),
    }
}

/// Every feature the domain advertises, sorted and without duplicates.
pub(crate) fn server_features() -> Vec<&'static str> {
    let mut features: Vec<&str> = SERVER
        .iter()
        .map(|h| h.ns)
        .chain(OTHER_FEATURES.iter().copied())
        .collect();
    features.sort_unstable();
    features.dedup();
    features
}
