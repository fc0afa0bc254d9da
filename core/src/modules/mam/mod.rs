//! Message Archive Management (XEP-0313, `urn:xmpp:mam:2`): every chat
//! or normal message with a body that reaches a local account is kept in
//! its archive and in its sender's, under one XEP-0359 stanza-id the
//! recipient sees; an account's own resources page through its archive
//! with XEP-0059 result sets.
//!
//! Off unless `archive.enabled`, as in Prosody's default configuration:
//! every archived chat is two rows and a text written to the database,
//! which on one core costs most of the server's message throughput (see
//! the closing note of issue 15 for the figures).
//!
//! Kept, as Prosody does: everything of those types that the account's
//! preferences ([`prefs`]) let through, for `archive.expires_after`, at
//! most `archive.max_messages` per account (the oldest go first). Expiry
//! runs in small batches on a timer, each one short transaction, so that
//! it never stalls storage.

pub(crate) mod prefs;

use super::{waiting, Addressee, Answer, IqHandler, Module, Request};
use crate::clock::WallClock;
use crate::hub::Ctx;
use crate::ns;
use crate::session::SessionId;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{ArchiveQuery, RequestId, StorageAnswer, StorageRequest};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const NS: &str = "urn:xmpp:mam:2";
/// The version before: the same protocol in another namespace, answered
/// in the namespace it is asked in (as Prosody does) for older clients.
pub const NS_1: &str = "urn:xmpp:mam:1";

/// The namespace an element of the protocol came in.
fn version_of(element: &Element) -> &'static str {
    match element.ns() {
        NS_1 => NS_1,
        _ => NS,
    }
}
/// XEP-0359 unique and stable stanza ids.
pub const NS_SID: &str = "urn:xmpp:sid:0";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_DATA: &str = "jabber:x:data";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DELAY: &str = "urn:xmpp:delay";
const NS_HINTS: &str = "urn:xmpp:hints";

pub(crate) const MODULE: Module = Module {
    name: "mam",
    loaded: |config| config.archive.enabled,
    account_features: &[NS_1, NS, NS_SID],
    iqs: &[
        IqHandler {
            to: Addressee::OwnAccount,
            name: "query",
            ns: NS,
            get: Some(form),
            set: Some(query),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "prefs",
            ns: NS,
            get: Some(prefs::queue),
            set: Some(prefs::queue),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "query",
            ns: NS_1,
            get: Some(form),
            set: Some(query),
        },
        IqHandler {
            to: Addressee::OwnAccount,
            name: "prefs",
            ns: NS_1,
            get: Some(prefs::queue),
            set: Some(prefs::queue),
        },
    ],
    ..Module::NONE
};

/// Expired messages deleted per storage request.
const EXPIRY_BATCH: usize = 1000;
/// How often expiry runs once it has caught up.
const EXPIRY_EVERY: Duration = Duration::from_secs(60 * 60);

/// The archive's numbering, its writes in flight, and its expiry timer.
#[derive(Default)]
pub(crate) struct Archive {
    /// The last number given to a message: numbers are microseconds of
    /// the wall clock, one past the last if the clock has not moved on.
    last: u64,
    /// Archive writes storage has not answered yet, and their bytes.
    writes: HashMap<RequestId, usize>,
    writing: usize,
    /// Sessions with a query in flight: one each.
    querying: HashSet<SessionId>,
    /// When expiry next runs; `None` until the first event, and while a
    /// batch is in flight.
    next_expiry: Option<Instant>,
    expiring: Option<RequestId>,
}

impl Archive {
    pub fn owns(&self, request: RequestId) -> bool {
        self.expiring == Some(request) || self.writes.contains_key(&request)
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_expiry
    }
}

fn micros(clock: WallClock) -> u64 {
    u64::try_from(clock.0.as_micros()).unwrap_or(u64::MAX)
}

