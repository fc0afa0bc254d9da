//! Per-user roster state: loading, ordering and durability.
//!
//! Each user with a loaded roster has a slot with a queue of operations.
//! Operations on one user's roster run one at a time, in arrival order; an
//! operation that changes the roster writes the change and holds the queue
//! until storage says it is durable, and only then are its results sent
//! (iq result, roster pushes, stanzas to contacts). So nothing a client is
//! told can be lost by a crash.
//!
//! Operations on two users talk only through [`Op::Inbound`] messages
//! queued on the other user's slot, never by touching its roster: the shape
//! a cluster needs, where the other user may live on another node.

use super::iq::{self, RosterRequest};
use super::item::{Roster, RosterChange};
use super::subscription::{self, SubscriptionKind};
use crate::hub::Ctx;
use crate::modules::{self, Addressee};
use crate::modules::{blocking, mam};
use crate::ns;
use crate::presence;
use crate::session::SessionId;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::storage::{RequestId, StorageAnswer, StorageRequest};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use jid::{BareJid, Jid};
use std::collections::{HashMap, VecDeque};

/// An operation on one user's roster.
#[derive(Debug)]
pub(crate) enum Op {
    /// A roster get or set from one of the user's sessions.
    RosterIq { session: SessionId, iq: Element },
    /// A subscription stanza the user sent to `contact`.
    Outbound {
        session: SessionId,
        contact: BareJid,
        kind: SubscriptionKind,
        stanza: Element,
    },
    /// A subscription stanza `sender` sent to the user.
    Inbound {
        sender: BareJid,
        kind: SubscriptionKind,
        stanza: Element,
    },
    /// A presence broadcast (available or unavailable) by a session.
    Broadcast { session: SessionId, stanza: Element },
    /// An iq to the user's bare JID from someone else, answered on the
    /// account's behalf once the account is known to exist.
    OnBehalf { requester: SessionId, iq: Element },
    /// A blocklist get or set (XEP-0191) from one of the user's sessions.
    Blocking { session: SessionId, iq: Element },
    /// An archiving preferences get or set (XEP-0313) from one of the
    /// user's sessions.
    ArchivePrefs { session: SessionId, iq: Element },
    /// The account's avatar changed: its hash for presence (XEP-0153).
    Photo { photo: Box<str> },
    /// Deliver `stanza` (an item of one of the user's personal eventing
    /// nodes, configured as `node`) to `session` if the user's roster
    /// lets its account see it (XEP-0060 section 4.5) and does not block
    /// it.
    DeliverIfAllowed {
        session: SessionId,
        node: Box<crate::modules::pep::Config>,
        stanza: Element,
    },
}

/// What an operation does once its roster change is durable.
#[derive(Debug)]
pub(crate) enum Effect {
    /// An iq answer to one session.
    Reply(SessionId, Element),
    /// A roster push of this item to every interested resource.
    Push(Element, u64),
    /// A stanza to every available resource of the user.
    DeliverToAvailable(Element),
    /// An operation for another user.
    Enqueue(BareJid, Op),
    /// `from`'s available resources' presence to `to`'s available ones.
    PresenceFromTo { from: BareJid, to: BareJid },
    /// Unavailable from `from`'s available resources to `to`'s.
    UnavailableFromTo { from: BareJid, to: BareJid },
    /// A blocklist change for the resources that asked for the list.
    BlocklistPush(Element),
}

enum State {
    Loading(RequestId),
    Loaded(Roster),
}

struct Slot {
    state: State,
    queue: VecDeque<Op>,
    /// Boxed: rare, and large beside the rest of a slot, which every
    /// online user has.
    writing: Option<Box<Write>>,
}

/// A write in flight and what to do when it is durable; if it fails, the
/// session whose iq caused it gets an error instead.
struct Write {
    effects: Vec<Effect>,
    origin: Option<(SessionId, Element)>,
}

#[derive(Default)]
pub(crate) struct Rosters {
    slots: HashMap<BareJid, Slot>,
    requests: HashMap<RequestId, BareJid>,
    pushes: u64,
    /// Held rosters whose blocklist is not empty: while none is, no
    /// stanza needs a blocklist look-up.
    blocklists: usize,
}

/// 1 if the roster has a blocklist.
fn blocks_any(roster: &Roster) -> usize {
    usize::from(!roster.blocked.is_empty())
}

