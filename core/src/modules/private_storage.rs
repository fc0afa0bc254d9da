//! Private XML storage (XEP-0049): fragments of XML an account's own
//! resources keep on the server, one per element name and namespace
//! (client preferences; legacy bookmarks, XEP-0048).
//!
//! Storing an element without children removes the fragment, as with
//! Prosody: reading it back gives that same empty element either way.
//! Bookmarks (`storage:bookmarks`) are kept by `bookmarks`, on PEP.

use super::{bookmarks, waiting, Addressee, Answer, IqHandler, Module, Request};
use crate::hub::Ctx;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{DocumentStore, StorageAnswer, StorageRequest};
use crate::xml::Element;

pub const NS: &str = "jabber:iq:private";

pub(crate) const MODULE: Module = Module {
    name: "private_storage",
    features: &[NS],
    iqs: &[IqHandler {
        to: Addressee::OwnAccount,
        name: "query",
        ns: NS,
        get: Some(get),
        set: Some(set),
    }],
    ..Module::NONE
};

/// A fragment's key: its element's name and namespace.
fn key(fragment: &Element) -> String {
    format!("{} {}", fragment.name(), fragment.ns())
}

/// The fragments of a query, or the error the XEP names: at least one,
/// each in a namespace of its own (section 2.3).
fn fragments(query: &Element) -> Result<Vec<&Element>, E> {
    let fragments: Vec<&Element> = query.children().collect();
    if fragments.is_empty() || fragments.iter().any(|f| f.ns() == NS) {
        return Err(E::NotAcceptable);
    }
    Ok(fragments)
}

/// Read one fragment (a client asks for one namespace at a time).
fn get(ctx: &mut Ctx, request: &Request) -> Answer {
    let fragment = match fragments(request.payload).as_deref() {
        Ok([one]) if bookmarks::converts(ctx, one) => return bookmarks::get(ctx, request),
        Ok([one]) => one.shallow(),
        Ok(_) => return Answer::Error(E::BadRequest),
        Err(condition) => return Answer::Error(*condition),
    };
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let load = StorageRequest::LoadDocument {
        user,
        store: DocumentStore::Private,
        key: key(&fragment),
    };
    waiting::ask(
        ctx,
        request,
        load,
        Some(fragment),
        |ctx, _, asked, answer| {
            let stored = match answer {
                StorageAnswer::Document(Some(text)) => {
                    crate::xml::parse_stanza(&text, ctx.config.xml)
                }
                StorageAnswer::Document(None) => asked.cloned(),
                _ => return Answer::Error(E::InternalServerError),
            };
            match stored {
                Some(fragment) => Answer::Result(Some(Element::new("query", NS).child(fragment))),
                // Stored under larger limits than today's.
                None => Answer::Error(E::InternalServerError),
            }
        },
    )
}

/// Store (or, empty, remove) each fragment, all or none; answered once
/// durable.
fn set(ctx: &mut Ctx, request: &Request) -> Answer {
    let fragments = match fragments(request.payload) {
        Ok(fragments) => fragments,
        Err(condition) => return Answer::Error(condition),
    };
    // Bookmarks live on their PEP node: one write there, alone (clients
    // store them in a query of their own).
    match fragments.iter().position(|f| bookmarks::converts(ctx, f)) {
        Some(_) if fragments.len() > 1 => return Answer::Error(E::NotAcceptable),
        Some(i) => return bookmarks::set(ctx, request, fragments[i]),
        None => {}
    }
    let limits = ctx.config.private_storage;
    if fragments.len() > limits.max_documents {
        return Answer::Error(E::ResourceConstraint);
    }
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Error(E::ServiceUnavailable);
    };
    let documents = fragments
        .into_iter()
        .map(|f| {
            let document = f.children().next().is_some() || !f.text_content().is_empty();
            (key(f), document.then(|| f.to_stream_string()))
        })
        .collect();
    let store = StorageRequest::StoreDocuments {
        user,
        store: DocumentStore::Private,
        documents,
        max_documents: limits.max_documents,
        max_bytes: limits.max_bytes,
    };
    waiting::ask(ctx, request, store, None, |_, _, _, answer| {
        waiting::written(answer)
    })
}
