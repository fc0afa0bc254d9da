//! Where an iq goes (RFC 6120 section 8.2.3, RFC 6121 section 8.5): every
//! get or set gets exactly one result or error.

use crate::hub::Ctx;
use crate::modules::{self, blocking, Addressee};
use crate::roster::manager::{self, Op};
use crate::roster::NS_ROSTER;
use crate::router::{Destination, Envelope};
use crate::session::SessionId;
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::xml::Element;

/// Route an iq to where the router resolved it.
pub(crate) fn route(ctx: &mut Ctx, envelope: Envelope) {
    let Envelope {
        sender: session,
        from,
        to,
        destination,
        stanza: iq,
    } = envelope;
    let own = from.to_bare();
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
    let (bare, payload) = match (destination, payload.filter(|_| request)) {
        // Requests to a client far behind in reading are refused; an
        // answer nobody may be waiting for is dropped.
        (Destination::Session(target), _) if !ctx.accepts(target) => {
            if request {
                ctx.deliver(session, &error_reply(&iq, E::ResourceConstraint));
            }
            return;
        }
        (Destination::Session(target), _) => return ctx.deliver(target, &iq),
        (
            Destination::Account {
                resource_gone: true,
                ..
            },
            Some(_),
        ) => return ctx.deliver(session, &error_reply(&iq, E::ServiceUnavailable)),
        // What a client's capabilities stand for (XEP-0115).
        (Destination::Server, None) if !request => {
            return crate::modules::caps::answered(ctx, session, &iq)
        }
        // Results and errors for an account have no one waiting for
        // them.
        (_, None) => return,
        (Destination::Server, Some(payload)) => {
            return answer(ctx, Addressee::Server, session, &iq, &payload)
        }
        (Destination::Account { user, .. }, Some(payload)) => (user, payload),
        // Resolved by the router.
        (Destination::Unaddressed | Destination::Remote, Some(_)) => return,
    };
    if bare == own {
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