impl Rosters {
    /// The user's roster, if loaded.
    pub fn get(&self, user: &BareJid) -> Option<&Roster> {
        match &self.slots.get(user)?.state {
            State::Loaded(r) => Some(r),
            State::Loading(_) => None,
        }
    }

    pub fn owns(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }

    /// Whether the user's roster is loaded or being loaded.
    pub fn is_held(&self, user: &BareJid) -> bool {
        self.slots.contains_key(user)
    }

    pub fn loaded_count(&self) -> usize {
        self.slots.len()
    }

    /// The count of held blocklists is right.
    pub fn check_invariants(&self) -> Result<(), String> {
        let counted: usize = self
            .slots
            .values()
            .map(|s| match &s.state {
                State::Loaded(r) => blocks_any(r),
                State::Loading(_) => 0,
            })
            .sum();
        if counted != self.blocklists {
            return Err(format!(
                "{counted} blocklists held, {} counted",
                self.blocklists
            ));
        }
        Ok(())
    }

    /// Whether any held roster blocks anyone.
    pub fn any_blocklist(&self) -> bool {
        self.blocklists > 0
    }

    /// Forget a user's slot.
    fn remove(&mut self, user: &BareJid) -> Option<Slot> {
        let slot = self.slots.remove(user)?;
        if let State::Loaded(roster) = &slot.state {
            self.blocklists -= blocks_any(roster);
        }
        Some(slot)
    }

    /// A fresh id for a push (roster or blocklist).
    pub fn next_push_id(&mut self) -> String {
        self.pushes += 1;
        format!("push{}", self.pushes)
    }
}

/// Start loading the user's roster if it is not held yet (at bind time).
pub(crate) fn ensure_loaded(ctx: &mut Ctx, user: &BareJid) {
    if ctx.rosters.slots.contains_key(user) {
        return;
    }
    let request = ctx
        .out
        .storage(StorageRequest::LoadRoster { user: user.clone() });
    ctx.rosters.requests.insert(request, user.clone());
    ctx.rosters.slots.insert(
        user.clone(),
        Slot {
            state: State::Loading(request),
            queue: VecDeque::new(),
            writing: None,
        },
    );
}

/// An iq from one of an account's sessions that runs in the account's
/// roster queue (it reads or changes roster data): answered later, by
/// the operation `op` makes of it.
pub(crate) fn queue_iq(
    ctx: &mut Ctx,
    request: &modules::Request,
    op: fn(SessionId, Element) -> Op,
) -> modules::Answer {
    if let Some(user) = ctx.account_of(request.session) {
        submit(ctx, &user, op(request.session, request.iq.clone()));
    }
    modules::Answer::Later
}

/// Queue an operation on `user`'s roster and run what can run.
pub(crate) fn submit(ctx: &mut Ctx, user: &BareJid, op: Op) {
    ensure_loaded(ctx, user);
    if let Some(slot) = ctx.rosters.slots.get_mut(user) {
        // Each operation waits for the one before it to be durable; a
        // client (or a crowd of senders) outpacing storage is told to
        // wait rather than queue without bound. Presence broadcasts are
        // never refused: every unavailable presence owed must go out.
        // An avatar's hash waits once: a newer one replaces it, so it is
        // never refused and never lost.
        if let Op::Photo { photo } = op {
            let queued = slot.queue.iter_mut().find_map(|queued| match queued {
                Op::Photo { photo } => Some(photo),
                _ => None,
            });
            match queued {
                Some(queued) => *queued = photo,
                None => slot.queue.push_back(Op::Photo { photo }),
            }
            return drive(ctx, user);
        }
        let full = slot.queue.len() >= ctx.config.roster.max_queued_operations;
        if full && !matches!(op, Op::Broadcast { .. }) {
            refuse(ctx, op);
            return;
        }
        slot.queue.push_back(op);
    }
    drive(ctx, user);
}

