//! Personal eventing (XEP-0163): each account is a publish-subscribe
//! service of its own, on which its resources publish what their
//! contacts follow (avatars, nicknames, OMEMO keys, bookmarks).
//!
//! The account's resources publish, retract, read, configure and delete
//! nodes; others read the items a node's access model lets them see.
//! Contacts do not subscribe: those subscribed to the account's presence
//! are notified, each of its resources only of the nodes its
//! capabilities (XEP-0115) ask for with `node+notify`, and a resource
//! coming online is sent the last item of each such node.
//!
//! A node is stored as one document (see `node`), so a change reads the
//! node, changes it, and writes it back; the changes to one account's
//! nodes run one at a time, in order, each answered (and notified) once
//! written, so that nothing acknowledged is lost by a crash.

mod node;

pub(crate) use node::Setting;
pub(crate) use node::{Access, Config, Item, Node, SendLast, NS};
use node::{NS_ERRORS, NS_EVENT, NS_OWNER};

use super::avatar_conversion;
use super::caps::{self, NotifyNodes};
use super::{Addressee, Answer, IqHandler, Module, Request};
use crate::hub::{Ctx, Recipients};
use crate::modules::blocking;
use crate::presence;
use crate::roster::manager::{self as rosters, Op};
use crate::roster::Roster;
use crate::session::SessionId;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{DocumentStore, RequestId, StorageAnswer, StorageRequest, StoreOutcome};
use crate::xml::{Element, XmlLimits};
use jid::{BareJid, FullJid, Jid};
use std::collections::{HashMap, HashSet, VecDeque};

pub(crate) const MODULE: Module = Module {
    name: "pep",
    account_features: &[
        NS,
        "http://jabber.org/protocol/pubsub#access-open",
        "http://jabber.org/protocol/pubsub#access-presence",
        "http://jabber.org/protocol/pubsub#access-roster",
        "http://jabber.org/protocol/pubsub#access-whitelist",
        "http://jabber.org/protocol/pubsub#auto-create",
        "http://jabber.org/protocol/pubsub#config-node",
        "http://jabber.org/protocol/pubsub#delete-nodes",
        "http://jabber.org/protocol/pubsub#filtered-notifications",
        "http://jabber.org/protocol/pubsub#item-ids",
        "http://jabber.org/protocol/pubsub#last-published",
        "http://jabber.org/protocol/pubsub#persistent-items",
        "http://jabber.org/protocol/pubsub#presence-notifications",
        "http://jabber.org/protocol/pubsub#publish",
        "http://jabber.org/protocol/pubsub#publish-options",
        "http://jabber.org/protocol/pubsub#retract-items",
        "http://jabber.org/protocol/pubsub#retrieve-items",
    ],
    account_identities: &[("pubsub", "pep")],
    iqs: &[
        IqHandler {
            to: Addressee::OwnAccount,
            name: "pubsub",
            ns: NS,
            get: Some(get_own),
            set: Some(set_own),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "pubsub",
            ns: NS_OWNER,
            get: Some(get_owner),
            set: Some(set_owner),
        },
        IqHandler {
            to: Addressee::Public,
            name: "pubsub",
            ns: NS,
            get: Some(get_other),
            // Only the account publishes on its own service.
            set: Some(|_, _| Answer::Error(E::Forbidden)),
        },
    ],
    ..Module::NONE
};

/// What the service keeps: changes in order per account, and what each
/// storage request in flight is for.
#[derive(Default)]
pub(crate) struct Pep {
    /// Accounts with a change in flight, and the changes waiting behind
    /// it (bounded by `pep.max_queued`).
    busy: HashMap<BareJid, VecDeque<Change>>,
    requests: HashMap<RequestId, Step>,
    /// Resources whose last items are being read: one read each at a
    /// time, however often they change their capabilities.
    reading_last: HashSet<SessionId>,
    /// Item ids made for publishes without one.
    made_ids: u64,
}

impl Pep {
    pub fn owns(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }
}

/// How the account that asked relates to the node's owner.
#[derive(Clone, Debug)]
enum Relation {
    Owner,
    /// In the owner's roster (or not): subscribed to the owner's
    /// presence, and in these groups.
    Other {
        subscribed: bool,
        groups: Vec<String>,
    },
}

impl Relation {
    /// How the owner's roster sees `other`.
    fn of(roster: &Roster, other: &BareJid) -> Self {
        let item = roster.items.get(other);
        Relation::Other {
            subscribed: roster.subscription(other).has_from(),
            groups: item.map(|i| i.groups.clone()).unwrap_or_default(),
        }
    }

