//! vCard-based avatars (XEP-0153), as XEP-0398 section 4 asks of a
//! server converting avatars: an account's available presence carries
//! `<x xmlns='vcard-temp:x:update'><photo>SHA-1</photo></x>` naming its
//! avatar, so that clients reading avatars from vCards (and caching them
//! by hash) see it change, whichever way it was set.
//!
//! The hash is account data kept with the roster (it is read with the
//! roster at login, one more row, instead of the avatar node at every
//! presence): set from the metadata of each avatar published on PEP,
//! once durable, by a client or by the vCard conversion. An account that
//! never had an avatar keeps nothing and its presence is left alone, as
//! is a presence that already says something of its photo (an empty
//! `<x/>` means the client is not ready to say, section 4.2). Presence
//! sent before the change keeps the old hash until the client's next.

use super::avatar_conversion::METADATA;
use super::Module;
use crate::hub::Ctx;
use crate::roster::manager::{self, Op};
use crate::xml::Element;
use jid::BareJid;

pub const NS: &str = "vcard-temp:x:update";

pub(crate) const MODULE: Module = Module {
    name: "vcard_update",
    ..Module::NONE
};

/// A metadata item published on `owner`'s avatar node is durable: the
/// id (the SHA-1 of the image) of its first avatar kept on PEP is the
/// photo from now on; none (empty metadata, XEP-0084 section 4.2, or
/// only avatars kept elsewhere) an empty photo.
pub(crate) fn avatar_published(ctx: &mut Ctx, owner: &BareJid, metadata: &Element) {
    if !ctx.loaded.has(MODULE.name) {
        return;
    }
    // The avatar a vCard client can fetch: the first hosted on PEP, as
    // the conversion to the vCard takes it.
    let photo = metadata
        .children()
        .find(|i| i.is("info", METADATA) && i.get_attr("url").is_none())
        .and_then(|i| i.get_attr("id"))
        .unwrap_or_default();
    // Only the hex of a SHA-1 is a photo hash; anything else a client
    // put there is not repeated to its contacts.
    let photo = if photo.len() == 40 && photo.bytes().all(|b| b.is_ascii_hexdigit()) {
        photo.to_ascii_lowercase()
    } else {
        String::new()
    };
    manager::submit(
        ctx,
        owner,
        Op::Photo {
            photo: photo.into_boxed_str(),
        },
    );
}

/// Add the account's photo to an available presence it broadcasts.
pub(crate) fn stamp(ctx: &Ctx, presence: &mut Element, photo: Option<&str>) {
    let Some(photo) = photo else {
        return;
    };
    if !ctx.loaded.has(MODULE.name) || presence.get_child("x", NS).is_some() {
        return;
    }
    let mut element = Element::new("photo", NS);
    if !photo.is_empty() {
        element = element.text(photo);
    }
    presence.push_child(Element::new("x", NS).child(element));
}