/// An operation refused because the user's queue is full: requests get
/// `<resource-constraint/>` (type wait); a contact's subscription stanza
/// is dropped, as a server may.
fn refuse(ctx: &mut Ctx, op: Op) {
    match op {
        Op::RosterIq { session, iq } => {
            reply(ctx, session, error_reply(&iq, E::ResourceConstraint))
        }
        Op::OnBehalf { requester, iq } => {
            reply(ctx, requester, error_reply(&iq, E::ResourceConstraint))
        }
        Op::Outbound {
            session, stanza, ..
        } => reply(ctx, session, error_reply(&stanza, E::ResourceConstraint)),
        Op::Blocking { session, iq } | Op::ArchivePrefs { session, iq } => {
            reply(ctx, session, error_reply(&iq, E::ResourceConstraint))
        }
        Op::Inbound { .. }
        | Op::Broadcast { .. }
        | Op::DeliverIfAllowed { .. }
        | Op::Photo { .. } => {}
    }
}

/// Storage answered a roster request.
pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    let Some(user) = ctx.rosters.requests.remove(&request) else {
        return;
    };
    let Some(slot) = ctx.rosters.slots.get_mut(&user) else {
        return;
    };
    match (&slot.state, answer) {
        (State::Loading(r), StorageAnswer::Roster(Some(roster))) if *r == request => {
            ctx.rosters.blocklists += blocks_any(&roster);
            slot.state = State::Loaded(roster);
        }
        (State::Loading(r), _) if *r == request => {
            // No such account (stanzas to it are dropped, as RFC 6121
            // section 8.5.1 allows for subscriptions and presence), or
            // storage failed. A user online without a roster cannot be
            // served: their sessions end.
            let slot = ctx.rosters.remove(&user);
            fail_queue(ctx, slot.map(|s| s.queue).unwrap_or_default());
            let online: Vec<_> = ctx.sessions.resources_of(&user).map(|s| s.id).collect();
            for session in online {
                let error = StreamError::with_text(
                    StreamErrorCondition::InternalServerError,
                    "roster unavailable",
                );
                ctx.evict(session, error);
            }
            return;
        }
        (State::Loaded(_), StorageAnswer::Written) => {
            if let Some(write) = slot.writing.take() {
                run(ctx, &user, write.effects);
            }
        }
        (State::Loaded(_), _) => {
            // The write failed: memory is ahead of storage. Tell the asker,
            // drop the effects, and reload the truth.
            let origin = slot.writing.take().and_then(|w| w.origin);
            if let Some((session, iq)) = origin {
                reply(ctx, session, error_reply(&iq, E::InternalServerError));
            }
            let queue = ctx
                .rosters
                .remove(&user)
                .map(|s| s.queue)
                .unwrap_or_default();
            ensure_loaded(ctx, &user);
            if let Some(slot) = ctx.rosters.slots.get_mut(&user) {
                slot.queue = queue;
            }
            return;
        }
        _ => {}
    }
    drive(ctx, &user);
}

/// Answer the sessions whose operations cannot run.
fn fail_queue(ctx: &mut Ctx, queue: VecDeque<Op>) {
    for op in queue {
        match op {
            Op::RosterIq { session, iq } => {
                reply(ctx, session, error_reply(&iq, E::InternalServerError))
            }
            // No such account, or it could not be read: the same answer,
            // so that accounts cannot be enumerated.
            Op::OnBehalf { requester, iq } => {
                reply(ctx, requester, error_reply(&iq, E::ServiceUnavailable))
            }
            Op::Blocking { session, iq } | Op::ArchivePrefs { session, iq } => {
                reply(ctx, session, error_reply(&iq, E::InternalServerError))
            }
            _ => {}
        }
    }
}

/// Forget the roster of a user who has no sessions and nothing pending.
pub(crate) fn release_if_idle(ctx: &mut Ctx, user: &BareJid) {
    let idle = ctx.rosters.slots.get(user).is_some_and(|s| {
        s.queue.is_empty() && s.writing.is_none() && matches!(s.state, State::Loaded(_))
    });
    if idle && ctx.sessions.resources_of(user).next().is_none() {
        ctx.rosters.remove(user);
    }
}

