//! The hub's modules: one file per XEP or RFC section, each declaring
//! what it adds to the server.
//!
//! A [`Module`] says whether the configuration loads it, the disco
//! features it adds (for the domain and for accounts), the stream
//! features it offers once a client is authenticated, and the iqs it
//! answers. [`Loaded`] gathers them at start-up: disco replies and stream
//! features are built from what is loaded, so the server never advertises
//! what it does not do, and an iq nothing loaded handles gets
//! `<service-unavailable/>`.

pub(crate) mod admin;
pub(crate) mod avatar_conversion;
pub(crate) mod blocking;
mod bookmarks;
pub(crate) mod caps;
pub(crate) mod carbons;
pub(crate) mod contact_info;
pub(crate) mod csi;
mod disco;
pub(crate) mod last_activity;
pub(crate) mod mam;
pub(crate) mod pep;
mod ping;
pub(crate) mod private_storage;
pub(crate) mod register;
pub(crate) mod stream_management;
mod time;
mod vcard;
pub(crate) mod vcard_update;
mod version;
pub(crate) mod waiting;

use crate::config::Config;
use crate::hub::Ctx;
use crate::session::SessionId;
use crate::stanza::{error_reply, error_reply_with, iq_result, StanzaErrorCondition as E};
use crate::xml::Element;

/// Whom an iq is addressed to, as far as a module's handler cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addressee {
    /// The server's domain (RFC 6120 section 10.3.3: also an iq with no
    /// `to`, when no handler for the sender's own account takes it).
    Server,
    /// An account's bare JID, answered on the account's behalf
    /// (RFC 6121 section 8.5.2.1.3); to anyone but the account's own
    /// resources, only once the account shares its presence with them.
    Account,
    /// The sender's own account: no `to`, or its own bare JID.
    OwnAccount,
    /// An account's bare JID, answered on its behalf to anyone (a
    /// vCard); a public handler also answers those `Account` ones do.
    Public,
}

/// An iq get or set for a handler.
pub(crate) struct Request<'a> {
    /// Who asked.
    pub session: SessionId,
    pub iq: &'a Element,
    /// The iq's one child.
    pub payload: &'a Element,
}

/// A handler's answer.
pub(crate) enum Answer {
    /// `<iq type='result'/>`, with this payload if any.
    Result(Option<Element>),
    Error(E),
    /// An error with an application-specific condition beside it.
    Refused(E, Element),
    /// The module answers later (once storage has spoken).
    Later,
}

/// Answer an iq get or set.
pub(crate) type HandleIq = fn(&mut Ctx, &Request) -> Answer;

/// An iq payload a module answers.
pub(crate) struct IqHandler {
    pub to: Addressee,
    pub name: &'static str,
    pub ns: &'static str,
    pub get: Option<HandleIq>,
    pub set: Option<HandleIq>,
}

/// What a module adds to the server.
pub(crate) struct Module {
    pub name: &'static str,
    /// Whether the configuration loads it.
    pub loaded: fn(&Config) -> bool,
    /// Features of the server's domain in disco#info.
    pub features: &'static [&'static str],
    /// Features of an account in disco#info.
    pub account_features: &'static [&'static str],
    /// Identities of an account in disco#info, beside
    /// `account/registered`: category and type.
    pub account_identities: &'static [(&'static str, &'static str)],
    /// Children of `<stream:features>` once authenticated, beside bind.
    pub stream_features: fn(&Config) -> Vec<Element>,
    /// Extended forms (XEP-0128) in the server's disco#info.
    pub info_forms: fn(&Config) -> Vec<Element>,
    pub iqs: &'static [IqHandler],
}

impl Module {
    /// A module that adds nothing; spelled out fields override.
    pub const NONE: Module = Module {
        name: "",
        loaded: |_| true,
        features: &[],
        account_features: &[],
        account_identities: &[],
        stream_features: |_| Vec::new(),
        info_forms: |_| Vec::new(),
        iqs: &[],
    };
}

/// Every module the server knows, in the order their stream features and
/// iq handlers are tried.
const ALL: &[&Module] = &[
    &crate::roster::MODULE,
    &crate::offline::MODULE,
    &disco::MODULE,
    &ping::MODULE,
    &time::MODULE,
    &version::MODULE,
    &stream_management::MODULE,
    &carbons::MODULE,
    &blocking::MODULE,
    &csi::MODULE,
    &last_activity::MODULE,
    &vcard::MODULE,
    &private_storage::MODULE,
    &mam::MODULE,
    &pep::MODULE,
    &bookmarks::MODULE,
    &avatar_conversion::MODULE,
    &vcard_update::MODULE,
    &register::MODULE,
    &admin::MODULE,
    &contact_info::MODULE,
    &caps::MODULE,
];

