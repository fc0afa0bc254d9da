//! Presence (RFC 6121 section 4): broadcast to subscribers and own
//! resources, the initial-presence exchange, directed presence, and the
//! unavailable every observer is owed when a resource goes.
//!
//! All contacts here are local (no federation yet), so a probe is answered
//! directly from the session manager instead of travelling as a stanza.

use crate::hub::Ctx;
use crate::modules::blocking;
use crate::ns;
use crate::offline;
use crate::roster::manager::{self, Op};
use crate::roster::{Roster, SubscriptionKind};
use crate::session::{Priority, SessionId};
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};
use std::collections::BTreeSet;

/// A presence stanza from a bound session, `from` already stamped.
pub(crate) fn handle(ctx: &mut Ctx, session: SessionId, stanza: Element, to: Option<Jid>) {
    let Some(user) = ctx.sessions.get(session).map(|s| s.jid.to_bare()) else {
        return;
    };
    let kind = stanza.get_attr("type").map(str::to_owned);
    if let Some(sub) = kind.as_deref().and_then(SubscriptionKind::parse) {
        let Some(contact) = to.map(|t| t.to_bare()) else {
            // A subscription stanza needs an addressee.
            reply(ctx, session, error_reply(&stanza, E::BadRequest));
            return;
        };
        if contact == user {
            return;
        }
        manager::submit(
            ctx,
            &user,
            Op::Outbound {
                session,
                contact,
                kind: sub,
                stanza,
            },
        );
        return;
    }
    match kind.as_deref() {
        None | Some("unavailable") => {}
        // Probes are the server's business (section 4.3); errors to a
        // presence we never route have no one to go to.
        Some("probe") | Some("error") => return,
        Some(_) => {
            reply(ctx, session, error_reply(&stanza, E::BadRequest));
            return;
        }
    }
    if too_large(ctx, &stanza) {
        // The last available presence is kept for as long as the session
        // lives and shown to every contact who comes online, and every
        // presence goes to many: it gets a budget of its own, far below
        // the stanza limit.
        reply(ctx, session, error_reply(&stanza, E::PolicyViolation));
        return;
    }
    match to {
        None => manager::submit(ctx, &user, Op::Broadcast { session, stanza }),
        Some(to) => directed(ctx, session, stanza, to),
    }
}

fn too_large(ctx: &Ctx, stanza: &Element) -> bool {
    stanza.to_stream_string().len() > ctx.config.max_presence_bytes
}

fn reply(ctx: &mut Ctx, session: SessionId, element: Element) {
    ctx.deliver(session, &element);
}

/// A broadcast presence (no `to`) from `session`, with the user's roster.
pub(crate) fn broadcast(ctx: &mut Ctx, session: SessionId, mut stanza: Element, roster: &Roster) {
    let Some(s) = ctx.sessions.get(session) else {
        return;
    };
    let full = s.jid.clone();
    let user = full.to_bare();
    let was_available = s.is_available();
    stanza.set_attr("from", full.as_str());
    stanza.remove_attr("to");
    if stanza.get_attr("type") == Some("unavailable") {
        if !was_available {
            return;
        }
        crate::modules::last_activity::unavailable(ctx, session, &stanza);
        // Owed to every observer, congested or not (and small).
        let recipients = observers(ctx, session, roster, true);
        send_each(ctx, &stanza, recipients, None);
        ctx.sessions
            .set_presence(session, None, Priority::default());
        return;
    }
    let priority = stanza
        .get_child("priority", ns::CLIENT)
        .and_then(|p| p.text_content().trim().parse::<i8>().ok())
        .map(Priority)
        .unwrap_or_default();
    ctx.sessions
        .set_presence(session, Some(stanza.clone()), priority);
    // XEP-0160: stored messages go to the first resource that becomes
    // available at a non-negative priority (one that could have received
    // them live).
    if priority >= Priority(0) {
        if let Some(s) = ctx.sessions.get_mut(session) {
            if !s.offline_delivered {
                s.offline_delivered = true;
                offline::deliver(ctx, session, &user);
            }
        }
    }
    // Section 4.2.2 and 4.4.2: to the user's available resources (this one
    // included) and to every contact subscribed to the user.
    let mut recipients = own_available(ctx, &user, None);
    recipients.extend(subscribers(ctx, roster, &full));
    send_each(ctx, &stanza, recipients, Some(session));
    if was_available {
        return;
    }
    // Initial presence: the new resource learns what its peers and
    // contacts already know, and sees requests that waited for it.
    let mut presences: Vec<Element> = ctx
        .sessions
        .available_of(&user)
        .filter(|o| o.id != session)
        .filter_map(|o| o.presence.clone())
        .collect();
    let me = Jid::from(full.clone());
    for contact in roster.presence_subscriptions() {
        // The publisher's roster decides who sees its presence: a
        // contact that withdrew the subscription shares nothing, whatever
        // this roster still says.
        let shared = ctx
            .rosters
            .get(contact)
            .is_none_or(|r| r.subscription(&user).has_from());
        if !shared {
            continue;
        }
        presences.extend(
            ctx.sessions
                .available_of(contact)
                .filter(|o| !blocked(ctx, roster, &me, &Jid::from(o.jid.clone())))
                .filter_map(|o| o.presence.clone()),
        );
    }
    for mut p in presences {
        p.set_attr("to", full.as_str());
        ctx.deliver(session, &p);
    }
    // Bounded in number and size (`RosterLimits`), each a write of its
    // own so that none rides past the output budget on another's back.
    // Not from those the user blocks, who wait with them unseen.
    let unblocked = roster
        .pending_in
        .iter()
        .filter(|(jid, _)| !blocking::matches(&roster.blocked, &Jid::from((*jid).clone())));
    for (_, request) in unblocked {
        ctx.deliver_separately(session, request);
    }
}