fn drive(ctx: &mut Ctx, user: &BareJid) {
    loop {
        let Some(slot) = ctx.rosters.slots.get_mut(user) else {
            return;
        };
        if slot.writing.is_some() || matches!(slot.state, State::Loading(_)) {
            return;
        }
        let Some(op) = slot.queue.pop_front() else {
            release_if_idle(ctx, user);
            return;
        };
        if let Op::Broadcast { session, stanza } = op {
            // Presence reads the roster and changes nothing in it: lend it
            // out instead of copying it (rosters can be large).
            let State::Loaded(roster) =
                std::mem::replace(&mut slot.state, State::Loaded(Roster::default()))
            else {
                return;
            };
            presence::broadcast(ctx, session, stanza, &roster);
            if let Some(slot) = ctx.rosters.slots.get_mut(user) {
                slot.state = State::Loaded(roster);
            }
            continue;
        }
        let plan = plan(ctx, user, op);
        if plan.changes.is_empty() {
            run(ctx, user, plan.effects);
            continue;
        }
        let Some(slot) = ctx.rosters.slots.get_mut(user) else {
            return;
        };
        let State::Loaded(roster) = &mut slot.state else {
            return;
        };
        // Account data kept with the roster is no roster change: a
        // client's cached roster (XEP-0237) stays good.
        let account_data =
            |c: &RosterChange| matches!(c, RosterChange::ArchivePrefs(_) | RosterChange::Photo(_));
        let version = match plan.changes.iter().all(account_data) {
            true => roster.version,
            false => roster.version + 1,
        };
        let before = blocks_any(roster);
        roster.apply(&plan.changes, version);
        ctx.rosters.blocklists = ctx.rosters.blocklists + blocks_any(roster) - before;
        let request = ctx.out.storage(StorageRequest::WriteRoster {
            user: user.clone(),
            changes: plan.changes,
            version,
        });
        slot.writing = Some(Box::new(Write {
            effects: plan.effects,
            origin: plan.origin,
        }));
        ctx.rosters.requests.insert(request, user.clone());
        return;
    }
}

#[derive(Default)]
struct Plan {
    changes: Vec<RosterChange>,
    effects: Vec<Effect>,
    origin: Option<(SessionId, Element)>,
}