    /// Whether the node's access model lets this account see its items:
    /// or the error XEP-0060 section 6.5.9 names.
    fn may_see(&self, config: &Config) -> Result<(), Answer> {
        let Relation::Other { subscribed, groups } = self else {
            return Ok(());
        };
        let refuse = |condition, app| Err(Answer::Refused(condition, Element::new(app, NS_ERRORS)));
        match config.access {
            Access::Open => Ok(()),
            Access::Presence if *subscribed => Ok(()),
            Access::Presence => refuse(E::NotAuthorized, "presence-subscription-required"),
            Access::Roster if groups.iter().any(|g| config.groups.contains(g)) => Ok(()),
            Access::Roster => refuse(E::NotAuthorized, "not-in-roster-group"),
            Access::Whitelist => refuse(E::NotAllowed, "closed-node"),
        }
    }
}

/// Whether the owner whose `roster` this is lets `other` see a node
/// configured as `config`: its access model allows, and the owner does
/// not block `other` (XEP-0191).
pub(crate) fn may_see(roster: &Roster, other: &BareJid, config: &Config) -> bool {
    !blocking::matches(&roster.blocked, &Jid::from(other.clone()))
        && Relation::of(roster, other).may_see(config).is_ok()
}

/// A change to one of an account's nodes, from one of its resources.
struct Change {
    /// Who asked, and the iq without its payload, for the reply; `None`
    /// for a change the server makes itself (avatar conversion).
    asker: Option<(SessionId, Element)>,
    owner: BareJid,
    node: String,
    what: What,
}

enum What {
    Publish {
        item: Item,
        /// Preconditions (`publish-options`), which also configure a
        /// node the publish creates.
        options: Vec<Setting>,
        /// Whether `options` must hold on an existing node; if not, they
        /// only configure a new one.
        preconditions: bool,
    },
    Retract {
        id: String,
        notify: bool,
    },
    Configure(Vec<Setting>),
    Delete,
    /// The node holds exactly these items (created with `config` if
    /// missing); `keep` carries over what a replaced item had that its
    /// successor lacks.
    Replace {
        config: Config,
        items: Vec<Item>,
        keep: fn(&Element, &mut Element),
    },
}

/// What a storage request in flight is for.
enum Step {
    /// A change read its node.
    Read(Change),
    /// A change wrote it: once durable, the reply and notifications.
    Write(Box<Written>),
    /// Items asked for by `relation`.
    Items {
        session: SessionId,
        head: Element,
        relation: Relation,
        select: Select,
    },
    /// A node's configuration form, for its owner.
    Configuration { session: SessionId, head: Element },
    /// The last items of the nodes a resource coming online follows.
    LastItems { session: SessionId, jid: FullJid },
    /// A node for another module of the account's own.
    Node {
        session: SessionId,
        head: Element,
        then: ThenNode,
    },
}

/// A change being written: once durable, the reply and notifications.
struct Written {
    change: Change,
    reply: Option<Element>,
    /// The events for those who may see the node as configured.
    event: Option<(Config, Vec<Element>)>,
}

/// Which items of a node a request asks for.
struct Select {
    node: String,
    /// By id; empty: all (or the newest `max`).
    ids: Vec<String>,
    max: Option<usize>,
}

/// Stored nodes are parsed under the stanza limits, but as large as the
/// account's whole store may be.
pub(crate) fn stored_limits(ctx: &Ctx) -> XmlLimits {
    // Cost counts each element and attribute besides the bytes (see
    // `XmlLimits`); a write that would not read back is refused.
    XmlLimits {
        max_stanza_size: ctx.config.pep.max_node_bytes * 4,
        ..ctx.config.xml
    }
}

fn refused(condition: E, app: &str) -> Answer {
    Answer::Refused(condition, Element::new(app, NS_ERRORS))
}

/// The one child of a pubsub request that says what it does, and its
/// `node` (XEP-0060: `<nodeid-required/>` without one).
fn operation<'a>(payload: &'a Element, ns: &str) -> Result<(&'a Element, String), Answer> {
    let Some(op) = payload
        .children()
        .find(|c| c.ns() == ns && c.name() != "publish-options")
    else {
        return Err(Answer::Error(E::BadRequest));
    };
    match op.get_attr("node") {
        Some(node) if !node.is_empty() => Ok((op, node.to_owned())),
        _ => Err(refused(E::BadRequest, "nodeid-required")),
    }
}

