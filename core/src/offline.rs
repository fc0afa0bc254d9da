//! Offline messages (XEP-0160): kept durably for a user with no available
//! resource, stamped with when they arrived (XEP-0203), and delivered in
//! order at the user's next initial presence.
//!
//! Delivery never loses a message: they come from storage in pages of
//! half the connection's output budget, each message a write of its own,
//! and a page is deleted from storage only once the shim reports it
//! written to the socket; then the next page is read. A connection that
//! fails before that leaves the page stored, to be delivered (again) at
//! the next login.

use crate::hub::{Ctx, Urgency};
use crate::modules::blocking;
use crate::session::SessionId;
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::storage::{RequestId, StorageAnswer, StorageRequest, StoreOutcome};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};
use std::collections::{HashMap, HashSet};

pub const NS_DELAY: &str = "urn:xmpp:delay";

pub(crate) const MODULE: crate::modules::Module = crate::modules::Module {
    name: "offline",
    features: &["msgoffline"],
    ..crate::modules::Module::NONE
};

/// Offline requests in flight.
#[derive(Default)]
pub(crate) struct Offline {
    /// Messages being stored, with the session to tell if refused.
    stores: HashMap<RequestId, Element>,
    /// Pages of stored messages being read for this session.
    takes: HashMap<RequestId, (SessionId, BareJid)>,
    /// Pages handed to the shim, by the token it reports them written
    /// with.
    written: HashMap<u64, Page>,
    /// Deletions of written pages; their answers need nothing done.
    deletes: HashSet<RequestId>,
    next_token: u64,
}

/// A page of stored messages on its way to the client.
struct Page {
    session: SessionId,
    user: BareJid,
    /// The number of its last message.
    last: u64,
    /// Whether more messages wait after it.
    more: bool,
}

impl Offline {
    pub fn owns(&self, request: RequestId) -> bool {
        self.stores.contains_key(&request)
            || self.takes.contains_key(&request)
            || self.deletes.contains(&request)
    }
}

/// Keep `message` (from `sender`) for `user`, with a delay stamp.
pub(crate) fn store(ctx: &mut Ctx, sender: SessionId, user: &BareJid, message: Element) {
    let Some(from) = ctx.sessions.get(sender).map(|s| Jid::from(s.jid.clone())) else {
        return;
    };
    keep(ctx, from, user, message);
}

/// A message delivered to one of `user`'s sessions whose client never
/// acknowledged it (stream management): kept as if it had found the
/// user offline, if it is of a kind that would have been. If storage
/// refuses it, its sender is told, if still online.
pub(crate) fn undelivered(ctx: &mut Ctx, user: &BareJid, stanza: &str) {
    let Some(message) = crate::xml::parse_stanza(stanza, ctx.config.xml) else {
        return;
    };
    let storable = message.name() == "message"
        && matches!(
            message.get_attr("type"),
            None | Some("chat") | Some("normal")
        )
        && message.get_child("body", crate::ns::CLIENT).is_some();
    let from = message.get_attr("from").and_then(|f| jid::Jid::new(f).ok());
    let (Some(from), true) = (from, storable) else {
        return;
    };
    keep(ctx, from, user, message);
}

/// Tell the sender of a message (its full JID, the `from` the router
/// stamped) that it was not kept, if that resource is still connected.
fn bounce(ctx: &mut Ctx, message: &Element, condition: E) {
    let Some(Ok(from)) = message.get_attr("from").map(FullJid::new) else {
        return;
    };
    let sender = ctx.resource(&from);
    ctx.deliver_all(&error_reply(message, condition), &sender, Urgency::Owed);
}

