//! Message delivery (RFC 6121 section 8.5): to a full JID, to a bare JID
//! by priority, and offline storage when no resource can take it.

use crate::hub::Ctx;
use crate::hub::{AccountReach, Recipients};
use crate::modules::{blocking, carbons, mam};
use crate::offline;
use crate::router::{Destination, Envelope};
use crate::session::SessionId;
use crate::stanza::{error_reply, is_error, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};

/// Route a message, which the router resolved to the server, a session
/// or an account.
pub(crate) fn route(ctx: &mut Ctx, envelope: Envelope) {
    let Envelope {
        sender,
        from,
        to,
        destination,
        mut stanza,
    } = envelope;
    let (to, destination) = match to {
        Some(to) => (to, destination),
        // No `to`: the sender's own account (RFC 6120 section 10.3.1).
        None => {
            let own = from.to_bare();
            let account = Destination::Account {
                user: own.clone(),
                resource_gone: false,
            };
            (Jid::from(own), account)
        }
    };
    let kind = stanza.get_attr("type").unwrap_or("normal").to_owned();
    if destination == Destination::Server {
        // Addressed to the server itself, which has no message service.
        refuse(ctx, sender, &stanza, &kind);
        return;
    }
    if blocking::refused(ctx, sender, &stanza, &to) {
        return;
    }
    let bare = to.to_bare();
    carbons::sent(ctx, sender, &mut stanza, &bare);
    match destination {
        Destination::Session(target) => {
            // A client far behind in reading, or storage too far behind
            // to archive: the sender is told to wait.
            let taken = ctx.accepts(target) && mam::archive(ctx, &from, &to, &bare, &mut stanza);
            if taken {
                ctx.deliver_message(&bare, &stanza, &Recipients::of(target), &from);
            } else if kind != "headline" {
                reply(ctx, sender, &stanza, E::ResourceConstraint);
            }
        }
        // Section 8.5.3.2.1: no such resource.
        Destination::Account {
            resource_gone: true,
            ..
        } if kind == "groupchat" => reply(ctx, sender, &stanza, E::ServiceUnavailable),
        Destination::Account {
            resource_gone: true,
            ..
        } if kind == "error" => {}
        Destination::Account { user, .. } => {
            to_bare(ctx, (sender, &from, &to), stanza, &user, &kind)
        }
        // Resolved by the router.
        Destination::Unaddressed | Destination::Server | Destination::Remote => {}
    }
}

/// Section 8.5.2.1.1: a message to an account.
fn to_bare(
    ctx: &mut Ctx,
    (sender, from, to): (SessionId, &FullJid, &Jid),
    mut stanza: Element,
    user: &BareJid,
    kind: &str,
) {
    let reach = ctx.message_reach(user, kind);
    match (kind, reach) {
        ("error", _) => {}
        // With none left that could take it now, the sender is told to
        // wait.
        ("headline", AccountReach::Congested) => {}
        (_, AccountReach::Congested) => reply(ctx, sender, &stanza, E::ResourceConstraint),
        ("groupchat", _) => reply(ctx, sender, &stanza, E::ServiceUnavailable),
        ("headline", AccountReach::NoneAvailable) => {}
        // chat, normal, and unknown types (treated as normal).
        _ if !mam::archive(ctx, from, to, user, &mut stanza) => {
            reply(ctx, sender, &stanza, E::ResourceConstraint)
        }
        (_, AccountReach::NoneAvailable) => offline::store(ctx, sender, user, stanza),
        (_, AccountReach::Resources(recipients)) => {
            ctx.deliver_message(user, &stanza, &recipients, from);
        }
    }
}

fn refuse(ctx: &mut Ctx, sender: SessionId, stanza: &Element, kind: &str) {
    if kind != "headline" {
        reply(ctx, sender, stanza, E::ServiceUnavailable);
    }
}

fn reply(ctx: &mut Ctx, sender: SessionId, stanza: &Element, condition: E) {
    if is_error(stanza) {
        return;
    }
    ctx.deliver(sender, &error_reply(stanza, condition));
}