/// XEP-0060 section 6.1.? errors for what this service does not do.
fn unsupported(feature: &str) -> Answer {
    Answer::Refused(
        E::FeatureNotImplemented,
        Element::new("unsupported", NS_ERRORS).attr("feature", feature),
    )
}

fn get_own(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(owner) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    items(ctx, request, owner, Relation::Owner)
}

/// Items of another account's node: the roster manager runs this with
/// the owner's roster held (see `Op::OnBehalf`).
fn get_other(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(Ok(to)) = request.iq.get_attr("to").map(Jid::new) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let owner = to.to_bare();
    let (Some(roster), Some(asker)) = (ctx.rosters.get(&owner), ctx.account_of(request.session))
    else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let relation = Relation::of(roster, &asker);
    items(ctx, request, owner, relation)
}

/// XEP-0060 section 6.5: all items, the newest `max_items`, or some by
/// id.
fn items(ctx: &mut Ctx, request: &Request, owner: BareJid, relation: Relation) -> Answer {
    let (op, node) = match operation(request.payload, NS) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if op.name() != "items" {
        return unsupported(match op.name() {
            "subscriptions" => "retrieve-subscriptions",
            "affiliations" => "retrieve-affiliations",
            _ => "retrieve-items",
        });
    }
    let max = match op.get_attr("max_items").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Answer::Error(E::BadRequest),
    };
    let ids = op
        .children()
        .filter(|c| c.is("item", NS))
        .filter_map(|i| i.get_attr("id"))
        .map(str::to_owned)
        .collect();
    let load = load(owner, &node);
    let step = Step::Items {
        session: request.session,
        head: request.iq.shallow(),
        relation,
        select: Select { node, ids, max },
    };
    ask(ctx, load, step)
}

fn load(owner: BareJid, node: &str) -> StorageRequest {
    StorageRequest::LoadDocument {
        user: owner,
        store: DocumentStore::Pep,
        key: node.to_owned(),
    }
}

/// Ask storage, unless too many requests wait already (as many as
/// offline stores may).
fn ask(ctx: &mut Ctx, query: StorageRequest, step: Step) -> Answer {
    if ctx.pep.requests.len() >= ctx.config.max_offline_in_flight {
        return Answer::Error(E::ResourceConstraint);
    }
    let id = ctx.out.storage(query);
    ctx.pep.requests.insert(id, step);
    Answer::Later
}

/// Publish or retract (XEP-0060 sections 7.1 and 7.2).
fn set_own(ctx: &mut Ctx, request: &Request) -> Answer {
    let (op, node) = match operation(request.payload, NS) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let what = match op.name() {
        "publish" => match publish(ctx, request.payload, op) {
            Ok(what) => what,
            Err(answer) => return answer,
        },
        "retract" => {
            let Some(id) = op
                .get_child("item", NS)
                .and_then(|i| i.get_attr("id"))
                .filter(|id| !id.is_empty())
            else {
                return refused(E::BadRequest, "item-required");
            };
            What::Retract {
                id: id.to_owned(),
                notify: matches!(op.get_attr("notify"), Some("1" | "true")),
            }
        }
        "create" => return unsupported("create-nodes"),
        "subscribe" | "unsubscribe" => return unsupported("subscribe"),
        _ => return Answer::Error(E::FeatureNotImplemented),
    };
    change(ctx, request, node, what)
}

/// A publish's item and preconditions.
fn publish(ctx: &mut Ctx, payload: &Element, op: &Element) -> Result<What, Answer> {
    let mut items = op.children().filter(|c| c.is("item", NS));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(refused(E::BadRequest, "item-required"));
    };
    let mut payloads = item.children();
    let content = match (payloads.next(), payloads.next()) {
        (Some(content), None) => content.clone(),
        (None, _) => return Err(refused(E::BadRequest, "payload-required")),
        (Some(_), Some(_)) => return Err(refused(E::BadRequest, "invalid-payload")),
    };
    let id = match item.get_attr("id").filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None => {
            ctx.pep.made_ids += 1;
            format!("{}-{}", ctx.clock.0.as_micros(), ctx.pep.made_ids)
        }
    };
    let options = match payload
        .get_child("publish-options", NS)
        .and_then(|p| p.children().next())
    {
        Some(form) => node::options(form, true, ctx.config.pep.max_items)
            .map_err(|_| refused(E::Conflict, "precondition-not-met"))?,
        None => Vec::new(),
    };
    Ok(What::Publish {
        item: Item {
            id,
            payload: content,
        },
        options,
        preconditions: true,
    })
}