/// Whether a message is kept (section 5.1.1): chats and normal messages
/// with a body, unless the sender asks otherwise (XEP-0334).
fn archivable(message: &Element) -> bool {
    matches!(
        message.get_attr("type"),
        None | Some("chat") | Some("normal")
    ) && message.get_child("body", ns::CLIENT).is_some()
        && message.get_child("no-store", NS_HINTS).is_none()
        && message.get_child("no-permanent-store", NS_HINTS).is_none()
}

/// The bare JID and resource an archive files a message under.
fn party(jid: &Jid) -> (String, Option<String>) {
    (
        jid.to_bare().to_string(),
        jid.resource().map(|r| r.as_str().to_owned()),
    )
}

/// `message`, from `from` to `to`, reaches the local account `user`:
/// kept in its archive and in the sender's, as their preferences say,
/// and stamped with the stanza-id it has in the recipient's (a client's
/// own claim to one is removed, as XEP-0359 requires). `false` if
/// storage is too far behind to take it now: the message must not go
/// either, or it would be missing from the archive (its sender is told
/// to wait).
pub(crate) fn archive(
    ctx: &mut Ctx,
    from: &FullJid,
    to: &Jid,
    user: &BareJid,
    message: &mut Element,
) -> bool {
    if !ctx.loaded.has(MODULE.name) {
        return true;
    }
    strip_claims(message, user);
    if !archivable(message) {
        return true;
    }
    let sender = from.to_bare();
    // Whose preferences the router applies: those of accounts whose
    // roster it holds (an online recipient's, the sender's once loaded).
    // Storage applies the others', and an offline recipient's blocklist.
    let recipient = ctx.rosters.get(user).map(|r| r.archives(&sender));
    let sender_keeps = match sender != *user {
        true => ctx.rosters.get(&sender).map(|r| r.archives(&to.to_bare())),
        false => Some(false),
    };
    if recipient == Some(false) && sender_keeps == Some(false) {
        return true;
    }
    if ctx.mam.writing >= ctx.config.archive.max_bytes_in_flight {
        return false;
    }
    let seq = micros(ctx.clock).max(ctx.mam.last + 1);
    ctx.mam.last = seq;
    let mut archives = Vec::with_capacity(2);
    if recipient != Some(false) {
        // Kept once, as the recipient sees it, for both archives.
        message.push_child(
            Element::new("stanza-id", NS_SID)
                .attr("id", &seq.to_string())
                .attr("by", user.as_str()),
        );
        archives.push((user.clone(), party(&Jid::from(from.clone()))));
    }
    let mut prefs_of = Vec::new();
    if recipient.is_none() {
        prefs_of.push(user.clone());
    }
    if sender_keeps.is_none() {
        prefs_of.push(sender.clone());
    }
    if sender_keeps != Some(false) {
        archives.push((sender, party(to)));
    }
    let stanza = message.to_stream_string();
    let bytes = stanza.len();
    let write = ctx.out.storage(StorageRequest::ArchiveMessage {
        seq,
        stanza,
        archives,
        // Not into the archive of an offline recipient who blocks the
        // sender (XEP-0191).
        unless_blocked: match recipient {
            Some(_) => Vec::new(),
            None => crate::modules::blocking::candidates(&Jid::from(from.clone())),
        },
        prefs_of,
        max_messages: ctx.config.archive.max_messages,
        max_bytes: ctx.config.archive.max_bytes,
    });
    ctx.mam.writes.insert(write, bytes);
    ctx.mam.writing += bytes;
    true
}

/// Remove stanza-ids claiming to be by `user`'s archive (however the
/// JID is spelled), from every message: clients take the first they see.
fn strip_claims(message: &mut Element, user: &BareJid) {
    let forged = |e: &Element| {
        e.is("stanza-id", NS_SID)
            && e.get_attr("by")
                .and_then(|by| Jid::new(by).ok())
                .is_some_and(|by| by.to_bare() == *user)
    };
    if message.children().any(forged) {
        message.retain_children(|e| !forged(e));
    }
}

