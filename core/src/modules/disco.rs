//! Service discovery (XEP-0030) for the domain and for accounts, built
//! from the loaded modules' declarations.

use super::{Addressee, Answer, IqHandler, Module, Request};
use crate::hub::Ctx;
use crate::xml::Element;

pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

pub(crate) const MODULE: Module = Module {
    name: "disco",
    features: &[NS_INFO, NS_ITEMS],
    account_features: &[NS_INFO, NS_ITEMS],
    iqs: &[
        IqHandler {
            to: Addressee::Server,
            name: "query",
            ns: NS_INFO,
            get: Some(server_info),
            set: None,
        },
        IqHandler {
            to: Addressee::Account,
            name: "query",
            ns: NS_INFO,
            get: Some(account_info),
            set: None,
        },
        IqHandler {
            to: Addressee::Server,
            name: "query",
            ns: NS_ITEMS,
            get: Some(server_items),
            set: None,
        },
        IqHandler {
            to: Addressee::Account,
            name: "query",
            ns: NS_ITEMS,
            get: Some(items),
            set: None,
        },
    ],
    ..Module::NONE
};

/// The server's identity: category, type, name.
pub(crate) const SERVER_IDENTITY: (&str, &str, &str) = ("server", "im", "Rookery");

fn server_info(ctx: &mut Ctx, request: &Request) -> Answer {
    let (category, kind, name) = SERVER_IDENTITY;
    let identity = Element::new("identity", NS_INFO)
        .attr("category", category)
        .attr("type", kind)
        .attr("name", name);
    let mut query = info(request, vec![identity], &ctx.loaded.server_features);
    for form in &ctx.loaded.server_forms {
        query.push_child(form.clone());
    }
    Answer::Result(Some(query))
}

/// An account answers as one (`account/registered`), with the features
/// modules offer on its behalf.
fn account_info(ctx: &mut Ctx, request: &Request) -> Answer {
    let identity = Element::new("identity", NS_INFO)
        .attr("category", "account")
        .attr("type", "registered");
    let mut identities = vec![identity];
    for (category, kind) in &ctx.loaded.account_identities {
        let identity = Element::new("identity", NS_INFO)
            .attr("category", category)
            .attr("type", kind);
        identities.push(identity);
    }
    Answer::Result(Some(info(
        request,
        identities,
        &ctx.loaded.account_features,
    )))
}

fn info(request: &Request, identities: Vec<Element>, features: &[&str]) -> Element {
    let mut query = query(NS_INFO, request);
    for identity in identities {
        query.push_child(identity);
    }
    for feature in features {
        query.push_child(Element::new("feature", NS_INFO).attr("var", feature));
    }
    query
}

/// No items: Rookery has no components or nodes yet.
fn items(_: &mut Ctx, request: &Request) -> Answer {
    Answer::Result(Some(query(NS_ITEMS, request)))
}

/// The server's items: none (no components yet), but its ad-hoc
/// commands (XEP-0050) for those who may run them.
fn server_items(ctx: &mut Ctx, request: &Request) -> Answer {
    let mut query = query(NS_ITEMS, request);
    let commands = request.payload.get_attr("node") == Some(super::admin::NS);
    if commands && ctx.loaded.has(super::admin::MODULE.name) {
        let domain = match request.iq.get_attr("to") {
            Some(to) => to.to_owned(),
            None => ctx.config.domains.first().cloned().unwrap_or_default(),
        };
        for item in super::admin::items(ctx, request.session, &domain) {
            query.push_child(item);
        }
    }
    Answer::Result(Some(query))
}

fn query(ns: &'static str, request: &Request) -> Element {
    let mut query = Element::new("query", ns);
    if let Some(node) = request.payload.get_attr("node") {
        query.set_attr("node", node);
    }
    query
}
