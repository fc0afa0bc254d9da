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
use std::time::{Duration, Instant};

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
/// go, the disco#info queries that will tell, and what each available
/// resource follows.
#[derive(Default)]
pub(crate) struct Capabilities {
    /// Verified hashes (`ver`), with the nodes each asks notifications
    /// of; the oldest learnt is forgotten first. Only a shortcut: what a
    /// resource follows is kept with the resource (`followed`), so a flood
    /// of new hashes costs others a question, never their notifications.
    known: HashMap<String, NotifyNodes>,
    learnt: VecDeque<String>,
    /// Hashes being asked about, each of one of the sessions showing it;
    /// a session waits for one at most: the one `pending` names.
    asking: HashMap<String, Asking>,
    pending: HashMap<SessionId, String>,
    /// The nodes each resource whose capabilities are known follows
    /// (shared with `known`: a pointer per resource).
    followed: HashMap<SessionId, NotifyNodes>,
}

/// A query's id names the hash it asks about, so that an answer finds
/// its query at once, however many are out.
const QUERY_ID: &str = "caps ";

struct Asking {
    /// Who was asked, and when: one of `waiting`.
    asked: SessionId,
    since: Instant,
    /// Sessions showing this hash, waiting to learn what it stands for.
    waiting: Vec<SessionId>,
}

/// A client slower than this to say what its hash stands for is passed
/// over: the next resource showing the hash is asked instead.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The nodes a resource follows, once its capabilities are known.
    pub fn followed(&self, session: SessionId) -> Option<&NotifyNodes> {
        self.followed.get(&session)
    }
}

/// What `session`'s current capabilities ask notifications of, and
/// what it followed before: known now, or asked of its client (or of
/// another showing the same hash) and passed to `pep::caps_learnt` once
/// answered and verified.
pub(crate) fn learn(
    ctx: &mut Ctx,
    session: SessionId,
) -> Option<(NotifyNodes, Option<NotifyNodes>)> {
    // A session waits for one answer at most, whatever hashes it shows.
    forget(ctx, session);
    let advertised = ctx
        .sessions
        .get(session)
        .and_then(|s| s.presence.as_ref())
        .and_then(advertised)
        .map(|(ver, node)| (ver.to_owned(), node.to_owned()));
    let Some((ver, node)) = advertised else {
        ctx.caps.followed.remove(&session);
        return None;
    };
    if let Some(nodes) = ctx.caps.known.get(&ver).cloned() {
        let before = ctx.caps.followed.insert(session, nodes.clone());
        return Some((nodes, before));
    }
    let now = ctx.now;
    if let Some(asking) = ctx.caps.asking.get_mut(&ver) {
        asking.waiting.push(session);
        ctx.caps.pending.insert(session, ver.clone());
        if now.saturating_duration_since(asking.since) < QUERY_TIMEOUT {
            return None;
        }
        // The one asked never answered: this one is asked instead.
        asking.asked = session;
        asking.since = now;
    } else {
        let asking = Asking {
            asked: session,
            since: now,
            waiting: vec![session],
        };
        ctx.caps.pending.insert(session, ver.clone());
        ctx.caps.asking.insert(ver.clone(), asking);
    }
    ask(ctx, &ver, &node);
    None
}

/// Send the disco#info query the hash `ver` waits for.
fn ask(ctx: &mut Ctx, ver: &str, node: &str) {
    let Some(asking) = ctx.caps.asking.get(ver) else {
        return;
    };
    let (id, asked) = (format!("{QUERY_ID}{ver}"), asking.asked);
    let Some(s) = ctx.sessions.get(asked) else {
        return;
    };
    let query = Element::new("iq", crate::ns::CLIENT)
        .attr("type", "get")
        .attr("id", &id)
        .attr("from", s.jid.domain().as_str())
        .attr("to", s.jid.as_str())
        .child(Element::new("query", NS_INFO).attr("node", &format!("{node}#{ver}")));
    ctx.deliver(asked, &query);
}

