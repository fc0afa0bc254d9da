//! Entity Capabilities (XEP-0115), both ways: the server's own hash in
//! the stream features, so that a client that saw this server before (or
//! this version of it) need not ask again; and what clients' hashes
//! stand for, learnt once per hash, so that personal eventing (XEP-0163)
//! sends each resource only the notifications it asks for (`+notify`).

use super::Module;
use crate::hub::Ctx;
use crate::modules::disco::NS_INFO;
use crate::session::SessionId;
use crate::stanza::is_error;
use crate::xml::Element;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub const NS: &str = "http://jabber.org/protocol/caps";
/// Where the hash's inputs can be asked for: `node#ver`.
pub const NODE: &str = "https://rookery.chat";

/// Its stream feature is built by `Loaded` from what the other modules
/// declare (see [`feature`]).
pub(crate) const MODULE: Module = Module {
    name: "caps",
    ..Module::NONE
};

/// `<c/>` for a server whose disco#info has this `identity`
/// (category, type, name), these `features` and these extended `forms`.
pub(crate) fn feature(
    identity: (&str, &str, &str),
    features: &[&str],
    forms: &[Element],
) -> Element {
    Element::new("c", NS)
        .attr("hash", "sha-1")
        .attr("node", NODE)
        .attr("ver", &verification(identity, features, forms))
}

/// An identity as the hash sees it: category, type, `xml:lang`, name.
type Identity = (String, String, String, String);

/// XEP-0115 section 5.1: the verification string.
fn verification(identity: (&str, &str, &str), features: &[&str], forms: &[Element]) -> String {
    let (category, kind, name) = identity;
    let identity = (category.into(), kind.into(), String::new(), name.into());
    hash(&[identity], features, forms)
}

