//! One avatar for old and new clients (XEP-0398): a photo set in the
//! vCard (XEP-0054, XEP-0153) is published as the account's avatar on
//! PEP (XEP-0084), and an avatar published on PEP becomes the vCard's
//! photo. Both nodes are open, as vCards are.
//!
//! Conversions the server makes do not convert back, and one that
//! cannot be done (storage too busy, a vCard past its limit) is skipped:
//! the client's own write stands either way.

use super::pep::{self, Access, Item, Node, Setting};
use super::vcard;
use super::Module;
use crate::hub::Ctx;
use crate::storage::{DocumentStore, RequestId, StorageAnswer, StorageRequest};
use crate::xml::Element;
use base64::Engine;
use jid::BareJid;
use sha1::{Digest, Sha1};
use std::collections::HashMap;

pub const NS: &str = "urn:xmpp:pep-vcard-conversion:0";
pub const DATA: &str = "urn:xmpp:avatar:data";
pub const METADATA: &str = "urn:xmpp:avatar:metadata";

pub(crate) const MODULE: Module = Module {
    name: "avatar_conversion",
    account_features: &[NS],
    ..Module::NONE
};

/// Conversions from PEP to the vCard waiting for storage.
#[derive(Default)]
pub(crate) struct Conversions {
    requests: HashMap<RequestId, Step>,
    /// Accounts whose vCard a conversion is reading: how many, and
    /// whether a client has set the vCard since (the conversion would
    /// then write back what it read over the client's acknowledged
    /// write, so it gives way).
    reading: HashMap<BareJid, (u32, bool)>,
}

impl Conversions {
    pub fn owns(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }
}

/// Where a conversion to the vCard is.
enum Step {
    /// The avatar's data node was read: the item `id` is the photo.
    Data {
        owner: BareJid,
        id: String,
        mime: String,
    },
    /// The vCard was read: it gets this photo (`None`: no photo).
    VCard {
        owner: BareJid,
        photo: Option<Element>,
    },
    /// The vCard was written.
    Written,
}

fn loaded(ctx: &Ctx) -> bool {
    ctx.loaded.has(MODULE.name) && ctx.loaded.has("pep") && ctx.loaded.has("vcard")
}

/// A client set `user`'s vCard (now durable): its photo, if any, is
/// published as the account's avatar.
pub(crate) fn from_vcard(ctx: &mut Ctx, user: &BareJid, card: &Element) {
    if !loaded(ctx) {
        return;
    }
    // Without a PHOTO the vCard says nothing of an avatar.
    let Some(photo) = card.get_child("PHOTO", vcard::NS) else {
        return;
    };
    let photo = Some(photo);
    let binval = photo
        .and_then(|p| p.get_child("BINVAL", vcard::NS))
        .map(|b| b.text_content())
        .map(|b| b.split_whitespace().collect::<String>());
    let open = || vec![Setting::Access(Access::Open)];
    let Some(binval) = binval.filter(|b| !b.is_empty()) else {
        // A photo elsewhere (EXTVAL) is not one PEP can carry.
        if photo.is_some_and(|p| p.get_child("EXTVAL", vcard::NS).is_some()) {
            return;
        }
        // An empty photo: no avatar (XEP-0084 section 4.2).
        let empty = Item {
            id: "current".to_owned(),
            payload: Element::new("metadata", METADATA),
        };
        pep::publish_as_server(ctx, user.clone(), METADATA, empty, open());
        return;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&binval) else {
        return;
    };
    let mime = photo
        .and_then(|p| p.get_child("TYPE", vcard::NS))
        .map(|t| t.text_content())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "image/png".to_owned());
    let id = hex(&Sha1::digest(&bytes));
    let data = Item {
        id: id.clone(),
        payload: Element::new("data", DATA).text(&binval),
    };
    let info = Element::new("info", METADATA)
        .attr("bytes", &bytes.len().to_string())
        .attr("id", &id)
        .attr("type", &mime);
    let metadata = Item {
        id,
        payload: Element::new("metadata", METADATA).child(info),
    };
    pep::publish_as_server(ctx, user.clone(), DATA, data, open());
    pep::publish_as_server(ctx, user.clone(), METADATA, metadata, open());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client published `metadata` on `owner`'s avatar node (now
