//! Blocking Command (XEP-0191): a user's list of JIDs that may not reach
//! them, and that they do not reach.
//!
//! The blocklist is part of the user's roster data: it is loaded with
//! it, changed through the same per-user queue, and a change is answered
//! and pushed only once durable. While a JID is blocked:
//! - stanzas from it are not delivered: messages and iq requests get
//!   `<service-unavailable/>` (as if the user did not exist), presence
//!   is dropped, and nothing from it is stored offline;
//! - stanzas to it are not routed: messages and iq requests get
//!   `<not-acceptable/>` with XEP-0191's `<blocked/>`, presence is
//!   dropped;
//! - blocking it sends it the user's unavailable presence, and the user
//!   its unavailable presence; unblocking shares presence again where the
//!   subscriptions allow.

use super::{Addressee, Answer, IqHandler, Module, Request};
use crate::hub::Ctx;
use crate::ns;
use crate::roster::manager::{self, Effect, Op};
use crate::roster::{Roster, RosterChange};
use crate::session::SessionId;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::{BareJid, Jid};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub const NS: &str = "urn:xmpp:blocking";
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

pub(crate) const MODULE: Module = Module {
    name: "blocking",
    features: &[NS],
    iqs: &[
        IqHandler {
            to: Addressee::OwnAccount,
            name: "blocklist",
            ns: NS,
            get: Some(queue),
            set: None,
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "block",
            ns: NS,
            get: None,
            set: Some(queue),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "unblock",
            ns: NS,
            get: None,
            set: Some(queue),
        },
    ],
    ..Module::NONE
};

/// Sessions that asked for the blocklist, and so receive its pushes.
#[derive(Default)]
pub(crate) struct Blocking {
    interested: HashSet<SessionId>,
}

/// Blocklist requests run in the user's roster queue.
fn queue(ctx: &mut Ctx, request: &Request) -> Answer {
    manager::queue_iq(ctx, request, |session, iq| Op::Blocking { session, iq })
}

pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    ctx.blocking.interested.remove(&session);
}

/// The blocklist entries that would cover `jid` (XEP-0191 section 3.1,
/// after XEP-0016's matching): the JID itself, its bare JID, its domain
/// with its resource, and its domain.
pub fn candidates(jid: &Jid) -> Vec<String> {
    let domain = jid.domain().as_str();
    let mut out = vec![jid.to_string()];
    if jid.node().is_some() && jid.resource().is_some() {
        out.push(jid.to_bare().to_string());
    }
    if let Some(resource) = jid.resource().filter(|_| jid.node().is_some()) {
        out.push(format!("{domain}/{resource}"));
    }
    if jid.as_str() != domain {
        out.push(domain.to_owned());
    }
    out
}

/// Whether a blocklist covers `jid` (see [`candidates`]).
pub fn matches(blocked: &BTreeSet<String>, jid: &Jid) -> bool {
    !blocked.is_empty() && candidates(jid).iter().any(|c| blocked.contains(c))
}

/// Whether `user` (whose roster is held while online or busy) blocks
/// `other`.
pub(crate) fn user_blocks(ctx: &Ctx, user: &BareJid, other: &Jid) -> bool {
    ctx.rosters.any_blocklist()
        && ctx
            .rosters
            .get(user)
            .is_some_and(|r| matches(&r.blocked, other))
}

/// Whether either of two local entities blocks the other.
pub(crate) fn between(ctx: &Ctx, a: &Jid, b: &Jid) -> bool {
    user_blocks(ctx, &a.to_bare(), b) || user_blocks(ctx, &b.to_bare(), a)
}

/// Whether a message or iq from `sender` to `to` may not pass, either
/// way; if so its sender has been told (unless it was an error, or
/// presence, which are dropped).
pub(crate) fn refused(ctx: &mut Ctx, sender: SessionId, stanza: &Element, to: &Jid) -> bool {
    if !ctx.rosters.any_blocklist() {
        return false;
    }
    let Some(from) = ctx.sessions.get(sender).map(|s| Jid::from(s.jid.clone())) else {
        return true;
    };
    let answerable = stanza.name() != "presence"
        && !matches!(stanza.get_attr("type"), Some("error") | Some("result"));
    if user_blocks(ctx, &from.to_bare(), to) {
        if answerable {
            ctx.deliver(sender, &blocked_error(stanza));
        }
        return true;
    }
    if user_blocks(ctx, &to.to_bare(), &from) {
        if answerable {
            ctx.deliver(sender, &error_reply(stanza, E::ServiceUnavailable));
        }
        return true;
    }
    false
}

