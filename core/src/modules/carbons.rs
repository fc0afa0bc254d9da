//! Message Carbons (XEP-0280): a user's resources that enable carbons
//! see the messages their other resources send and receive, so that a
//! conversation follows the user from phone to desktop.
//!
//! The hints of XEP-0334 (`<no-copy/>`) and XEP-0280's `<private/>` keep
//! a message out of carbons; `<private/>` is removed before delivery.

use super::{Addressee, Answer, IqHandler, Module, Request};
use crate::hub::{Ctx, Recipients};
use crate::ns;
use crate::session::SessionId;
use crate::xml::Element;
use jid::{BareJid, FullJid};
use std::collections::HashSet;

pub const NS: &str = "urn:xmpp:carbons:2";
pub(crate) const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_HINTS: &str = "urn:xmpp:hints";

pub(crate) const MODULE: Module = Module {
    name: "carbons",
    features: &[NS],
    iqs: &[
        IqHandler {
            to: Addressee::OwnAccount,
            name: "enable",
            ns: NS,
            get: None,
            set: Some(|ctx, request| set(ctx, request, true)),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "disable",
            ns: NS,
            get: None,
            set: Some(|ctx, request| set(ctx, request, false)),
        },
    ],
    ..Module::NONE
};

/// Sessions that enabled carbons; nothing for the others.
#[derive(Default)]
pub(crate) struct Carbons {
    enabled: HashSet<SessionId>,
}

fn set(ctx: &mut Ctx, request: &Request, on: bool) -> Answer {
    if on {
        ctx.carbons.enabled.insert(request.session);
    } else {
        ctx.carbons.enabled.remove(&request.session);
    }
    Answer::Result(None)
}

pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    ctx.carbons.enabled.remove(&session);
}

/// Whether a message is copied (XEP-0280 section 6.1): chats, and
/// normal messages with a body, unless marked private or no-copy.
fn eligible(message: &Element) -> bool {
    let kind = message.get_attr("type").unwrap_or("normal");
    let conversational =
        kind == "chat" || (kind == "normal" && message.get_child("body", ns::CLIENT).is_some());
    conversational
        && message.get_child("private", NS).is_none()
        && message.get_child("no-copy", NS_HINTS).is_none()
}

/// `message` leaves the user's `sender` session: its other resources
/// with carbons enabled get a `<sent/>` copy. Removes `<private/>`
/// from the message itself, which goes on to its recipient.
pub(crate) fn sent(ctx: &mut Ctx, sender: SessionId, message: &mut Element, to: &BareJid) {
    let private = message.remove_children("private", NS);
    if private || ctx.carbons.enabled.is_empty() || !eligible(message) {
        return;
    }
    let Some(user) = ctx.account_of(sender) else {
        return;
    };
    if *to == user {
        // To the user's own account: its resources get it as received.
        return;
    }
    copy_to(ctx, &user, "sent", message, &[sender]);
}

/// `message` for `user` was delivered to `recipients`: the user's
/// other resources with carbons enabled get a `<received/>` copy, but
/// for the one that sent it (`from`, when the user writes to itself).
pub(crate) fn received(
    ctx: &mut Ctx,
    user: &BareJid,
    message: &Element,
    recipients: &Recipients,
    from: &FullJid,
) {
    if recipients.is_empty() || ctx.carbons.enabled.is_empty() || !eligible(message) {
        return;
    }
    let mut except: Vec<SessionId> = recipients.iter().collect();
    // A message between the user's own resources is not copied back to
    // the one that sent it.
    except.extend(ctx.resource(from).iter());
    copy_to(ctx, user, "received", message, &except);
}

fn copy_to(
    ctx: &mut Ctx,
    user: &BareJid,
    direction: &str,
    message: &Element,
    except: &[SessionId],
) {
    let targets: Vec<(SessionId, String)> = ctx
        .sessions
        .resources_of(user)
        .filter(|s| ctx.carbons.enabled.contains(&s.id) && !except.contains(&s.id))
        .map(|s| (s.id, s.jid.to_string()))
        .collect();
    for (session, jid) in targets {
        // A copy is from someone else's conversation: a resource far
        // behind in reading does without.
        if !ctx.accepts(session) {
            continue;
        }
        let mut copy = Element::new("message", ns::CLIENT)
            .attr("from", user.as_str())
            .attr("to", &jid)
            .child(
                Element::new(direction, NS)
                    .child(Element::new("forwarded", NS_FORWARD).child(message.clone())),
            );
        if let Some(kind) = message.get_attr("type") {
            copy.set_attr("type", kind);
        }
        ctx.deliver(session, &copy);
    }
}
