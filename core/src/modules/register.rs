//! In-band registration (XEP-0077): creating an account before logging
//! in, if the operator allows it (`registration.allowed`, off by
//! default), at most `registration.max_per_address` from one address in
//! each `registration.window`; and, once logged in, changing the
//! password and removing the account with all its data.
//!
//! Creating an account runs on the stream before authentication (see
//! `connection`), which asks [`unauthed`] what to do; the rest is a
//! module of the hub.

use super::{waiting, Addressee, Answer, IqHandler, Module, Request};
use crate::config::Config;
use crate::hub::Ctx;
use crate::sasl::Password;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::storage::{StorageAnswer, StorageRequest};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use jid::BareJid;

pub const NS: &str = "jabber:iq:register";
/// The stream feature offering registration before authentication.
pub const FEATURE: &str = "http://jabber.org/features/iq-register";

pub(crate) const MODULE: Module = Module {
    name: "register",
    features: &[NS],
    // Section 3.2: addressed to the server (or to no one), which answers
    // for the sender's account.
    iqs: &[IqHandler {
        to: Addressee::Server,
        name: "query",
        ns: NS,
        get: Some(registered),
        set: Some(change),
    }],
    ..Module::NONE
};

/// Whether the stream may offer registration now: allowed, and the
/// stream may carry a password (encrypted, unless the operator does not
/// require it).
pub(crate) fn offered(config: &Config, may_carry_password: bool) -> bool {
    config.registration.allowed && may_carry_password
}

/// What a stream before authentication does with a registration iq.
pub(crate) enum Unauthed {
    /// Answer at once.
    Reply(Element),
    /// Create this account, then answer the iq (kept without payload).
    Create {
        username: String,
        password: Password,
        head: Element,
    },
}

/// A `jabber:iq:register` iq on a stream before authentication, for an
/// account of `domain` (XEP-0077 section 3.1): the form, or the account
/// to create.
pub(crate) fn unauthed(iq: &Element, domain: &str, config: &Config) -> Unauthed {
    let Some(query) = iq.get_child("query", NS) else {
        return Unauthed::Reply(error_reply(iq, E::ServiceUnavailable));
    };
    match iq.get_attr("type") {
        Some("get") => Unauthed::Reply(iq_result(iq, Some(form()))),
        Some("set") if query.get_child("remove", NS).is_some() => {
            // Removing an account needs the account's own stream.
            Unauthed::Reply(error_reply(iq, E::NotAuthorized))
        }
        Some("set") => match fields(query) {
            Some((username, password)) => match prepared(&username, domain) {
                // An admin's name, even unused, is not for a stranger to
                // take: it would come with the admin's powers.
                Some(username) if reserved(config, &username, domain) => {
                    Unauthed::Reply(error_reply(iq, E::Conflict))
                }
                Some(username) => Unauthed::Create {
                    username,
                    password,
                    head: iq.shallow(),
                },
                None => Unauthed::Reply(error_reply(iq, E::JidMalformed)),
            },
            // Section 3.1: a field left out.
            None => Unauthed::Reply(error_reply(iq, E::NotAcceptable)),
        },
        _ => Unauthed::Reply(error_reply(iq, E::BadRequest)),
    }
}

/// Whether `username@domain` is an admin's account.
fn reserved(config: &Config, username: &str, domain: &str) -> bool {
    config.admins.iter().any(|admin| {
        admin.node().is_some_and(|n| n.as_str() == username) && admin.domain().as_str() == domain
    })
}

/// The registration form (section 3.1): a username and a password.
fn form() -> Element {
    Element::new("query", NS)
        .child(Element::new("instructions", NS).text("Choose a username and password."))
        .child(Element::new("username", NS))
        .child(Element::new("password", NS))
}

/// The username and password of a registration, if both are there and
/// not empty.
fn fields(query: &Element) -> Option<(String, Password)> {
    let field = |name| {
        query
            .get_child(name, NS)
            .map(Element::text_content)
            .filter(|t| !t.is_empty())
    };
    Some((field("username")?, Password(field("password")?)))
}

