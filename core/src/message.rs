//! Message delivery (RFC 6121 section 8.5): to a full JID, to a bare JID
//! by priority, and offline storage when no resource can take it.

use crate::hub::Ctx;
use crate::modules::{blocking, carbons};
use crate::offline;
use crate::router::Destination;
use crate::session::{Priority, SessionId};
use crate::stanza::{error_reply, is_error, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::{BareJid, Jid};

/// Route a message from `sender` (already stamped) to `to`, which the
/// router resolved to `destination` (here: the server, a session or an
/// account).
pub(crate) fn route(
    ctx: &mut Ctx,
    sender: SessionId,
    mut stanza: Element,
    to: Jid,
    destination: Destination,
) {
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
            if ctx.accepts(target) {
                ctx.deliver(target, &stanza);
                carbons::received(ctx, &bare, &stanza, &[target], sender);
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
        Destination::Account { user, .. } => to_bare(ctx, sender, stanza, &user, &kind),
        // Resolved by the router.
        Destination::Unaddressed | Destination::Server | Destination::Remote => {}
    }
}

/// Section 8.5.2.1.1: a message to an account.
fn to_bare(ctx: &mut Ctx, sender: SessionId, stanza: Element, user: &BareJid, kind: &str) {
    // Resources of negative priority never receive bare-JID messages.
    let available: Vec<(Priority, SessionId)> = ctx
        .sessions
        .available_of(user)
        .filter(|s| s.priority >= Priority(0))
        .map(|s| (s.priority, s.id))
        .collect();
    // Resources whose clients are far behind in reading take nothing
    // more from others; with none left, the sender is told to wait.
    let any_available = !available.is_empty();
    let candidates: Vec<_> = available
        .into_iter()
        .filter(|(_, s)| ctx.accepts(*s))
        .collect();
    if any_available && candidates.is_empty() {
        if kind != "headline" {
            reply(ctx, sender, &stanza, E::ResourceConstraint);
        }
        return;
    }
    match kind {
        "error" => {}
        "groupchat" => reply(ctx, sender, &stanza, E::ServiceUnavailable),
        "headline" => {
            for (_, target) in candidates {
                ctx.deliver(target, &stanza);
            }
        }
        // chat, normal, and unknown types (treated as normal).
        _ => {
            let Some(top) = candidates.iter().map(|(p, _)| *p).max() else {
                offline::store(ctx, sender, user, stanza);
                return;
            };
            // Several resources share the highest priority: all get it,
            // as with Prosody; a client that is not looking loses nothing.
            let top: Vec<SessionId> = candidates
                .into_iter()
                .filter(|(p, _)| *p == top)
                .map(|(_, s)| s)
                .collect();
            for target in &top {
                ctx.deliver(*target, &stanza);
            }
            carbons::received(ctx, user, &stanza, &top, sender);
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