/// Decide what an operation changes and sends, from the roster as it is.
fn plan(ctx: &mut Ctx, user: &BareJid, op: Op) -> Plan {
    let Some(roster) = ctx.rosters.get(user) else {
        return Plan::default();
    };
    let next_version = roster.version + 1;
    let mut plan = Plan::default();
    match op {
        Op::RosterIq { session, iq } => {
            let Some(query) = iq.get_child("query", super::NS_ROSTER).cloned() else {
                return plan;
            };
            match iq::parse(&iq, &query, user, &ctx.config.roster) {
                Err(condition) => plan
                    .effects
                    .push(Effect::Reply(session, error_reply(&iq, condition))),
                Ok(RosterRequest::Get { ver }) => {
                    ctx.sessions.set_interested(session);
                    // XEP-0237: an up-to-date cache gets an empty result.
                    let payload = (ver.as_deref() != Some(roster.version.to_string().as_str()))
                        .then(|| roster.to_query());
                    plan.effects
                        .push(Effect::Reply(session, iq_result(&iq, payload)));
                }
                Ok(RosterRequest::Set { jid, name, groups }) => {
                    if !roster.items.contains_key(&jid)
                        && roster.items.len() >= ctx.config.roster.max_items
                    {
                        plan.effects.push(Effect::Reply(
                            session,
                            error_reply(&iq, E::ResourceConstraint),
                        ));
                        return plan;
                    }
                    let item = iq::updated_item(roster, &jid, name, groups);
                    plan.effects
                        .push(Effect::Reply(session, iq_result(&iq, None)));
                    plan.effects
                        .push(Effect::Push(item.to_element(), next_version));
                    plan.changes.push(RosterChange::Upsert(item));
                    plan.origin = Some((session, iq));
                }
                Ok(RosterRequest::Remove { jid }) => {
                    let item = roster.items.get(&jid).cloned();
                    let pending_in = roster.pending_in.contains_key(&jid);
                    let Some(item) = item else {
                        plan.effects
                            .push(Effect::Reply(session, error_reply(&iq, E::ItemNotFound)));
                        return plan;
                    };
                    plan.changes.push(RosterChange::Remove(jid.clone()));
                    if pending_in {
                        plan.changes
                            .push(RosterChange::PendingIn(jid.clone(), None));
                    }
                    plan.effects
                        .push(Effect::Reply(session, iq_result(&iq, None)));
                    plan.effects
                        .push(Effect::Push(iq::removed_item(&jid), next_version));
                    // RFC 6121 section 2.5.2: removing a contact cancels both
                    // directions of subscription.
                    if item.subscription.has_to() || item.ask {
                        plan.effects
                            .push(inbound_for(user, &jid, SubscriptionKind::Unsubscribe));
                    }
                    if item.subscription.has_from() || pending_in {
                        plan.effects
                            .push(inbound_for(user, &jid, SubscriptionKind::Unsubscribed));
                    }
                    plan.origin = Some((session, iq));
                }
            }
        }
        Op::Blocking { session, iq } => {
            let live = ctx.sessions.get(session).is_some();
            let (changes, effects) =
                blocking::plan(ctx.blocking, ctx.config, roster, user, (session, live), &iq);
            plan.changes = changes;
            plan.effects = effects;
            if !plan.changes.is_empty() {
                plan.origin = Some((session, iq));
            }
        }
        Op::Photo { photo } => {
            if roster.photo.as_deref() != Some(&*photo) {
                plan.changes.push(RosterChange::Photo(photo));
            }
        }
        Op::ArchivePrefs { session, iq } => {
            let (changes, effects) = mam::prefs::plan(ctx.config, roster, session, &iq);
            plan.changes = changes;
            plan.effects = effects;
            if !plan.changes.is_empty() {
                plan.origin = Some((session, iq));
            }
        }
        Op::Outbound {
            session,
            contact,
            kind,
            stanza,
        } => {
            let blocked = blocking::matches(&roster.blocked, &Jid::from(contact.clone()));
            if blocked && !kind.withdraws() {
                // Presence to a blocked contact is not routed.
                return plan;
            }
            let full = roster.items.len() >= ctx.config.roster.max_items;
            if full
                && !roster.items.contains_key(&contact)
                && kind != SubscriptionKind::Unsubscribed
            {
                // A subscription adds a roster item: the same limit applies.
                plan.effects.push(Effect::Reply(
                    session,
                    error_reply(&stanza, E::ResourceConstraint),
                ));
                return plan;
            }
            let out = subscription::outbound(roster, &contact, kind);
            push_upserts(&out.changes, next_version, &mut plan.effects);
            // A withdrawal to a blocked contact still changes the user's
            // roster, but is not routed to the contact.
            if out.forward && !blocked {
                plan.effects.push(Effect::Enqueue(
                    contact.clone(),
                    Op::Inbound {
                        sender: user.clone(),
                        kind,
                        stanza: stamped(&stanza, user, &contact),
                    },
                ));
            }
            plan.changes = out.changes;
        }
        Op::Inbound {
            sender,
            kind,
            stanza,
        } => {
            let blocked = blocking::matches(&roster.blocked, &Jid::from(sender.clone()));
            if blocked && !kind.withdraws() {
                // Presence from a blocked contact is dropped; a withdrawal
                // still takes effect, unseen.
                return plan;
            }
            let limits = &ctx.config.roster;
            let new_request =
                kind == SubscriptionKind::Subscribe && !roster.pending_in.contains_key(&sender);
            if new_request && roster.pending_in.len() >= limits.max_pending_requests {
                // Requests are kept until answered and shown at every
                // login: a stranger may not pile them up. Dropped, as a
                // server may (RFC 6121 section 3.1.3).
                return plan;
            }
            let kept = kept_request(&stanza, limits.max_request_bytes);
            let out = subscription::inbound(roster, &sender, kind, &kept);
            push_upserts(&out.changes, next_version, &mut plan.effects);
            if out.deliver && !blocked {
                plan.effects.push(Effect::DeliverToAvailable(stanza));
            }
            if let Some(reply) = out.auto_reply {
                plan.effects.push(inbound_for(user, &sender, reply));
            }
            if out.send_unavailable {
                plan.effects.push(Effect::UnavailableFromTo {
                    from: user.clone(),
                    to: sender.clone(),
                });
            }
            if out.probe_sender {
                plan.effects.push(Effect::PresenceFromTo {
                    from: sender.clone(),
                    to: user.clone(),
                });
            }
            if out.sender_unavailable {
                plan.effects.push(Effect::UnavailableFromTo {
                    from: sender.clone(),
                    to: user.clone(),
                });
            }
            plan.changes = out.changes;
        }
        // Handled in `drive`, which lends the roster out.
        Op::Broadcast { .. } => {}
        Op::DeliverIfAllowed {
            session,
            node,
            stanza,
        } => {
            let allowed = ctx
                .account_of(session)
                .is_some_and(|account| crate::modules::pep::may_see(roster, &account, &node));
            if allowed {
                plan.effects.push(Effect::Reply(session, stanza));
            }
        }
        Op::OnBehalf { requester, iq } => {
            // Only contacts the account shares its presence with learn
            // anything of it (as in Prosody): to anyone else an existing
            // account answers as a missing one does, so that accounts
            // cannot be listed.
            let requester_jid = ctx.sessions.get(requester).map(|s| s.jid.clone());
            let blocked = requester_jid
                .as_ref()
                .is_none_or(|j| blocking::matches(&roster.blocked, &Jid::from(j.clone())));
            let subscribed = requester_jid
                .as_ref()
                .is_some_and(|j| roster.subscription(&j.to_bare()).has_from());
            // What is public (a vCard) anyone may ask, but whom the
            // account blocks (XEP-0191).
            let to = if subscribed {
                Addressee::Account
            } else {
                Addressee::Public
            };
            let answer = match iq.children().next() {
                Some(payload) if !blocked => modules::answer(ctx, to, requester, &iq, payload),
                _ => Some(error_reply(&iq, E::ServiceUnavailable)),
            };
            if let Some(answer) = answer {
                plan.effects.push(Effect::Reply(requester, answer));
            }
        }
    }
    plan
}