/// Configure or delete a node (XEP-0060 sections 8.2 and 8.4).
fn set_owner(ctx: &mut Ctx, request: &Request) -> Answer {
    let (op, node) = match operation(request.payload, NS_OWNER) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let what = match op.name() {
        "delete" => What::Delete,
        "configure" => {
            let Some(form) = op.children().next() else {
                return Answer::Error(E::BadRequest);
            };
            if form.get_attr("type") == Some("cancel") {
                return Answer::Result(None);
            }
            match node::options(form, false, ctx.config.pep.max_items) {
                Ok(settings) => What::Configure(settings),
                Err(condition) => return Answer::Error(condition),
            }
        }
        _ => return Answer::Error(E::FeatureNotImplemented),
    };
    change(ctx, request, node, what)
}

/// A node's configuration form (XEP-0060 section 8.2).
fn get_owner(ctx: &mut Ctx, request: &Request) -> Answer {
    let (op, node) = match operation(request.payload, NS_OWNER) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if op.name() != "configure" {
        return Answer::Error(E::FeatureNotImplemented);
    }
    let Some(owner) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let step = Step::Configuration {
        session: request.session,
        head: request.iq.shallow(),
    };
    ask(ctx, load(owner, &node), step)
}

/// Queue a change behind those to the account's nodes in flight.
fn change(ctx: &mut Ctx, request: &Request, node: String, what: What) -> Answer {
    let Some(owner) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let change = Change {
        asker: Some((request.session, request.iq.shallow())),
        owner: owner.clone(),
        node,
        what,
    };
    queue(ctx, change)
}

/// The server publishes on an account's node itself (converting a
/// vCard photo to an avatar, XEP-0398): in order with the account's
/// other changes, creating the node with `options` if missing.
pub(crate) fn publish_as_server(
    ctx: &mut Ctx,
    owner: BareJid,
    node: &str,
    item: Item,
    options: Vec<Setting>,
) {
    let what = What::Publish {
        item,
        options,
        preconditions: false,
    };
    let change = Change {
        asker: None,
        owner,
        node: node.to_owned(),
        what,
    };
    // Refused (too busy): the conversion is skipped, as with Prosody.
    let _ = queue(ctx, change);
}

fn queue(ctx: &mut Ctx, change: Change) -> Answer {
    let owner = change.owner.clone();
    match ctx.pep.busy.get_mut(&owner) {
        Some(queue) if queue.len() >= ctx.config.pep.max_queued => {
            Answer::Error(E::ResourceConstraint)
        }
        Some(queue) => {
            queue.push_back(change);
            Answer::Later
        }
        None => {
            let answer = ask(ctx, load(owner.clone(), &change.node), Step::Read(change));
            if matches!(answer, Answer::Later) {
                ctx.pep.busy.insert(owner, VecDeque::new());
            }
            answer
        }
    }
}

/// What answers a request once one of the account's nodes is read:
/// given the asking session and the request without its payload.
pub(crate) type ThenNode = fn(&mut Ctx, SessionId, &Element, Option<Node>) -> Answer;

/// Another module reads one of the asking account's own nodes, and
/// answers the request with `then`.
pub(crate) fn read_own(ctx: &mut Ctx, request: &Request, node: &str, then: ThenNode) -> Answer {
    let Some(owner) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let step = Step::Node {
        session: request.session,
        head: request.iq.shallow(),
        then,
    };
    ask(ctx, load(owner, node), step)
}

/// Another module replaces the items of one of the asking account's
/// nodes, in order with the account's other changes; followers are told
/// of each item published and retracted.
pub(crate) fn replace_own(
    ctx: &mut Ctx,
    request: &Request,
    node: &str,
    config: Config,
    items: Vec<Item>,
    keep: fn(&Element, &mut Element),
) -> Answer {
    let what = What::Replace {
        config,
        items,
        keep,
    };
    change(ctx, request, node.to_owned(), what)
}