/// Store the message unless the user blocks its sender (XEP-0191):
/// known at once if the user's blocklist is held, else checked by
/// storage in the same transaction, against the JIDs the core says
/// would match.
fn keep(ctx: &mut Ctx, from: Jid, user: &BareJid, message: Element) {
    let refuse = |ctx: &mut Ctx, condition| bounce(ctx, &message, condition);
    if blocking::user_blocks(ctx, user, &from) {
        refuse(ctx, E::ServiceUnavailable);
        return;
    }
    if ctx.offline.stores.len() >= ctx.config.max_offline_in_flight {
        refuse(ctx, E::ResourceConstraint);
        return;
    }
    let unless_blocked = blocking::candidates(&from);
    let from = from.to_bare();
    let mut stamped = message.clone();
    let domain = user.domain().as_str().to_owned();
    stamped.push_child(
        Element::new("delay", NS_DELAY)
            .attr("from", &domain)
            .attr("stamp", &ctx.clock.xmpp_datetime())
            .text("Offline Storage"),
    );
    let request = ctx.out.storage(StorageRequest::StoreOffline {
        user: user.clone(),
        sender: from,
        unless_blocked,
        stanza: stamped.to_stream_string(),
        quota: ctx.config.offline_quota,
        sender_quota: ctx.config.offline_quota_per_sender,
    });
    ctx.offline.stores.insert(request, message);
}

/// The session sent initial presence: fetch what waited for the user.
pub(crate) fn deliver(ctx: &mut Ctx, session: SessionId, user: &BareJid) {
    load_page(ctx, session, user, 0);
}

fn load_page(ctx: &mut Ctx, session: SessionId, user: &BareJid, after: u64) {
    let request = ctx.out.storage(StorageRequest::LoadOffline {
        user: user.clone(),
        after,
        max_bytes: ctx.config.output_buffer / 2,
    });
    ctx.offline.takes.insert(request, (session, user.clone()));
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    if ctx.offline.deletes.remove(&request) {
        // A failed delete leaves the page stored: delivered again at the
        // next login, which is better than lost.
        return;
    }
    if let Some(message) = ctx.offline.stores.remove(&request) {
        let refused = match answer {
            StorageAnswer::Stored(StoreOutcome::Stored) => false,
            // Over quota, no such user, or storage failed: the sender must
            // know the message was not kept (RFC 6121 section 8.5.2.1.1).
            _ => true,
        };
        if refused {
            bounce(ctx, &message, E::ServiceUnavailable);
        }
        return;
    }
    let Some((session, user)) = ctx.offline.takes.remove(&request) else {
        return;
    };
    let StorageAnswer::Offline { messages, more } = answer else {
        return;
    };
    // The session left before its messages came: they stay stored.
    if ctx.sessions.get(session).is_none() {
        return;
    }
    let Some(last) = messages.last().map(|m| m.id) else {
        return;
    };
    for message in &messages {
        // Stored stanzas are bounded by the stanza limit, which the
        // output budget is at least twice of; one stored under a larger
        // limit than today's could never be written, and would cut the
        // user off at every login: it is dropped with its page.
        if message.stanza.len() <= ctx.config.output_buffer / 4 * 3 {
            ctx.deliver_stored(session, &message.stanza);
        }
    }
    ctx.offline.next_token += 1;
    let token = ctx.offline.next_token;
    ctx.notify_delivered(session, token);
    ctx.offline.written.insert(
        token,
        Page {
            session,
            user,
            last,
            more,
        },
    );
}

/// A page reached the session's client (written to its socket, or with
/// stream management acknowledged): it leaves storage, and the next one
/// is read.
pub(crate) fn delivered(ctx: &mut Ctx, session: SessionId, token: u64) {
    if ctx
        .offline
        .written
        .get(&token)
        .is_none_or(|page| page.session != session)
    {
        return;
    }
    let Some(page) = ctx.offline.written.remove(&token) else {
        return;
    };
    let request = ctx.out.storage(StorageRequest::DeleteOffline {
        user: page.user.clone(),
        up_to: page.last,
    });
    ctx.offline.deletes.insert(request);
    if page.more {
        load_page(ctx, page.session, &page.user, page.last);
    }
}

/// Tokens of the pages on their way to the session's client.
pub(crate) fn pages_in_flight(ctx: &Ctx, session: SessionId) -> Vec<u64> {
    let mut tokens: Vec<u64> = ctx
        .offline
        .written
        .iter()
        .filter(|(_, page)| page.session == session)
        .map(|(token, _)| *token)
        .collect();
    tokens.sort_unstable();
    tokens
}

/// A session ended: pages not yet written stay stored.
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    ctx.offline
        .written
        .retain(|_, page| page.session != session);
}