/// The username as a JID's local part of `domain` (nodeprep), if it is
/// one.
fn prepared(username: &str, domain: &str) -> Option<String> {
    let jid = BareJid::new(&format!("{username}@{domain}")).ok()?;
    Some(jid.node()?.as_str().to_owned())
}

/// What storage said of a registration, as the answer to `head`.
pub(crate) fn created(head: &Element, answer: &StorageAnswer) -> Element {
    match answer {
        StorageAnswer::AccountCreated(true) => iq_result(head, None),
        // Section 3.1: the username is taken.
        StorageAnswer::AccountCreated(false) => error_reply(head, E::Conflict),
        // A password SASLprep refuses, or a failure of the backend.
        _ => error_reply(head, E::NotAcceptable),
    }
}

/// Section 3.2: a logged-in account is registered, under its username.
fn registered(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let username = user.node().map(|n| n.as_str()).unwrap_or_default();
    Answer::Result(Some(
        Element::new("query", NS)
            .child(Element::new("registered", NS))
            .child(Element::new("username", NS).text(username)),
    ))
}

/// Remove the account (section 3.2), or change its password (section
/// 3.3); answered once durable.
fn change(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    if request.payload.get_child("remove", NS).is_some() {
        // The account rides along: the asking session may be gone when
        // storage answers, and the others must still end.
        let mut head = request.iq.shallow();
        head.set_attr("account", user.as_str());
        let delete = StorageRequest::DeleteAccount { user };
        return waiting::ask(ctx, request, delete, Some(head), removed);
    }
    let Some((username, password)) = fields(request.payload) else {
        return Answer::Error(E::BadRequest);
    };
    let own = user.node().map(|n| n.as_str()).unwrap_or_default();
    let domain = user.domain().as_str();
    if prepared(&username, domain).as_deref() != Some(own) {
        // Only the account's own password.
        return Answer::Error(E::NotAllowed);
    }
    // Deriving keys is costly and runs with storage: one change per
    // account at a time, and not more often than this.
    let now = ctx.now;
    let changes = &mut ctx.passwords.changed;
    if changes.len() >= MAX_REMEMBERED_CHANGES {
        changes.retain(|_, at| now.saturating_duration_since(*at) < PASSWORD_INTERVAL);
    }
    let recent = changes
        .get(&user)
        .is_some_and(|at| now.saturating_duration_since(*at) < PASSWORD_INTERVAL);
    if recent || changes.len() >= MAX_REMEMBERED_CHANGES {
        return Answer::Error(E::ResourceConstraint);
    }
    changes.insert(user.clone(), now);
    let iterations = ctx.config.scram_iterations;
    let set = StorageRequest::SetPassword {
        user,
        password,
        iterations,
    };
    waiting::ask(ctx, request, set, None, |_, _, _, answer| match answer {
        StorageAnswer::Written => Answer::Result(None),
        // SASLprep refused the password.
        _ => Answer::Error(E::NotAcceptable),
    })
}

/// Password changes an account may make: one per this long.
pub const PASSWORD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Accounts whose last change is remembered at once.
const MAX_REMEMBERED_CHANGES: usize = 10_000;

/// When accounts last changed their passwords (within
/// [`PASSWORD_INTERVAL`]).
#[derive(Default)]
pub(crate) struct Passwords {
    changed: std::collections::HashMap<BareJid, std::time::Instant>,
}

/// The account is gone: the asker is told, then every session of the
/// account ends with `<not-authorized/>` (section 3.2).
fn removed(
    ctx: &mut Ctx,
    session: crate::session::SessionId,
    head: Option<&Element>,
    answer: StorageAnswer,
) -> Answer {
    if answer != StorageAnswer::Written {
        return Answer::Error(E::InternalServerError);
    }
    let Some(head) = head else {
        return Answer::Later;
    };
    let Some(user) = head.get_attr("account").and_then(|a| BareJid::new(a).ok()) else {
        return Answer::Later;
    };
    ctx.deliver(session, &iq_result(head, None));
    let sessions: Vec<_> = ctx.sessions.resources_of(&user).map(|s| s.id).collect();
    for s in sessions {
        let error = StreamError::with_text(StreamErrorCondition::NotAuthorized, "account removed");
        ctx.evict(s, error);
    }
    Answer::Later
}