/// The change to `owner`'s nodes in flight is done: start the next.
fn next(ctx: &mut Ctx, owner: &BareJid) {
    loop {
        let Some(change) = ctx.pep.busy.get_mut(owner).and_then(VecDeque::pop_front) else {
            ctx.pep.busy.remove(owner);
            return;
        };
        let asker = change.asker.clone();
        let answer = ask(ctx, load(owner.clone(), &change.node), Step::Read(change));
        if matches!(answer, Answer::Later) {
            return;
        }
        if let Some((session, head)) = asker {
            reply(ctx, session, &head, answer);
        }
    }
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    let Some(step) = ctx.pep.requests.remove(&request) else {
        return;
    };
    match step {
        Step::Read(change) => read(ctx, change, answer),
        Step::Write(w) => written(ctx, w.change, w.reply, w.event, answer),
        Step::Items {
            session,
            head,
            relation,
            select,
        } => {
            let answer = match stored_node(ctx, answer) {
                Ok(Some(node)) => match relation.may_see(&node.config) {
                    Ok(()) => {
                        let max_bytes = ctx.config.output_buffer / 2;
                        Answer::Result(Some(selected(&node, &select, max_bytes)))
                    }
                    Err(refusal) => refusal,
                },
                Ok(None) => Answer::Error(E::ItemNotFound),
                Err(condition) => Answer::Error(condition),
            };
            reply(ctx, session, &head, answer);
        }
        Step::Configuration { session, head } => {
            let answer = match stored_node(ctx, answer) {
                Ok(Some(node)) => {
                    let configure = Element::new("configure", NS_OWNER)
                        .attr("node", &node.name)
                        .child(node.config.form());
                    Answer::Result(Some(Element::new("pubsub", NS_OWNER).child(configure)))
                }
                Ok(None) => Answer::Error(E::ItemNotFound),
                Err(condition) => Answer::Error(condition),
            };
            reply(ctx, session, &head, answer);
        }
        Step::LastItems { session, jid } => last_items(ctx, session, &jid, answer),
        Step::Node {
            session,
            head,
            then,
        } => {
            let answer = match stored_node(ctx, answer) {
                Ok(node) => then(ctx, session, &head, node),
                Err(condition) => Answer::Error(condition),
            };
            reply(ctx, session, &head, answer);
        }
    }
}

fn reply(ctx: &mut Ctx, session: SessionId, head: &Element, answer: Answer) {
    if let Some(reply) = answer.reply(head) {
        ctx.deliver(session, &reply);
    }
}

/// The node a read found, if any.
fn stored_node(ctx: &Ctx, answer: StorageAnswer) -> Result<Option<Node>, E> {
    match answer {
        StorageAnswer::Document(None) => Ok(None),
        StorageAnswer::Document(Some(text)) => Node::from_document(&text, stored_limits(ctx))
            .map(Some)
            .ok_or(E::InternalServerError),
        _ => Err(E::InternalServerError),
    }
}

/// `<pubsub><items node>` with the items asked for, oldest first: the
/// newest of them that fit in `max_bytes` (at least one; XEP-0060
/// section 6.5.7 lets a service return fewer than asked).
fn selected(node: &Node, select: &Select, max_bytes: usize) -> Element {
    let mut chosen: Vec<&Item> = if select.ids.is_empty() {
        let skip = select
            .max
            .map_or(0, |max| node.items.len().saturating_sub(max));
        node.items.iter().skip(skip).collect()
    } else {
        node.items
            .iter()
            .filter(|i| select.ids.contains(&i.id))
            .collect()
    };
    let mut bytes = 0;
    let mut fitting = chosen.len();
    for (i, item) in chosen.iter().enumerate().rev() {
        bytes += item.payload.to_stream_string().len() + item.id.len();
        if bytes > max_bytes && i + 1 < chosen.len() {
            break;
        }
        fitting = i;
    }
    let chosen = chosen.split_off(fitting);
    let mut items = Element::new("items", NS).attr("node", &select.node);
    for item in chosen {
        items.push_child(item.to_element(NS));
    }
    Element::new("pubsub", NS).child(items)
}

/// A change read its node: make the change, or refuse it.
fn read(ctx: &mut Ctx, change: Change, answer: StorageAnswer) {
    let unreadable = matches!(&answer, StorageAnswer::Document(Some(_)));
    let found = match stored_node(ctx, answer) {
        // A node stored under larger limits than today's can still go.
        Err(_) if unreadable && matches!(change.what, What::Delete) => {
            let only_owner = Config {
                access: Access::Whitelist,
                ..Config::default()
            };
            Ok(Some(Node::new(&change.node, only_owner)))
        }
        found => found,
    };
    let planned = found
        .map_err(Answer::Error)
        .and_then(|node| plan(ctx, &change, node))
        .and_then(|planned| fits(ctx, planned));
    let (document, reply, event) = match planned {
        Ok(planned) => planned,
        Err(refusal) => {
            answer_asker(ctx, &change, refusal);
            return next(ctx, &change.owner);
        }
    };
    let write = StorageRequest::StoreDocuments {
        user: change.owner.clone(),
        store: DocumentStore::Pep,
        documents: vec![(change.node.clone(), document)],
        max_documents: ctx.config.pep.max_nodes,
        max_bytes: ctx.config.pep.max_bytes,
    };
    // Not bounded by `ask`: the read it follows held the place.
    let id = ctx.out.storage(write);
    let step = Step::Write(Box::new(Written {
        change,
        reply,
        event,
    }));
    ctx.pep.requests.insert(id, step);
}

