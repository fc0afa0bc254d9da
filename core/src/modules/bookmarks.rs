//! Bookmarks (XEP-0402), kept once: on the PEP node
//! `urn:xmpp:bookmarks:1`, one item per room. Clients that still keep
//! their bookmarks in private XML (XEP-0048 through XEP-0049) read and
//! write that same list, converted both ways as XEP-0402 section 5
//! describes (`#compat`), so a phone on XEP-0402 and a desktop on private
//! XML see the same rooms.
//!
//! As with Prosody, what private XML bookmarks have and XEP-0402 has
//! not (`<url>` bookmarks) is not kept; what XEP-0402 has and private
//! XML has not (`<extensions>`) survives a write by a legacy client.

use super::pep::{self, Access, Config, Item, Node, SendLast};
use super::{private_storage, waiting, Answer, Module, Request};
use crate::hub::Ctx;
use crate::session::SessionId;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{DocumentStore, StorageAnswer, StorageRequest};
use crate::xml::Element;
use jid::BareJid;

pub const NODE: &str = "urn:xmpp:bookmarks:1";
/// XEP-0048's bookmarks, as private XML keeps them.
pub const LEGACY: &str = "storage:bookmarks";

pub(crate) const MODULE: Module = Module {
    name: "bookmarks",
    account_features: &["urn:xmpp:bookmarks:1#compat"],
    ..Module::NONE
};

/// Whether private XML hands `fragment` to this module.
pub(crate) fn converts(ctx: &Ctx, fragment: &Element) -> bool {
    fragment.is("storage", LEGACY) && ctx.loaded.has(MODULE.name) && ctx.loaded.has("pep")
}

/// XEP-0402 section 3.2's node configuration.
fn config() -> Config {
    Config {
        access: Access::Whitelist,
        max_items: None,
        send_last: SendLast::Never,
        ..Config::default()
    }
}

/// A private XML get of `<storage xmlns='storage:bookmarks'/>`.
pub(crate) fn get(ctx: &mut Ctx, request: &Request) -> Answer {
    pep::read_own(ctx, request, NODE, |ctx, session, head, node| match node {
        Some(node) => answer(legacy(Some(&node))),
        None => stored_before(ctx, session, head),
    })
}

fn answer(storage: Element) -> Answer {
    Answer::Result(Some(
        Element::new("query", private_storage::NS).child(storage),
    ))
}

/// No bookmarks on PEP yet: what private XML kept before this server
/// converted them (an account from an older Rookery), until a client
/// next stores its bookmarks.
fn stored_before(ctx: &mut Ctx, session: SessionId, head: &Element) -> Answer {
    let Some(user) = ctx.account_of(session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let load = StorageRequest::LoadDocument {
        user,
        store: DocumentStore::Private,
        key: format!("storage {LEGACY}"),
    };
    let request = Request {
        session,
        iq: head,
        payload: head,
    };
    waiting::ask(ctx, &request, load, None, |ctx, _, _, stored| {
        let storage = match stored {
            StorageAnswer::Document(Some(text)) => {
                crate::xml::parse_stanza(&text, ctx.config.xml).filter(|s| s.is("storage", LEGACY))
            }
            StorageAnswer::Document(None) => Some(legacy(None)),
            _ => None,
        };
        storage.map_or(Answer::Error(E::InternalServerError), answer)
    })
}

/// A private XML set of the bookmarks: the node then holds exactly
/// these rooms.
pub(crate) fn set(ctx: &mut Ctx, request: &Request, storage: &Element) -> Answer {
    let mut items: Vec<Item> = Vec::new();
    for conference in storage.children().filter(|c| c.is("conference", LEGACY)) {
        let Some(item) = converted(conference) else {
            continue;
        };
        // A room bookmarked twice is one item: the last one wins.
        items.retain(|i| i.id != item.id);
        items.push(item);
    }
    pep::replace_own(ctx, request, NODE, config(), items, keep_extensions)
}

/// A legacy `<conference jid>` as an XEP-0402 item; `None` without a
/// room address.
fn converted(conference: &Element) -> Option<Item> {
    let room: BareJid = conference.get_attr("jid")?.parse().ok()?;
    let mut payload = Element::new("conference", NODE);
    if let Some(name) = conference.get_attr("name") {
        payload.set_attr("name", name);
    }
    if matches!(conference.get_attr("autojoin"), Some("true" | "1")) {
        payload.set_attr("autojoin", "true");
    }
    for part in ["nick", "password"] {
        if let Some(value) = conference.get_child(part, LEGACY) {
            payload.push_child(Element::new(part, NODE).text(&value.text_content()));
        }
    }
    Some(Item {
        id: room.to_string(),
        payload,
    })
}

/// The node's rooms as XEP-0048 `<storage/>`.
fn legacy(node: Option<&Node>) -> Element {
    let mut storage = Element::new("storage", LEGACY);
    for item in node.map(|n| n.items.as_slice()).unwrap_or_default() {
        let bookmark = &item.payload;
        if !bookmark.is("conference", NODE) {
            continue;
        }
        let mut conference = Element::new("conference", LEGACY).attr("jid", &item.id);
        if let Some(name) = bookmark.get_attr("name") {
            conference.set_attr("name", name);
        }
        let autojoin = matches!(bookmark.get_attr("autojoin"), Some("true" | "1"));
        conference.set_attr("autojoin", if autojoin { "true" } else { "false" });
        for part in ["nick", "password"] {
            if let Some(value) = bookmark.get_child(part, NODE) {
                conference.push_child(Element::new(part, LEGACY).text(&value.text_content()));
            }
        }
        storage.push_child(conference);
    }
    storage
}

/// What a legacy client cannot say survives its write.
fn keep_extensions(old: &Element, new: &mut Element) {
    if new.get_child("extensions", NODE).is_some() {
        return;
    }
    if let Some(extensions) = old.get_child("extensions", NODE) {
        new.push_child(extensions.clone());
    }
}