fn hash(identities: &[Identity], features: &[&str], forms: &[Element]) -> String {
    let mut identities = identities.to_vec();
    identities.sort();
    let mut s = String::new();
    for (category, kind, lang, name) in identities {
        s.push_str(&format!("{category}/{kind}/{lang}/{name}<"));
    }
    let mut features = features.to_vec();
    features.sort_unstable();
    for feature in features {
        s.push_str(feature);
        s.push('<');
    }
    let mut forms: Vec<Form> = forms.iter().map(form_fields).collect();
    forms.sort();
    for (form_type, fields) in forms {
        s.push_str(&form_type);
        s.push('<');
        for (var, values) in fields {
            s.push_str(&var);
            s.push('<');
            for value in values {
                s.push_str(&value);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// A field's `var` and values.
type Field = (String, Vec<String>);
/// A form's FORM_TYPE and other fields.
type Form = (String, Vec<Field>);

/// A data form's FORM_TYPE, and its other fields sorted by `var`, each
/// with its values sorted.
fn form_fields(form: &Element) -> Form {
    const DATA: &str = "jabber:x:data";
    let mut form_type = String::new();
    let mut fields = Vec::new();
    for field in form.children().filter(|c| c.is("field", DATA)) {
        let var = field.get_attr("var").unwrap_or_default().to_owned();
        let mut values: Vec<String> = field
            .children()
            .filter(|v| v.is("value", DATA))
            .map(Element::text_content)
            .collect();
        if var == "FORM_TYPE" {
            form_type = values.pop().unwrap_or_default();
            continue;
        }
        values.sort();
        fields.push((var, values));
    }
    fields.sort();
    (form_type, fields)
}

/// The nodes a client asks notifications of, by the nodes' names
/// (features `node+notify`), sorted.
pub(crate) type NotifyNodes = Arc<[String]>;

/// What clients' capability hashes stand for, as far as notifications
/// go, and the disco#info queries that will tell.
#[derive(Default)]
pub(crate) struct Capabilities {
    /// Verified hashes (`ver`), with the nodes each asks notifications
    /// of; the oldest learnt is forgotten first.
    known: HashMap<String, NotifyNodes>,
    learnt: VecDeque<String>,
    /// Hashes being asked about, each of one of the sessions showing it.
    asking: HashMap<String, Asking>,
    queries: u64,
}

struct Asking {
    /// The query's id.
    id: String,
    /// Who was asked: the first of `waiting`.
    asked: SessionId,
    /// Sessions showing this hash, waiting to learn what it stands for,
    /// and what each followed before.
    waiting: Vec<(SessionId, Option<NotifyNodes>)>,
}

/// The hash in a presence's `<c/>`: its `ver`, and where to ask about it
/// (`node#ver`). Only SHA-1, the hash every client uses, is checked.
pub(crate) fn advertised(presence: &Element) -> Option<(&str, &str)> {
    let c = presence.get_child("c", NS)?;
    if c.get_attr("hash") != Some("sha-1") {
        return None;
    }
    Some((c.get_attr("ver")?, c.get_attr("node")?))
}

impl Capabilities {
    /// The nodes a resource showing this presence asks notifications
    /// of, if its hash is known.
    pub fn notify_nodes(&self, presence: &Element) -> Option<NotifyNodes> {
        let (ver, _) = advertised(presence)?;
        self.known_nodes(ver)
    }

    /// The nodes a known hash asks notifications of.
    pub fn known_nodes(&self, ver: &str) -> Option<NotifyNodes> {
        self.known.get(ver).cloned()
    }
}

/// What `session`'s capabilities ask notifications of: known now, or
/// asked of its client (or of another showing the same hash) and passed
/// to `personal_eventing::caps_learnt` once answered and verified.
pub(crate) fn learn(
    ctx: &mut Ctx,
    session: SessionId,
    followed: Option<NotifyNodes>,
) -> Option<NotifyNodes> {
    // A session waits for one answer at most, whatever hashes it shows.
    forget(ctx, session);
    let s = ctx.sessions.get(session)?;
    let presence = s.presence.as_ref()?;
    let (ver, node) = advertised(presence)?;
    if let Some(nodes) = ctx.caps.known.get(ver) {
        return Some(nodes.clone());
    }
    if let Some(asking) = ctx.caps.asking.get_mut(ver) {
        asking.waiting.push((session, followed));
        return None;
    }
    // A flood of made-up hashes asks no more than this at once.
    if ctx.caps.asking.len() >= ctx.config.pep.max_known_caps {
        return None;
    }
    let (ver, node) = (ver.to_owned(), node.to_owned());
    ctx.caps.queries += 1;
    let id = format!("caps{}", ctx.caps.queries);
    let asking = Asking {
        id,
        asked: session,
        waiting: vec![(session, followed)],
    };
    ask(ctx, &asking, &ver, &node);
    ctx.caps.asking.insert(ver, asking);
    None
}

/// Send the disco#info query that `asking` waits for.
fn ask(ctx: &mut Ctx, asking: &Asking, ver: &str, node: &str) {
    let Some(s) = ctx.sessions.get(asking.asked) else {
        return;
    };
    let query = Element::new("iq", crate::ns::CLIENT)
        .attr("type", "get")
        .attr("id", &asking.id)
        .attr("from", s.jid.domain().as_str())
        .attr("to", s.jid.as_str())
        .child(Element::new("query", NS_INFO).attr("node", &format!("{node}#{ver}")));
    ctx.deliver(asking.asked, &query);
}

/// An iq result or error for the server from `session`: the answer to a
/// capabilities query, if it is one. Verified (section 5.4), the hash is
/// remembered and the sessions showing it learn what it asks for; a
/// wrong answer teaches nothing.
pub(crate) fn answered(ctx: &mut Ctx, session: SessionId, iq: &Element) {
    let Some(id) = iq.get_attr("id") else {
        return;
    };
    let Some(ver) = ctx
        .caps
        .asking
        .iter()
        .find(|(_, a)| a.id == id && a.asked == session)
        .map(|(ver, _)| String::clone(ver))
    else {
        return;
    };
    let Some(asking) = ctx.caps.asking.remove(&ver) else {
        return;
    };
    let Some(query) = iq.get_child("query", NS_INFO).filter(|_| !is_error(iq)) else {
        return;
    };
    let Some(nodes) = verified(query, &ver, ctx.config.pep.max_notify_nodes) else {
        return;
    };
    if ctx.caps.known.len() >= ctx.config.pep.max_known_caps {
        if let Some(oldest) = ctx.caps.learnt.pop_front() {
            ctx.caps.known.remove(&oldest);
        }
    }
    ctx.caps.known.insert(ver.clone(), nodes.clone());
    ctx.caps.learnt.push_back(ver);
    for (waiting, followed) in asking.waiting {
        crate::modules::pep::caps_learnt(ctx, waiting, &nodes, followed);
    }
}

/// The `+notify` nodes of a disco#info answer that hashes to `ver`.
fn verified(query: &Element, ver: &str, max_nodes: usize) -> Option<NotifyNodes> {
    let identities: Vec<Identity> = query
        .children()
        .filter(|c| c.is("identity", NS_INFO))
        .map(|i| {
            let attr = |name| i.get_attr(name).unwrap_or_default().to_owned();
            (
                attr("category"),
                attr("type"),
                attr("xml:lang"),
                attr("name"),
            )
        })
        .collect();
    let features: Vec<&str> = query
        .children()
        .filter(|c| c.is("feature", NS_INFO))
        .filter_map(|f| f.get_attr("var"))
        .collect();
    let forms: Vec<Element> = query
        .children()
        .filter(|c| c.is("x", "jabber:x:data"))
        .cloned()
        .collect();
    if hash(&identities, &features, &forms) != ver {
        return None;
    }
    let mut nodes: Vec<String> = features
        .iter()
        .filter_map(|f| f.strip_suffix("+notify"))
        .map(str::to_owned)
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.truncate(max_nodes);
    Some(nodes.into())
}

/// A session ends: it waits for no answer.
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    forget(ctx, session);
}

/// The session waits for no answer; if it was the one asked, the next
/// one waiting is asked instead.
fn forget(ctx: &mut Ctx, session: SessionId) {
    if ctx.caps.asking.is_empty() {
        return;
    }
    let mut again: Vec<String> = Vec::new();
    ctx.caps.asking.retain(|ver, asking| {
        asking.waiting.retain(|(s, _)| *s != session);
        if asking.asked == session {
            let Some((next, _)) = asking.waiting.first() else {
                return false;
            };
            asking.asked = *next;
            again.push(String::clone(ver));
        }
        true
    });
    for ver in again {
        let Some(asking) = ctx.caps.asking.remove(&ver) else {
            continue;
        };
        let node = ctx
            .sessions
            .get(asking.asked)
            .and_then(|s| s.presence.as_ref())
            .and_then(advertised)
            .map(|(_, node)| node.to_owned());
        if let Some(node) = node {
            ask(ctx, &asking, &ver, &node);
            ctx.caps.asking.insert(ver, asking);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0115 section 5.2's simple example.
    #[test]
    fn the_simple_example_of_the_xep_hashes_as_published() {
        let features = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
        ];
        assert_eq!(
            verification(("client", "pc", "Exodus 0.9.1"), &features, &[]),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }
}