/// A node's document must stay within `pep.max_node_bytes` and read
/// back (XEP-0060 section 7.1.3.6: `<payload-too-big/>`).
fn fits(ctx: &Ctx, planned: Planned) -> Result<Planned, Answer> {
    let fits = planned.0.as_ref().is_none_or(|document| {
        document.len() <= ctx.config.pep.max_node_bytes
            && Node::from_document(document, stored_limits(ctx)).is_some()
    });
    if fits {
        Ok(planned)
    } else {
        Err(refused(E::NotAcceptable, "payload-too-big"))
    }
}

/// What a change writes (`None`: the node goes), answers, and notifies.
type Planned = (
    Option<String>,
    Option<Element>,
    Option<(Config, Vec<Element>)>,
);

fn plan(ctx: &Ctx, change: &Change, node: Option<Node>) -> Result<Planned, Answer> {
    let cap = ctx.config.pep.max_items;
    let name = change.node.as_str();
    let items_event = |child: Element| {
        Element::new("event", NS_EVENT).child(
            Element::new("items", NS_EVENT)
                .attr("node", name)
                .child(child),
        )
    };
    match (&change.what, node) {
        (
            What::Publish {
                item,
                options,
                preconditions,
            },
            node,
        ) => {
            let mut node = match node {
                Some(node) if *preconditions && !node.config.satisfies(options) => {
                    return Err(refused(E::Conflict, "precondition-not-met"))
                }
                // The server republishing what is there already (a vCard
                // set again with the same photo): nothing to write or tell.
                Some(node) if change.asker.is_none() && node.last() == Some(item) => {
                    return Err(Answer::Result(None))
                }
                Some(node) => node,
                None => {
                    let mut config = Config::default();
                    config.apply(options);
                    Node::new(name, config)
                }
            };
            node.publish(item.clone(), cap);
            let published = Element::new("publish", NS)
                .attr("node", name)
                .child(Element::new("item", NS).attr("id", &item.id));
            let event = items_event(item.to_element(NS_EVENT));
            Ok((
                Some(node.to_document()),
                Some(Element::new("pubsub", NS).child(published)),
                Some((node.config.clone(), vec![event])),
            ))
        }
        (What::Retract { id, notify }, Some(mut node)) => {
            if !node.retract(id) {
                return Err(Answer::Error(E::ItemNotFound));
            }
            let event = (*notify || node.config.notify_retract)
                .then(|| items_event(Element::new("retract", NS_EVENT).attr("id", id)))
                .map(|e| (node.config.clone(), vec![e]));
            Ok((Some(node.to_document()), None, event))
        }
        (What::Configure(settings), Some(mut node)) => {
            node.config.apply(settings);
            node.trim(cap);
            Ok((Some(node.to_document()), None, None))
        }
        (What::Delete, Some(node)) => {
            let event = Element::new("event", NS_EVENT)
                .child(Element::new("delete", NS_EVENT).attr("node", name));
            Ok((None, None, Some((node.config, vec![event]))))
        }
        (
            What::Replace {
                config,
                items,
                keep,
            },
            node,
        ) => {
            // The node is configured as the module needs it (bookmarks
            // are for the owner alone), and holds every item or none.
            let mut node = node.unwrap_or_else(|| Node::new(name, config.clone()));
            node.config = config.clone();
            if items.len() > node.config.kept(cap) {
                return Err(Answer::Error(E::PolicyViolation));
            }
            let mut events = Vec::new();
            for old in &node.items {
                if !items.iter().any(|i| i.id == old.id) {
                    events.push(items_event(
                        Element::new("retract", NS_EVENT).attr("id", &old.id),
                    ));
                }
            }
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                let mut item = item.clone();
                if let Some(old) = node.items.iter().find(|i| i.id == item.id) {
                    keep(&old.payload, &mut item.payload);
                    if *old == item {
                        kept.push(item);
                        continue;
                    }
                }
                events.push(items_event(item.to_element(NS_EVENT)));
                kept.push(item);
            }
            node.items = kept;
            node.trim(cap);
            Ok((Some(node.to_document()), None, Some((node.config, events))))
        }
        (_, None) => Err(Answer::Error(E::ItemNotFound)),
    }
}

