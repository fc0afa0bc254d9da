//! Where an iq goes (RFC 6120 section 8.2.3, RFC 6121 section 8.5): every
//! get or set gets exactly one result or error.

use crate::hub::Ctx;
use crate::modules::{self, blocking, Addressee};
use crate::roster::manager::{self, Op};
use crate::roster::NS_ROSTER;
use crate::session::SessionId;
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::Jid;

/// Route an iq from `session` (already stamped) addressed to a served
/// domain, or to no one (the user's own account).
pub(crate) fn route(ctx: &mut Ctx, session: SessionId, iq: Element, to: Option<Jid>) {
    let Some(own) = ctx.sessions.get(session).map(|s| s.jid.to_bare()) else {
        return;
    };
    let request = match iq.get_attr("type") {
        Some("get") | Some("set") => true,
        Some("result") | Some("error") => false,
        // An iq of no known type cannot be answered as anything else.
        _ => {
            ctx.deliver(session, &error_reply(&iq, E::BadRequest));
            return;
        }
    };
    let payload = {
        let mut children = iq.children();
        match (children.next(), children.next()) {
            (Some(p), None) => Some(p.clone()),
            _ => None,
        }
    };
    if request && payload.is_none() {
        // Exactly one payload per get or set (RFC 6120 section 8.2.3).
        ctx.deliver(session, &error_reply(&iq, E::BadRequest));
        return;
    }
    let Some(to) = to else {
        if let Some(payload) = payload.filter(|_| request) {
            to_own_account(ctx, session, iq, &payload);
        }
        return;
    };
    let someone_else = to.node().is_some() && to.to_bare() != own;
    if someone_else && blocking::refused(ctx, session, &iq, &to) {
        return;
    }
    if let Ok(full) = to.try_as_full() {
        match ctx.sessions.by_full_jid(full).map(|s| s.id) {
            // Requests to a client far behind in reading are refused.
            Some(target) if request && !ctx.accepts(target) => {
                ctx.deliver(session, &error_reply(&iq, E::ResourceConstraint))
            }
            // An answer nobody may be waiting for is dropped.
            Some(target) if !ctx.accepts(target) => {}
            Some(target) => ctx.deliver(target, &iq),
            None if request => ctx.deliver(session, &error_reply(&iq, E::ServiceUnavailable)),
            None => {}
        }
        return;
    }
    let Some(payload) = payload.filter(|_| request) else {
        // Results and errors for the server or an account have no one
        // waiting for them.
        return;
    };
    let bare = to.to_bare();
    if bare.node().is_none() {
        answer(ctx, Addressee::Server, session, &iq, &payload);
    } else if bare == own {
        to_own_account(ctx, session, iq, &payload);
    } else if payload.is("query", NS_ROSTER) {
        // One user's roster is no one else's business.
        ctx.deliver(session, &error_reply(&iq, E::Forbidden));
    } else {
        // Answered on the account's behalf once we know it exists.
        manager::submit(
            ctx,
            &bare,
            Op::OnBehalf {
                requester: session,
                iq,
            },
        );
    }
}

/// An iq to the sender's own account: a module serving the account's
/// own resources first; then, with no `to`, the server answers for the
/// account (RFC 6120 section 10.3.3), and to the bare JID the account
/// answers as it would to anyone.
fn to_own_account(ctx: &mut Ctx, session: SessionId, iq: Element, payload: &Element) {
    let to = if ctx.loaded.answers(Addressee::OwnAccount, payload) {
        Addressee::OwnAccount
    } else if iq.get_attr("to").is_none() {
        Addressee::Server
    } else {
        Addressee::Account
    };
    answer(ctx, to, session, &iq, payload);
}

fn answer(ctx: &mut Ctx, to: Addressee, session: SessionId, iq: &Element, payload: &Element) {
    if let Some(answer) = modules::answer(ctx, to, session, iq, payload) {
        ctx.deliver(session, &answer);
    }
}
