//! vcard-temp (XEP-0054): an account's vCard, set by its own resources
//! and read by anyone, as with Prosody: clients show the names and photos
//! of people they have not added yet (in group chats, in requests).
//!
//! Without a vCard, the account's own resources get `<item-not-found/>`
//! (section 3.1, Prosody's choice); anyone else gets
//! `<service-unavailable/>`, exactly what a missing account gets
//! (section 3.2), so that vCards cannot be used to list accounts.

use super::{waiting, Addressee, Answer, IqHandler, Module, Request};
use crate::hub::Ctx;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{DocumentStore, StorageAnswer, StorageRequest};
use crate::xml::Element;
use jid::{BareJid, Jid};

pub const NS: &str = "vcard-temp";

pub(crate) const MODULE: Module = Module {
    name: "vcard",
    features: &[NS],
    iqs: &[
        IqHandler {
            to: Addressee::OwnAccount,
            name: "vCard",
            ns: NS,
            get: Some(get_own),
            set: Some(set_own),
        },
        IqHandler {
            to: Addressee::Public,
            name: "vCard",
            ns: NS,
            get: Some(get_other),
            // Section 3.2: only the account itself may change it.
            set: Some(|_, _| Answer::Error(E::Forbidden)),
        },
    ],
    ..Module::NONE
};

/// The vCard is the only document of its store.
const KEY: &str = "";

fn load(user: BareJid) -> StorageRequest {
    StorageRequest::LoadDocument {
        user,
        store: DocumentStore::VCard,
        key: KEY.to_owned(),
    }
}

fn get_own(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    waiting::ask(ctx, request, load(user), None, |ctx, _, _, answer| {
        found(ctx, answer, E::ItemNotFound)
    })
}

fn get_other(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(Ok(to)) = request.iq.get_attr("to").map(Jid::new) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    waiting::ask(
        ctx,
        request,
        load(to.to_bare()),
        None,
        |ctx, _, _, answer| found(ctx, answer, E::ServiceUnavailable),
    )
}

/// The stored vCard, or `missing`.
fn found(ctx: &Ctx, answer: StorageAnswer, missing: E) -> Answer {
    match answer {
        StorageAnswer::Document(Some(text)) => {
            match crate::xml::parse_stanza(&text, ctx.config.xml) {
                Some(vcard) => Answer::Result(Some(vcard)),
                // Stored under larger limits than today's.
                None => Answer::Error(E::InternalServerError),
            }
        }
        StorageAnswer::Document(None) => Answer::Error(missing),
        _ => Answer::Error(E::InternalServerError),
    }
}

/// Replace the account's vCard; answered once durable.
fn set_own(ctx: &mut Ctx, request: &Request) -> Answer {
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let text = request.payload.to_stream_string();
    if text.len() > ctx.config.vcard.max_bytes {
        return Answer::Error(E::PolicyViolation);
    }
    super::avatar_conversion::vcard_set(ctx, &user);
    let store = StorageRequest::StoreDocuments {
        user,
        store: DocumentStore::VCard,
        documents: vec![(KEY.to_owned(), Some(text))],
        max_documents: 1,
        max_bytes: ctx.config.vcard.max_bytes,
    };
    // Its photo, kept to become the avatar once durable (XEP-0398).
    let card = request
        .payload
        .get_child("PHOTO", NS)
        .map(|photo| Element::new("vCard", NS).child(photo.clone()));
    waiting::ask(ctx, request, store, card, |ctx, session, card, answer| {
        let written = waiting::written(answer);
        if let (Answer::Result(_), Some(card), Some(user)) =
            (&written, card, ctx.account_of(session))
        {
            super::avatar_conversion::from_vcard(ctx, &user, card);
        }
        written
    })
}
