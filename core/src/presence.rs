//! Presence (RFC 6121 section 4): broadcast to subscribers and own
//! resources, the initial-presence exchange, directed presence, and the
//! unavailable every observer is owed when a resource goes.
//!
//! All contacts here are local (no federation yet), so a probe is answered
//! at once by the hub's accounts view (`Ctx::probe`) instead of travelling
//! as a stanza; subscribers and directed targets are reached by address
//! (`Ctx::reach`, `Ctx::available`).

use crate::hub::{Ctx, Recipients, Urgency};
use crate::modules::blocking;
use crate::ns;
use crate::offline;
use crate::roster::manager::{self, Op};
use crate::roster::{Roster, SubscriptionKind};
use crate::router::{Destination, Envelope};
use crate::session::{Priority, SessionId};
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};
use std::collections::BTreeSet;

/// A presence stanza from a bound session.
pub(crate) fn handle(ctx: &mut Ctx, envelope: Envelope) {
    let Envelope {
        sender: session,
        from,
        to,
        destination,
        stanza,
    } = envelope;
    let user = from.to_bare();
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
        Some(_) => directed(ctx, session, stanza, &destination),
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
        ctx.deliver_all(&stanza, &recipients, Urgency::Owed);
        ctx.sessions
            .set_presence(session, None, Priority::default());
        return;
    }
    let old_caps = s
        .presence
        .as_ref()
        .and_then(crate::modules::caps::advertised)
        .map(|(ver, _)| ver.to_owned());
    crate::modules::vcard_update::stamp(ctx, &mut stanza, roster.photo.as_deref());
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
    let mut recipients = ctx.available(&user);
    recipients.extend(subscribers(ctx, roster, &full));
    ctx.deliver_all(&stanza, &recipients, Urgency::Update { from: session });
    // XEP-0163: the nodes it follows may have changed with its
    // capabilities.
    let caps = crate::modules::caps::advertised(&stanza).map(|(ver, _)| ver);
    if !was_available || caps != old_caps.as_deref() {
        crate::modules::pep::available(ctx, session, roster);
    }
    if was_available {
        return;
    }
    // Initial presence: the new resource learns what its peers and
    // contacts already know, and sees requests that waited for it.
    let mut presences: Vec<Element> = ctx
        .probe(&user)
        .into_iter()
        .filter(|(jid, _)| *jid != full)
        .map(|(_, p)| p)
        .collect();
    let me = Jid::from(full.clone());
    for contact in sources(ctx, &user, roster) {
        presences.extend(
            ctx.probe(contact)
                .into_iter()
                .filter(|(jid, _)| !blocked(ctx, roster, &me, &Jid::from(jid.clone())))
                .map(|(_, p)| p),
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

/// The available resources of the contacts subscribed to the presence
/// of `from`, but those blocked by or blocking it (XEP-0191). Only local
/// contacts can be reached until federation exists.
fn subscribers(ctx: &Ctx, roster: &Roster, from: &FullJid) -> Recipients {
    let mut out = Recipients::default();
    for contact in roster.presence_subscribers() {
        out.extend(ctx.available(contact));
    }
    ctx.unblocked(out, &Jid::from(from.clone()), &roster.blocked)
}

/// The contacts whose presence `user` (whose `roster` this is)
/// receives. The publisher's roster decides: a contact that withdrew the
/// subscription shares nothing, whatever this roster still says.
pub(crate) fn sources<'a>(
    ctx: &'a Ctx,
    user: &'a BareJid,
    roster: &'a Roster,
) -> impl Iterator<Item = &'a BareJid> + 'a {
    roster.presence_subscriptions().filter(move |contact| {
        ctx.rosters
            .get(contact)
            .is_none_or(|r| r.subscription(user).has_from())
    })
}

/// Whether `user` (whose `roster` is lent to presence while it runs)
/// and `other` block each other, either way.
pub(crate) fn blocked(ctx: &Ctx, roster: &Roster, user: &Jid, other: &Jid) -> bool {
    blocking::matches(&roster.blocked, other) || blocking::user_blocks(ctx, &other.to_bare(), user)
}

/// Everyone who may currently see `session` as available: own resources
/// (with or without the session itself), subscribers, and the targets of
/// its directed presence. A set, so that each gets exactly one unavailable.
fn observers(ctx: &Ctx, session: SessionId, roster: &Roster, include_self: bool) -> Recipients {
    let Some(s) = ctx.sessions.get(session) else {
        return Recipients::default();
    };
    let mut out = Recipients::default();
    if s.is_available() {
        out = ctx.available(&s.jid.to_bare());
        out.extend(subscribers(ctx, roster, &s.jid));
    }
    out.extend(s.directed.iter().copied().collect());
    if !include_self {
        // Directed presence may have been sent to oneself.
        out.remove(session);
    }
    out
}

/// Directed presence (section 4.6): to one entity, remembered so that it
/// gets an unavailable when the resource goes.
fn directed(ctx: &mut Ctx, session: SessionId, stanza: Element, to: &Destination) {
    let Some(s) = ctx.sessions.get(session) else {
        return;
    };
    let me = Jid::from(s.jid.clone());
    let unavailable = stanza.get_attr("type") == Some("unavailable");
    let targets = ctx.reach(to);
    // The retraction of a presence a recipient was sent is owed to it;
    // anything else skips a recipient far behind in reading, or blocked
    // either way.
    let owed = if unavailable {
        let told: Recipients = s.directed.iter().copied().collect();
        targets.intersection(&told)
    } else {
        Recipients::default()
    };
    let empty = BTreeSet::new();
    let blocks = ctx
        .rosters
        .get(&me.to_bare())
        .map_or(&empty, |r| &r.blocked);
    let fresh = ctx.unblocked(targets.difference(&owed), &me, blocks);
    let mut reached: Recipients = fresh.iter().filter(|t| ctx.accepts(*t)).collect();
    reached.extend(owed);
    ctx.deliver_all(&stanza, &reached, Urgency::Owed);
    // Tracked even for subscribers: a resource that is not broadcasting
    // (gone unavailable, "invisible") still owes them the retraction.
    if let Some(s) = ctx.sessions.get_mut(session) {
        for target in reached.iter() {
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
    ctx.deliver_all(&unavailable, &recipients, Urgency::Owed);
    ctx.sessions.destroy(session);
    manager::release_if_idle(ctx, &user);
}

/// `from` and `to` just became subscribed (`to` receives `from`'s
/// presence): send `to`'s available resources the presence of each of
/// `from`'s, as if `to` had probed `from`.
pub(crate) fn share_presence(ctx: &mut Ctx, from: &BareJid, to: &BareJid) {
    if blocking::between(ctx, &Jid::from(from.clone()), &Jid::from(to.clone())) {
        return;
    }
    let recipients = ctx.available(to);
    for (_, mut p) in ctx.probe(from) {
        p.set_attr("to", to.as_str());
        ctx.deliver_all(&p, &recipients, Urgency::Owed);
    }
    crate::modules::pep::presence_shared(ctx, from, to);
}

/// `to` no longer receives `from`'s presence: send an unavailable from each
/// of `from`'s available resources to `to`'s.
pub(crate) fn share_unavailable(ctx: &mut Ctx, from: &BareJid, to: &BareJid) {
    let recipients = ctx.available(to);
    for (source, _) in ctx.probe(from) {
        let p = Element::new("presence", ns::CLIENT)
            .attr("type", "unavailable")
            .attr("from", source.as_str())
            .attr("to", to.as_str());
        ctx.deliver_all(&p, &recipients, Urgency::Owed);
    }
}
