//! Service discovery (XEP-0030) for the domain and for accounts.

use super::Handler;
use crate::xml::Element;

pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";

pub(crate) const SERVER_INFO: Handler = Handler {
    ns: NS_INFO,
    name: "query",
    get: |_, payload| {
        let mut query = info_query(payload).child(
            Element::new("identity", NS_INFO)
                .attr("category", "server")
                .attr("type", "im")
                .attr("name", "Rookery"),
        );
        for feature in super::server_features() {
            query.push_child(Element::new("feature", NS_INFO).attr("var", feature));
        }
        Ok(Some(query))
    },
};

pub(crate) const ACCOUNT_INFO: Handler = Handler {
    ns: NS_INFO,
    name: "query",
    get: |_, payload| {
        let mut query = info_query(payload).child(
            Element::new("identity", NS_INFO)
                .attr("category", "account")
                .attr("type", "registered"),
        );
        for h in super::ACCOUNT {
            query.push_child(Element::new("feature", NS_INFO).attr("var", h.ns));
        }
        Ok(Some(query))
    },
};

/// No items: Rookery has no components or nodes yet.
pub(crate) const ITEMS: Handler = Handler {
    ns: NS_ITEMS,
    name: "query",
    get: |_, payload| {
        let mut query = Element::new("query", NS_ITEMS);
        if let Some(node) = payload.get_attr("node") {
            query.set_attr("node", node);
        }
        Ok(Some(query))
    },
};

fn info_query(payload: &Element) -> Element {
    let mut query = Element::new("query", NS_INFO);
    if let Some(node) = payload.get_attr("node") {
        query.set_attr("node", node);
    }
    query
}