/// The query form (section 4.1.1): the fields a query may filter by.
fn form(_: &mut Ctx, request: &Request) -> Answer {
    let ns = version_of(request.payload);
    let field = |var: &str, kind: &str| {
        Element::new("field", NS_DATA)
            .attr("var", var)
            .attr("type", kind)
    };
    let x = Element::new("x", NS_DATA)
        .attr("type", "form")
        .child(field("FORM_TYPE", "hidden").child(Element::new("value", NS_DATA).text(ns)))
        .child(field("with", "jid-single"))
        .child(field("start", "text-single"))
        .child(field("end", "text-single"))
        .child(field("before-id", "text-single"))
        .child(field("after-id", "text-single"));
    Answer::Result(Some(Element::new("query", ns).child(x)))
}

/// XEP-0082 DateTime as microseconds since the epoch.
fn parse_stamp(value: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(value.trim(), &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// The number of an archived message from its id; an id this server
/// never gave names nothing in the archive (section 4.2).
fn archived(id: &str) -> Result<u64, E> {
    id.trim().parse().map_err(|_| E::ItemNotFound)
}

/// The query's filters and page (sections 4.1 and 4.2, XEP-0059), or
/// the error it deserves.
fn parse_query(ctx: &Ctx, payload: &Element) -> Result<ArchiveQuery, E> {
    let limits = ctx.config.archive;
    let mut query = ArchiveQuery {
        max: limits.default_page,
        // Results go out at once: half the output budget leaves room.
        max_bytes: ctx.config.output_buffer / 2,
        ..ArchiveQuery::default()
    };
    if let Some(x) = payload.get_child("x", NS_DATA) {
        for field in x.children().filter(|f| f.is("field", NS_DATA)) {
            let value = field
                .get_child("value", NS_DATA)
                .map(|v| v.text_content())
                .unwrap_or_default();
            match field.get_attr("var").unwrap_or_default() {
                "FORM_TYPE" if value == payload.ns() => {}
                "with" => {
                    let with = Jid::new(value.trim()).map_err(|_| E::JidMalformed)?;
                    query.with = Some(party(&with));
                }
                "start" => query.start = Some(parse_stamp(&value).ok_or(E::BadRequest)?),
                "end" => query.end = Some(parse_stamp(&value).ok_or(E::BadRequest)?),
                "after-id" => query.after = Some(archived(&value)?),
                "before-id" => query.before = Some(archived(&value)?),
                // A filter not understood would return what was not
                // asked for.
                _ => return Err(E::FeatureNotImplemented),
            }
        }
    }
    if let Some(set) = payload.get_child("set", NS_RSM) {
        if let Some(max) = set.get_child("max", NS_RSM) {
            let max: usize = max
                .text_content()
                .trim()
                .parse()
                .map_err(|_| E::BadRequest)?;
            query.max = max.min(limits.max_page);
        }
        if let Some(after) = set.get_child("after", NS_RSM) {
            query.after = Some(archived(&after.text_content())?);
        }
        if let Some(before) = set.get_child("before", NS_RSM) {
            // Empty: the last page.
            query.backward = true;
            let before = before.text_content();
            if !before.is_empty() {
                query.before = Some(archived(&before)?);
            }
        }
        if set.get_child("index", NS_RSM).is_some() {
            return Err(E::FeatureNotImplemented);
        }
    }
    Ok(query)
}

/// A query of the account's own archive (section 4): its results as
/// messages, then the iq's result with where the page ends.
fn query(ctx: &mut Ctx, request: &Request) -> Answer {
    let parsed = match parse_query(ctx, request.payload) {
        Ok(parsed) => parsed,
        Err(condition) => return Answer::Error(condition),
    };
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    // One query at a time per session: each reads up to a page of
    // stanzas, and its results go out at once.
    if !ctx.mam.querying.insert(request.session) {
        return Answer::Error(E::ResourceConstraint);
    }
    // In the namespace asked: the results and `<fin/>` answer in it.
    let ns = version_of(request.payload);
    let mut kept = Element::new("query", ns);
    if let Some(id) = request.payload.get_attr("queryid") {
        kept.set_attr("queryid", id);
    }
    if request.payload.get_child("flip-page", ns).is_some() {
        kept.set_attr("flip", "true");
    }
    let page = StorageRequest::QueryArchive {
        user,
        query: parsed,
    };
    let answer = waiting::ask(ctx, request, page, Some(kept), results);
    if !matches!(answer, Answer::Later) {
        ctx.mam.querying.remove(&request.session);
    }
    answer
}

/// Storage found the page: each message goes out as a result, then the
/// `<fin/>`.
fn results(
    ctx: &mut Ctx,
    session: SessionId,
    kept: Option<&Element>,
    answer: StorageAnswer,
) -> Answer {
    ctx.mam.querying.remove(&session);
    let (mut messages, complete) = match answer {
        StorageAnswer::Archive(Some(page)) => page,
        // An id to page from that is not in the archive (section 4.2).
        StorageAnswer::Archive(None) => return Answer::Error(E::ItemNotFound),
        _ => return Answer::Error(E::InternalServerError),
    };
    let query_id = kept.and_then(|k| k.get_attr("queryid"));
    let ns = kept.map_or(NS, version_of);
    // The page's bounds, in archive order whatever order it goes out in.
    let bounds = messages
        .first()
        .zip(messages.last())
        .map(|(first, last)| (first.seq.to_string(), last.seq.to_string()));
    if kept.and_then(|k| k.get_attr("flip")).is_some() {
        messages.reverse();
    }
    let Some(to) = ctx.sessions.get(session).map(|s| s.jid.to_string()) else {
        return Answer::Later;
    };
    for archived in &messages {
        let Some(original) = crate::xml::parse_stanza(&archived.stanza, ctx.config.xml) else {
            // Kept under larger limits than today's.
            continue;
        };
        let stamp = WallClock(Duration::from_micros(archived.seq)).xmpp_datetime();
        let mut result = Element::new("result", ns).attr("id", &archived.seq.to_string());
        if let Some(query_id) = query_id {
            result.set_attr("queryid", query_id);
        }
        let forwarded = Element::new("forwarded", NS_FORWARD)
            .child(Element::new("delay", NS_DELAY).attr("stamp", &stamp))
            .child(original);
        let message = Element::new("message", ns::CLIENT)
            .attr("to", &to)
            .child(result.child(forwarded));
        ctx.deliver_separately(session, &message.to_stream_string());
    }
    let mut set = Element::new("set", NS_RSM);
    if let Some((first, last)) = bounds {
        set.push_child(Element::new("first", NS_RSM).text(&first));
        set.push_child(Element::new("last", NS_RSM).text(&last));
    }
    let mut fin = Element::new("fin", ns).child(set);
    if complete {
        fin.set_attr("complete", "true");
    }
    Answer::Result(Some(fin))
}

/// Expiry runs a minute after the server starts, then hourly, and batch
/// after batch while it has not caught up.
pub(crate) fn handle_timeout(ctx: &mut Ctx) {
    if !ctx.loaded.has(MODULE.name) || ctx.mam.expiring.is_some() {
        return;
    }
    let Some(due) = ctx.mam.next_expiry else {
        ctx.mam.next_expiry = Some(ctx.now + Duration::from_secs(60));
        return;
    };
    if due > ctx.now {
        return;
    }
    let kept = ctx.config.archive.expires_after;
    let before = micros(WallClock(ctx.clock.0.saturating_sub(kept)));
    let request = ctx.out.storage(StorageRequest::ExpireArchive {
        before,
        max: EXPIRY_BATCH,
    });
    ctx.mam.expiring = Some(request);
    ctx.mam.next_expiry = None;
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    if let Some(bytes) = ctx.mam.writes.remove(&request) {
        ctx.mam.writing -= bytes;
        return;
    }
    ctx.mam.expiring = None;
    let more = matches!(answer, StorageAnswer::Expired { more: true, .. });
    let wait = if more {
        Duration::from_secs(1)
    } else {
        EXPIRY_EVERY
    };
    ctx.mam.next_expiry = Some(ctx.now + wait);
}