/// A change is durable: answer it, notify, and start the next.
fn written(
    ctx: &mut Ctx,
    change: Change,
    reply: Option<Element>,
    event: Option<(Config, Vec<Element>)>,
    answer: StorageAnswer,
) {
    let answer = match answer {
        StorageAnswer::Stored(StoreOutcome::Stored) => {
            if let Some((config, events)) = event {
                notify(ctx, &change.owner, &change.node, &config, &events);
            }
            if let (What::Publish { item, .. }, true) =
                (&change.what, change.node == avatar_conversion::METADATA)
            {
                // A client's avatar becomes the vCard's photo (XEP-0398),
                // and any avatar the photo in presence (XEP-0153).
                if change.asker.is_some() {
                    avatar_conversion::from_pep(ctx, &change.owner, &item.payload);
                }
                super::vcard_update::avatar_published(ctx, &change.owner, &item.payload);
            }
            Answer::Result(reply)
        }
        // XEP-0060 names no condition for a full service.
        StorageAnswer::Stored(StoreOutcome::QuotaExceeded) => Answer::Error(E::ResourceConstraint),
        _ => Answer::Error(E::InternalServerError),
    };
    answer_asker(ctx, &change, answer);
    next(ctx, &change.owner);
}

fn answer_asker(ctx: &mut Ctx, change: &Change, answer: Answer) {
    if let Some((session, head)) = &change.asker {
        reply(ctx, *session, head, answer);
    }
}

/// XEP-0163 section 4.3: the event goes to each available resource,
/// the owner's and its presence subscribers' (as the access model
/// allows), whose capabilities ask for the node; not across a block.
fn notify(ctx: &mut Ctx, owner: &BareJid, node: &str, config: &Config, events: &[Element]) {
    let mut recipients = ctx.available(owner);
    let blocked = match ctx.rosters.get(owner) {
        Some(roster) => {
            let allowed: Vec<BareJid> = roster
                .presence_subscribers()
                .filter(|c| Relation::of(roster, c).may_see(config).is_ok())
                .cloned()
                .collect();
            for contact in &allowed {
                recipients.extend(ctx.available(contact));
            }
            roster.blocked.clone()
        }
        None => Default::default(),
    };
    let recipients = ctx.unblocked(recipients, &Jid::from(owner.clone()), &blocked);
    for event in events {
        send(ctx, owner, node, &recipients, event);
    }
}

/// `event` from `owner`'s service to each recipient following `node`.
fn send(ctx: &mut Ctx, owner: &BareJid, node: &str, recipients: &Recipients, event: &Element) {
    for session in recipients.iter() {
        let Some(s) = ctx.sessions.get(session) else {
            continue;
        };
        let follows = ctx
            .caps
            .followed(session)
            .is_some_and(|nodes| nodes.binary_search_by(|n| n.as_str().cmp(node)).is_ok());
        // An update: not for a client too far behind in reading.
        if !follows || !ctx.accepts(session) {
            continue;
        }
        let message = Element::new("message", crate::ns::CLIENT)
            .attr("from", owner.as_str())
            .attr("to", s.jid.as_str())
            .attr("type", "headline")
            .child(event.clone());
        ctx.deliver(session, &message);
    }
}

/// A resource became available, or changed its capabilities, with the
/// account's `roster` (lent by presence): once its capabilities are
/// known, it is sent the last items of the nodes it follows and did not
/// follow before.
pub(crate) fn available(ctx: &mut Ctx, session: SessionId, roster: &Roster) {
    if !ctx.loaded.has(MODULE.name) {
        return;
    }
    let Some((nodes, before)) = caps::learn(ctx, session) else {
        return;
    };
    let Some(user) = ctx.account_of(session) else {
        return;
    };
    let owners = owners(ctx, &user, roster);
    request_last_items(ctx, session, &newly(nodes, before), owners);
}

/// The nodes of `nodes` not among those `followed` before.
fn newly(nodes: NotifyNodes, followed: Option<NotifyNodes>) -> NotifyNodes {
    match followed {
        Some(old) => nodes.iter().filter(|n| !old.contains(n)).cloned().collect(),
        None => nodes,
    }
}