/// The names of the modules an operator may disable.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|m| m.name)
}

/// The modules the configuration loads, and what they add.
pub(crate) struct Loaded {
    modules: Vec<&'static Module>,
    /// The domain's disco#info features, sorted, without duplicates.
    pub server_features: Vec<&'static str>,
    pub account_features: Vec<&'static str>,
    pub account_identities: Vec<(&'static str, &'static str)>,
    /// Extended forms of the domain's disco#info.
    pub server_forms: Vec<Element>,
    /// Serialized children of `<stream:features>` after authentication.
    pub stream_features: String,
}

impl Loaded {
    pub fn new(config: &Config) -> Self {
        let disabled = |m: &Module| config.modules_disabled.iter().any(|d| d == m.name);
        let modules: Vec<&'static Module> = ALL
            .iter()
            .copied()
            .filter(|m| (m.loaded)(config) && !disabled(m))
            .collect();
        let sorted = |pick: fn(&Module) -> &'static [&'static str]| {
            let mut features: Vec<&'static str> =
                modules.iter().flat_map(|m| pick(m)).copied().collect();
            features.sort_unstable();
            features.dedup();
            features
        };
        let server_features = sorted(|m| m.features);
        let account_features = sorted(|m| m.account_features);
        let account_identities = modules
            .iter()
            .flat_map(|m| m.account_identities)
            .copied()
            .collect();
        let server_forms: Vec<Element> = modules
            .iter()
            .flat_map(|m| (m.info_forms)(config))
            .collect();
        let mut stream_features: String = modules
            .iter()
            .flat_map(|m| (m.stream_features)(config))
            .map(|e| e.to_stream_string())
            .collect();
        if modules.iter().any(|m| m.name == caps::MODULE.name) {
            let c = caps::feature(disco::SERVER_IDENTITY, &server_features, &server_forms);
            stream_features.push_str(&c.to_stream_string());
        }
        Loaded {
            modules,
            server_features,
            account_features,
            account_identities,
            server_forms,
            stream_features,
        }
    }

    /// The handler of `payload` for `to`, among loaded modules.
    fn handler(&self, to: Addressee, payload: &Element) -> Option<&'static IqHandler> {
        self.modules.iter().flat_map(|m| m.iqs).find(|h| {
            let public = to == Addressee::Account && h.to == Addressee::Public;
            (h.to == to || public) && payload.is(h.name, h.ns)
        })
    }

    /// Whether the module of this name is loaded.
    pub fn has(&self, name: &str) -> bool {
        self.modules.iter().any(|m| m.name == name)
    }

    /// Whether a loaded module answers `payload` for `to`.
    pub fn answers(&self, to: Addressee, payload: &Element) -> bool {
        self.handler(to, payload).is_some()
    }
}

/// Answer an iq get or set whose one child is `payload`, addressed to
/// `to`: a result or error for the asker, or `None` when the module
/// answers later. Nothing loaded handles it: `<service-unavailable/>`.
pub(crate) fn answer(
    ctx: &mut Ctx,
    to: Addressee,
    session: SessionId,
    iq: &Element,
    payload: &Element,
) -> Option<Element> {
    let handler = ctx.loaded.handler(to, payload);
    let handle = match iq.get_attr("type") {
        Some("get") => handler.and_then(|h| h.get),
        Some("set") => handler.and_then(|h| h.set),
        _ => None,
    };
    let request = Request {
        session,
        iq,
        payload,
    };
    let answer = handle.map_or(Answer::Error(E::ServiceUnavailable), |h| h(ctx, &request));
    answer.reply(iq)
}

impl Answer {
    /// The reply to `iq` this answer gives, unless it comes later.
    pub fn reply(self, iq: &Element) -> Option<Element> {
        match self {
            Answer::Result(payload) => Some(iq_result(iq, payload)),
            Answer::Error(condition) => Some(error_reply(iq, condition)),
            Answer::Refused(condition, app) => Some(error_reply_with(iq, condition, app)),
            Answer::Later => None,
        }
    }
}