/// Available resources of `user`.
fn own_available(ctx: &Ctx, user: &BareJid, except: Option<SessionId>) -> BTreeSet<SessionId> {
    ctx.sessions
        .available_of(user)
        .filter(|s| Some(s.id) != except)
        .map(|s| s.id)
        .collect()
}

/// Available resources of the contacts subscribed to the presence of
/// `from`, but those blocked by or blocking it (XEP-0191). Only local
/// contacts can be reached until federation exists.
fn subscribers(ctx: &Ctx, roster: &Roster, from: &FullJid) -> BTreeSet<SessionId> {
    let from = Jid::from(from.clone());
    let mut out = BTreeSet::new();
    for contact in roster.presence_subscribers() {
        out.extend(
            ctx.sessions
                .available_of(contact)
                .filter(|s| !blocked(ctx, roster, &from, &Jid::from(s.jid.clone())))
                .map(|s| s.id),
        );
    }
    out
}

/// Whether `user` (whose `roster` is lent to presence while it runs)
/// and `other` block each other, either way.
fn blocked(ctx: &Ctx, roster: &Roster, user: &Jid, other: &Jid) -> bool {
    blocking::matches(&roster.blocked, other) || blocking::user_blocks(ctx, &other.to_bare(), user)
}

/// Everyone who may currently see `session` as available: own resources
/// (with or without the session itself), subscribers, and the targets of
/// its directed presence. A set, so that each gets exactly one unavailable.
fn observers(
    ctx: &Ctx,
    session: SessionId,
    roster: &Roster,
    include_self: bool,
) -> BTreeSet<SessionId> {
    let Some(s) = ctx.sessions.get(session) else {
        return BTreeSet::new();
    };
    let user = s.jid.to_bare();
    let mut out = BTreeSet::new();
    if s.is_available() {
        out = own_available(ctx, &user, (!include_self).then_some(session));
        out.extend(subscribers(ctx, roster, &s.jid));
    }
    for target in &s.directed {
        if ctx.sessions.get(*target).is_some() {
            out.insert(*target);
        }
    }
    if !include_self {
        // Directed presence may have been sent to oneself.
        out.remove(&session);
    }
    out
}

fn directed_targets(ctx: &Ctx, target: &str) -> Vec<SessionId> {
    match Jid::new(target).ok().map(Jid::try_into_full) {
        Some(Ok(full)) => ctx
            .sessions
            .by_full_jid(&full)
            .map(|s| s.id)
            .into_iter()
            .collect(),
        Some(Err(bare)) => ctx.sessions.available_of(&bare).map(|s| s.id).collect(),
        None => Vec::new(),
    }
}