/// durable): the photo it names becomes the vCard's.
pub(crate) fn from_pep(ctx: &mut Ctx, owner: &BareJid, metadata: &Element) {
    if !loaded(ctx) || ctx.avatars.requests.len() >= ctx.config.max_offline_in_flight {
        return;
    }
    // The first image, if any (section 4 of XEP-0084: PNG first).
    let infos: Vec<&Element> = metadata
        .children()
        .filter(|i| i.is("info", METADATA))
        .collect();
    if infos.is_empty() {
        // Avatar disabled: no photo either.
        return read_vcard(ctx, owner.clone(), None);
    }
    // Only an image stored here can go in the vCard.
    let Some(info) = infos.into_iter().find(|i| i.get_attr("url").is_none()) else {
        return;
    };
    let (Some(id), Some(mime)) = (info.get_attr("id"), info.get_attr("type")) else {
        return;
    };
    let load = StorageRequest::LoadDocument {
        user: owner.clone(),
        store: DocumentStore::Pep,
        key: DATA.to_owned(),
    };
    let request = ctx.out.storage(load);
    let step = Step::Data {
        owner: owner.clone(),
        id: id.to_owned(),
        mime: mime.to_owned(),
    };
    ctx.avatars.requests.insert(request, step);
}

fn read_vcard(ctx: &mut Ctx, owner: BareJid, photo: Option<Element>) {
    let load = StorageRequest::LoadDocument {
        user: owner.clone(),
        store: DocumentStore::VCard,
        key: String::new(),
    };
    let request = ctx.out.storage(load);
    ctx.avatars.reading.entry(owner.clone()).or_default().0 += 1;
    ctx.avatars
        .requests
        .insert(request, Step::VCard { owner, photo });
}

/// A client is setting `user`'s vCard: a conversion reading it now
/// gives way.
pub(crate) fn vcard_set(ctx: &mut Ctx, user: &BareJid) {
    if let Some((_, dirty)) = ctx.avatars.reading.get_mut(user) {
        *dirty = true;
    }
}

/// A conversion's read of `owner`'s vCard came back: whether a client
/// set the vCard meanwhile.
fn overtaken(ctx: &mut Ctx, owner: &BareJid) -> bool {
    let Some((count, dirty)) = ctx.avatars.reading.get_mut(owner) else {
        return false;
    };
    let overtaken = *dirty;
    *count -= 1;
    if *count == 0 {
        ctx.avatars.reading.remove(owner);
    }
    overtaken
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    let Some(step) = ctx.avatars.requests.remove(&request) else {
        return;
    };
    match (step, answer) {
        (Step::Data { owner, id, mime }, StorageAnswer::Document(Some(text))) => {
            let Some(node) = Node::from_document(&text, pep::stored_limits(ctx)) else {
                return;
            };
            let Some(item) = node.items.iter().find(|i| i.id == id) else {
                return;
            };
            let photo = Element::new("PHOTO", vcard::NS)
                .child(Element::new("TYPE", vcard::NS).text(&mime))
                .child(Element::new("BINVAL", vcard::NS).text(&item.payload.text_content()));
            read_vcard(ctx, owner, Some(photo));
        }
        (Step::VCard { owner, photo }, answer) => {
            if overtaken(ctx, &owner) {
                return;
            }
            let mut card = match answer {
                StorageAnswer::Document(None) => Element::new("vCard", vcard::NS),
                // A vCard that does not read back is left as it is.
                StorageAnswer::Document(Some(text)) => {
                    match crate::xml::parse_stanza(&text, ctx.config.xml) {
                        Some(card) if card.is("vCard", vcard::NS) => card,
                        _ => return,
                    }
                }
                _ => return,
            };
            let had_photo = card.remove_children("PHOTO", vcard::NS);
            if photo.is_none() && !had_photo {
                return;
            }
            if let Some(photo) = photo {
                card.push_child(photo);
            }
            let text = card.to_stream_string();
            if text.len() > ctx.config.vcard.max_bytes {
                return;
            }
            let store = StorageRequest::StoreDocuments {
                user: owner,
                store: DocumentStore::VCard,
                documents: vec![(String::new(), Some(text))],
                max_documents: 1,
                max_bytes: ctx.config.vcard.max_bytes,
            };
            let request = ctx.out.storage(store);
            ctx.avatars.requests.insert(request, Step::Written);
        }
        // Nothing to convert, or storage failed: the client's own write
        // stands.
        _ => {}
    }
}