/// An iq result or error for the server from `session`: the answer to a
/// capabilities query, if it is one. Verified (section 5.4), the hash is
/// remembered and the sessions showing it learn what it asks for; a
/// wrong answer or an error teaches nothing, and the next resource
/// showing the hash is asked.
pub(crate) fn answered(ctx: &mut Ctx, session: SessionId, iq: &Element) {
    let Some(ver) = iq
        .get_attr("id")
        .and_then(|id| id.strip_prefix(QUERY_ID))
        .filter(|ver| {
            ctx.caps
                .asking
                .get(*ver)
                .is_some_and(|a| a.asked == session)
        })
        .map(str::to_owned)
    else {
        return;
    };
    let nodes = iq
        .get_child("query", NS_INFO)
        .filter(|_| !is_error(iq))
        .and_then(|query| verified(query, &ver, ctx.config.pep.max_notify_nodes));
    let Some(nodes) = nodes else {
        // Not this one: ask another showing the same hash, if any.
        forget(ctx, session);
        return;
    };
    let Some(asking) = ctx.caps.asking.remove(&ver) else {
        return;
    };
    if ctx.caps.known.len() >= ctx.config.pep.max_known_caps {
        if let Some(oldest) = ctx.caps.learnt.pop_front() {
            ctx.caps.known.remove(&oldest);
        }
    }
    ctx.caps.known.insert(ver.clone(), nodes.clone());
    ctx.caps.learnt.push_back(ver);
    for waiting in asking.waiting {
        ctx.caps.pending.remove(&waiting);
        let before = ctx.caps.followed.insert(waiting, nodes.clone());
        crate::modules::pep::caps_learnt(ctx, waiting, &nodes, before);
    }
}

/// The `+notify` nodes of a disco#info answer that hashes to `ver`.
/// Section 5.4: no value may hold `<` (or different answers could hash
/// alike), and no identity or feature may come twice.
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
    let texts = identities
        .iter()
        .flat_map(|(c, t, l, n)| [c.as_str(), t, l, n])
        .chain(features.iter().copied());
    let form_texts: Vec<String> = forms.iter().flat_map(form_fields_flat).collect();
    if texts
        .chain(form_texts.iter().map(String::as_str))
        .any(|t| t.contains('<'))
        || has_duplicates(&identities)
        || has_duplicates(&features)
    {
        return None;
    }
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

/// Every text of a form that goes into the hash.
fn form_fields_flat(form: &Element) -> Vec<String> {
    let (form_type, fields) = form_fields(form);
    let mut texts = vec![form_type];
    for (var, values) in fields {
        texts.push(var);
        texts.extend(values);
    }
    texts
}

fn has_duplicates<T: Ord + Clone>(items: &[T]) -> bool {
    let mut sorted = items.to_vec();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// A session ends: it waits for no answer and follows nothing.
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    forget(ctx, session);
    ctx.caps.followed.remove(&session);
}

/// The session waits for no answer; if it was the one asked, the next
/// one waiting is asked instead.
fn forget(ctx: &mut Ctx, session: SessionId) {
    let Some(ver) = ctx.caps.pending.remove(&session) else {
        return;
    };
    let Some(asking) = ctx.caps.asking.get_mut(&ver) else {
        return;
    };
    asking.waiting.retain(|s| *s != session);
    if asking.asked != session {
        return;
    }
    let Some(next) = asking.waiting.first().copied() else {
        ctx.caps.asking.remove(&ver);
        return;
    };
    asking.asked = next;
    asking.since = ctx.now;
    let node = ctx
        .sessions
        .get(next)
        .and_then(|s| s.presence.as_ref())
        .and_then(advertised)
        .map(|(_, node)| node.to_owned());
    match node {
        Some(node) => ask(ctx, &ver, &node),
        None => {
            // Cannot happen (a waiting session shows this hash); if it
            // did, nobody would be left waiting for nothing.
            if let Some(asking) = ctx.caps.asking.remove(&ver) {
                for waiting in asking.waiting {
                    ctx.caps.pending.remove(&waiting);
                }
            }
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