/// The error for a stanza the user sent to someone they block
/// (section 3.5): `<not-acceptable/>` and `<blocked/>`.
pub(crate) fn blocked_error(stanza: &Element) -> Element {
    let mut reply = Element::new(stanza.name(), ns::CLIENT).attr("type", "error");
    for (name, value) in [("id", "id"), ("to", "from"), ("from", "to")] {
        if let Some(v) = stanza.get_attr(value) {
            reply.set_attr(name, v);
        }
    }
    reply.child(
        Element::new("error", ns::CLIENT)
            .attr("type", "cancel")
            .child(Element::new(E::NotAcceptable.name(), ns::STANZAS))
            .child(Element::new("blocked", NS_ERRORS)),
    )
}

/// Decide a blocklist request against the roster as it is: the changes
/// to make durable and what to do once they are. `asker_live`: the
/// session that asked still exists (it may have gone while the request
/// waited in the queue).
pub(crate) fn plan(
    state: &mut Blocking,
    config: &crate::config::Config,
    roster: &Roster,
    user: &BareJid,
    (session, asker_live): (SessionId, bool),
    iq: &Element,
) -> (Vec<RosterChange>, Vec<Effect>) {
    let Some(payload) = iq.children().next() else {
        return (Vec::new(), Vec::new());
    };
    let reply = |e: Element| vec![Effect::Reply(session, e)];
    match payload.name() {
        "blocklist" => {
            if asker_live {
                state.interested.insert(session);
            }
            let mut list = Element::new("blocklist", NS);
            for jid in &roster.blocked {
                list.push_child(Element::new("item", NS).attr("jid", jid));
            }
            (Vec::new(), reply(iq_result(iq, Some(list))))
        }
        name @ ("block" | "unblock") => {
            let items = || payload.children().filter(|c| c.is("item", NS));
            if items().count() > config.roster.max_blocked {
                // More than could ever be kept: refused before any work.
                return (Vec::new(), reply(error_reply(iq, E::ResourceConstraint)));
            }
            // Each JID once, in its prepared form.
            let mut jids: BTreeMap<String, Jid> = BTreeMap::new();
            for item in items() {
                match item.get_attr("jid").map(Jid::new) {
                    Some(Ok(jid)) => {
                        jids.insert(jid.to_string(), jid);
                    }
                    _ => return (Vec::new(), reply(error_reply(iq, E::JidMalformed))),
                }
            }
            if name == "block" {
                block(config, roster, user, session, iq, jids)
            } else {
                unblock(roster, user, session, iq, jids)
            }
        }
        _ => (Vec::new(), reply(error_reply(iq, E::BadRequest))),
    }
}

/// Bytes a blocklist of these entries takes in a reply.
fn list_bytes<'a>(entries: impl Iterator<Item = &'a String>) -> usize {
    // `<item jid='…'/>` around each.
    entries.map(|j| j.len() + 16).sum()
}

fn block(
    config: &crate::config::Config,
    roster: &Roster,
    user: &BareJid,
    session: SessionId,
    iq: &Element,
    jids: BTreeMap<String, Jid>,
) -> (Vec<RosterChange>, Vec<Effect>) {
    if jids.is_empty() {
        // Section 3.3: a block with no items is a bad request.
        return (
            Vec::new(),
            vec![Effect::Reply(session, error_reply(iq, E::BadRequest))],
        );
    }
    let new: Vec<&Jid> = jids
        .iter()
        .filter(|(prepared, _)| !roster.blocked.contains(*prepared))
        .map(|(_, jid)| jid)
        .collect();
    // The list is sent whole to each client that asks: it must fit well
    // within an output budget, in entries and in bytes.
    let bytes = list_bytes(roster.blocked.iter())
        + new.iter().map(|j| j.as_str().len() + 16).sum::<usize>();
    if roster.blocked.len() + new.len() > config.roster.max_blocked
        || bytes > config.output_buffer / 8
    {
        let error = error_reply(iq, E::ResourceConstraint);
        return (Vec::new(), vec![Effect::Reply(session, error)]);
    }
    let mut effects = vec![Effect::Reply(session, iq_result(iq, None))];
    if new.is_empty() {
        return (Vec::new(), effects);
    }
    effects.push(Effect::BlocklistPush(push_of("block", &new)));
    // Each side stops seeing the other, where it could until now.
    let unavailable = |from, to| Effect::UnavailableFromTo { from, to };
    effects.extend(presence_flows(roster, user, &new, unavailable));
    let changes = new
        .into_iter()
        .map(|j| RosterChange::Block(j.to_string()))
        .collect();
    (changes, effects)
}