/// Send `stanza` to each recipient; with `sender`, an update others may
/// miss: recipients far behind in reading (see `backpressure`) other than
/// the sender itself are skipped.
fn send_each(
    ctx: &mut Ctx,
    stanza: &Element,
    recipients: BTreeSet<SessionId>,
    sender: Option<SessionId>,
) {
    let text = stanza.to_stream_string();
    for id in recipients {
        let skip = sender.is_some_and(|s| s != id) && !ctx.accepts(id);
        if !skip {
            ctx.deliver_serialized(id, stanza, &text);
        }
    }
}

/// Directed presence (section 4.6): to one entity, remembered so that it
/// gets an unavailable when the resource goes.
fn directed(ctx: &mut Ctx, session: SessionId, stanza: Element, to: Jid) {
    let unavailable = stanza.get_attr("type") == Some("unavailable");
    // A recipient far behind in reading gets nothing more from others,
    // but for the retraction of a presence it was sent.
    let owed = |target: &SessionId| {
        unavailable
            && ctx
                .sessions
                .get(session)
                .is_some_and(|s| s.directed.contains(target))
    };
    let Some(me) = ctx.sessions.get(session).map(|s| Jid::from(s.jid.clone())) else {
        return;
    };
    let unblocked = |target: &SessionId| {
        ctx.sessions
            .get(*target)
            .is_some_and(|t| !blocking::between(ctx, &me, &Jid::from(t.jid.clone())))
    };
    let targets: Vec<_> = directed_targets(ctx, to.as_str())
        .into_iter()
        .filter(|target| ctx.accepts(*target) || owed(target))
        .filter(|target| owed(target) || unblocked(target))
        .collect();
    let text = stanza.to_stream_string();
    for target in &targets {
        ctx.deliver_serialized(*target, &stanza, &text);
    }
    // Tracked even for subscribers: a resource that is not broadcasting
    // (gone unavailable, "invisible") still owes them the retraction.
    if let Some(s) = ctx.sessions.get_mut(session) {
        for target in targets {
            if unavailable {
                s.directed.remove(&target);
            } else {
                s.directed.insert(target);
            }
        }
    }
}

/// The session is ending (closed, timed out, dropped or replaced): every
/// observer gets one unavailable, then the session is destroyed.
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    let Some(s) = ctx.sessions.get(session) else {
        return;
    };
    let full = s.jid.clone();
    let user = full.to_bare();
    let empty = Roster::default();
    let roster = ctx.rosters.get(&user).unwrap_or(&empty);
    let recipients = observers(ctx, session, roster, false);
    let unavailable = Element::new("presence", ns::CLIENT)
        .attr("type", "unavailable")
        .attr("from", full.as_str());
    send_each(ctx, &unavailable, recipients, None);
    ctx.sessions.destroy(session);
    manager::release_if_idle(ctx, &user);
}

/// `from` and `to` just became subscribed (`to` receives `from`'s
/// presence): send `to`'s available resources the presence of each of
/// `from`'s.
pub(crate) fn share_presence(ctx: &mut Ctx, from: &BareJid, to: &BareJid) {
    if blocking::between(ctx, &Jid::from(from.clone()), &Jid::from(to.clone())) {
        return;
    }
    let presences: Vec<Element> = ctx
        .sessions
        .available_of(from)
        .filter_map(|s| s.presence.clone())
        .collect();
    let recipients = own_available(ctx, to, None);
    for mut p in presences {
        p.set_attr("to", to.as_str());
        send_each(ctx, &p, recipients.clone(), None);
    }
}

/// `to` no longer receives `from`'s presence: send an unavailable from each
/// of `from`'s available resources to `to`'s.
pub(crate) fn share_unavailable(ctx: &mut Ctx, from: &BareJid, to: &BareJid) {
    let sources: Vec<String> = ctx
        .sessions
        .available_of(from)
        .map(|s| s.jid.to_string())
        .collect();
    let recipients = own_available(ctx, to, None);
    for source in sources {
        let p = Element::new("presence", ns::CLIENT)
            .attr("type", "unavailable")
            .attr("from", &source)
            .attr("to", to.as_str());
        send_each(ctx, &p, recipients.clone(), None);
    }
}