/// A subscription request as it is kept to be shown again: whole if
/// small, else without its payload (a status or nick past
/// `max_request_bytes` is not worth a stranger's storage).
fn kept_request(stanza: &Element, max_request_bytes: usize) -> String {
    let whole = stanza.to_stream_string();
    if whole.len() <= max_request_bytes {
        return whole;
    }
    let mut bare = Element::new("presence", crate::ns::CLIENT);
    for (name, value) in stanza.attrs() {
        bare.set_attr(name, value);
    }
    bare.to_stream_string()
}

fn push_upserts(changes: &[RosterChange], version: u64, effects: &mut Vec<Effect>) {
    for change in changes {
        if let RosterChange::Upsert(item) = change {
            effects.push(Effect::Push(item.to_element(), version));
        }
    }
}

/// A subscription stanza the server sends on `user`'s behalf to `contact`.
fn inbound_for(user: &BareJid, contact: &BareJid, kind: SubscriptionKind) -> Effect {
    let stanza = Element::new("presence", ns::CLIENT)
        .attr("type", kind.name())
        .attr("to", contact.as_str())
        .attr("from", user.as_str());
    Effect::Enqueue(
        contact.clone(),
        Op::Inbound {
            sender: user.clone(),
            kind,
            stanza,
        },
    )
}

/// Subscription stanzas travel from and to bare JIDs (RFC 6121 3.1.2).
fn stamped(stanza: &Element, from: &BareJid, to: &BareJid) -> Element {
    let mut s = stanza.clone();
    s.set_attr("from", from.as_str());
    s.set_attr("to", to.as_str());
    s
}

fn reply(ctx: &mut Ctx, session: SessionId, element: Element) {
    ctx.deliver(session, &element);
}

fn run(ctx: &mut Ctx, user: &BareJid, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Reply(session, element) => reply(ctx, session, element),
            Effect::Push(item, version) => {
                let targets: Vec<_> = ctx
                    .sessions
                    .interested_of(user)
                    .map(|s| (s.id, s.jid.to_string()))
                    .collect();
                for (session, jid) in targets {
                    ctx.rosters.pushes += 1;
                    let id = format!("push{}", ctx.rosters.pushes);
                    ctx.deliver(session, &iq::push(item.clone(), version, &id, &jid));
                }
            }
            Effect::DeliverToAvailable(stanza) => {
                // Kept as a pending request or shown in the roster: a
                // resource far behind in reading sees it at next login.
                let targets: Vec<_> = ctx
                    .sessions
                    .available_of(user)
                    .map(|s| s.id)
                    .filter(|s| ctx.accepts(*s))
                    .collect();
                for session in targets {
                    ctx.deliver(session, &stanza);
                }
            }
            Effect::Enqueue(other, op) => submit(ctx, &other, op),
            Effect::PresenceFromTo { from, to } => presence::share_presence(ctx, &from, &to),
            Effect::UnavailableFromTo { from, to } => presence::share_unavailable(ctx, &from, &to),
            Effect::BlocklistPush(payload) => blocking::push(ctx, user, payload),
        }
    }
}