fn unblock(
    roster: &Roster,
    user: &BareJid,
    session: SessionId,
    iq: &Element,
    jids: BTreeMap<String, Jid>,
) -> (Vec<RosterChange>, Vec<Effect>) {
    // Section 3.4: no items unblocks everyone.
    let all = jids.is_empty();
    let freed: Vec<Jid> = if all {
        roster
            .blocked
            .iter()
            .filter_map(|j| Jid::new(j).ok())
            .collect()
    } else {
        jids.into_iter()
            .filter(|(prepared, _)| roster.blocked.contains(prepared))
            .map(|(_, jid)| jid)
            .collect()
    };
    let mut effects = vec![Effect::Reply(session, iq_result(iq, None))];
    // Nothing was blocked of what is asked: nothing changes.
    let nothing = if all {
        roster.blocked.is_empty()
    } else {
        freed.is_empty()
    };
    if nothing {
        return (Vec::new(), effects);
    }
    let changes = if all {
        vec![RosterChange::UnblockAll]
    } else {
        freed
            .iter()
            .map(|j| RosterChange::Unblock(j.to_string()))
            .collect()
    };
    let pushed: Vec<&Jid> = if all {
        Vec::new()
    } else {
        freed.iter().collect()
    };
    effects.push(Effect::BlocklistPush(push_of("unblock", &pushed)));
    // Presence flows again where subscriptions say it should.
    let freed: Vec<&Jid> = freed.iter().collect();
    let available = |from, to| Effect::PresenceFromTo { from, to };
    effects.extend(presence_flows(roster, user, &freed, available));
    (changes, effects)
}

/// One `effect(from, to)` for each direction presence flows between the
/// user and each account the entries name, as the user's subscriptions
/// say: to a contact with `from`, from a contact with `to`. Only
/// whole-account entries (bare JIDs) count, each once: a full JID or a
/// domain changes no contact's view as a whole.
fn presence_flows(
    roster: &Roster,
    user: &BareJid,
    jids: &[&Jid],
    effect: impl Fn(BareJid, BareJid) -> Effect,
) -> Vec<Effect> {
    let accounts: BTreeSet<BareJid> = jids
        .iter()
        .filter(|j| j.node().is_some() && j.resource().is_none())
        .map(|j| j.to_bare())
        .collect();
    let mut effects = Vec::new();
    for contact in accounts {
        let subscription = roster.subscription(&contact);
        if subscription.has_from() {
            effects.push(effect(user.clone(), contact.clone()));
        }
        if subscription.has_to() {
            effects.push(effect(contact, user.clone()));
        }
    }
    effects
}

/// `<block/>` or `<unblock/>` with these items, as pushed.
fn push_of(name: &str, jids: &[&Jid]) -> Element {
    let mut payload = Element::new(name, NS);
    for jid in jids {
        payload.push_child(Element::new("item", NS).attr("jid", jid.as_str()));
    }
    payload
}

/// Push a change to every resource of `user` that asked for the
/// blocklist (section 3.3).
pub(crate) fn push(ctx: &mut Ctx, user: &BareJid, payload: Element) {
    let targets: Vec<(SessionId, String)> = ctx
        .sessions
        .resources_of(user)
        .filter(|s| ctx.blocking.interested.contains(&s.id))
        .map(|s| (s.id, s.jid.to_string()))
        .collect();
    for (session, jid) in targets {
        let id = ctx.rosters.next_push_id();
        let push = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", &id)
            .attr("to", &jid)
            .child(payload.clone());
        ctx.deliver(session, &push);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn a_bare_jid_blocks_every_resource_of_it() {
        let blocked = list(&["romeo@localhost"]);
        assert!(matches(&blocked, &jid("romeo@localhost/orchard")));
        assert!(matches(&blocked, &jid("romeo@localhost")));
        assert!(!matches(&blocked, &jid("juliet@localhost/balcony")));
    }

    #[test]
    fn a_full_jid_blocks_that_resource_only() {
        let blocked = list(&["romeo@localhost/orchard"]);
        assert!(matches(&blocked, &jid("romeo@localhost/orchard")));
        assert!(!matches(&blocked, &jid("romeo@localhost/garden")));
        assert!(!matches(&blocked, &jid("romeo@localhost")));
    }

    #[test]
    fn a_domain_blocks_everyone_there() {
        let blocked = list(&["spam.example"]);
        assert!(matches(&blocked, &jid("bot@spam.example/x")));
        assert!(matches(&blocked, &jid("spam.example")));
        assert!(!matches(&blocked, &jid("romeo@localhost")));
    }
}