/// `to` now receives `from`'s presence (a subscription approved, a
/// block lifted): as if they had just come online, its available
/// resources get the last items of `from`'s nodes they follow.
pub(crate) fn presence_shared(ctx: &mut Ctx, from: &BareJid, to: &BareJid) {
    if !ctx.loaded.has(MODULE.name) {
        return;
    }
    let following: Vec<(SessionId, NotifyNodes)> = ctx
        .sessions
        .available_of(to)
        .filter_map(|s| Some((s.id, ctx.caps.followed(s.id)?.clone())))
        .collect();
    for (session, nodes) in following {
        request_last_items(ctx, session, &nodes, vec![from.clone()]);
    }
}

/// What a resource's capabilities stand for was learnt.
pub(crate) fn caps_learnt(
    ctx: &mut Ctx,
    session: SessionId,
    nodes: &NotifyNodes,
    followed: Option<NotifyNodes>,
) {
    let Some(user) = ctx.account_of(session) else {
        return;
    };
    // Held while the account is online; a roster lent out (this runs
    // from an iq, never from presence) would read as empty.
    let owners = match ctx.rosters.get(&user) {
        Some(roster) => owners(ctx, &user, roster),
        None => return,
    };
    request_last_items(ctx, session, &newly(nodes.clone(), followed), owners);
}

/// The services whose events `user` receives: its own, and those of
/// the contacts who share their presence with it, but across a block.
fn owners(ctx: &Ctx, user: &BareJid, roster: &Roster) -> Vec<BareJid> {
    let me = Jid::from(user.clone());
    let mut owners = vec![user.clone()];
    owners.extend(
        presence::sources(ctx, user, roster)
            .filter(|c| !presence::blocked(ctx, roster, &me, &Jid::from((*c).clone())))
            .cloned(),
    );
    owners
}

fn request_last_items(
    ctx: &mut Ctx,
    session: SessionId,
    nodes: &NotifyNodes,
    owners: Vec<BareJid>,
) {
    let Some(jid) = ctx.sessions.get(session).map(|s| s.jid.clone()) else {
        return;
    };
    if nodes.is_empty() || ctx.pep.reading_last.contains(&session) {
        return;
    }
    let query = StorageRequest::LoadDocuments {
        users: owners,
        store: DocumentStore::Pep,
        keys: nodes.to_vec(),
        // As much as stream management may hold unacknowledged.
        max_bytes: ctx.config.output_buffer / 4,
    };
    // Too busy: the resource misses the last items, not later events.
    if matches!(
        ask(ctx, query, Step::LastItems { session, jid }),
        Answer::Later
    ) {
        ctx.pep.reading_last.insert(session);
    }
}

/// The last items of the followed nodes were read: each one its access
/// model shows goes to the resource, if it is still the one that asked.
fn last_items(ctx: &mut Ctx, session: SessionId, jid: &FullJid, answer: StorageAnswer) {
    ctx.pep.reading_last.remove(&session);
    let StorageAnswer::Documents(documents) = answer else {
        return;
    };
    if ctx
        .sessions
        .get(session)
        .is_none_or(|s| s.jid != *jid || !s.is_available())
    {
        return;
    }
    let user = jid.to_bare();
    let limits = stored_limits(ctx);
    for (owner, _, document) in documents {
        let Some(node) = Node::from_document(&document, limits) else {
            continue;
        };
        let Some(item) = node
            .last()
            .filter(|_| node.config.send_last == SendLast::OnSubAndPresence)
        else {
            continue;
        };
        let event = Element::new("event", NS_EVENT).child(
            Element::new("items", NS_EVENT)
                .attr("node", &node.name)
                .child(item.to_element(NS_EVENT)),
        );
        let message = Element::new("message", crate::ns::CLIENT)
            .attr("from", owner.as_str())
            .attr("to", jid.as_str())
            .attr("type", "headline")
            .child(event);
        if owner == user {
            ctx.deliver(session, &message);
            continue;
        }
        // The owner's roster decides (its access model, its blocklist):
        // read first if the owner is offline.
        match ctx.rosters.get(&owner) {
            Some(roster) => {
                if may_see(roster, &user, &node.config) {
                    ctx.deliver(session, &message);
                }
            }
            None => rosters::submit(
                ctx,
                &owner,
                Op::DeliverIfAllowed {
                    session,
                    node: Box::new(node.config),
                    stanza: message,
                },
            ),
        }
    }
}
