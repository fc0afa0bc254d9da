//! A personal eventing node: the part of XEP-0060 that XEP-0163 needs.
//! Its configuration (who may see it, how many items it keeps), its
//! items, oldest first, and the one document it is stored as.

use crate::stanza::StanzaErrorCondition as E;
use crate::xml::{Element, XmlLimits};

pub const NS: &str = "http://jabber.org/protocol/pubsub";
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
const NS_DATA: &str = "jabber:x:data";
const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// How a node is stored; not on the wire.
const NS_STORED: &str = "urn:rookery:pep:0";

/// Who may see a node's items (XEP-0060 section 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// Contacts subscribed to the owner's presence (PEP's default).
    Presence,
    /// Contacts in one of the roster groups the node names.
    Roster,
    /// Only the owner.
    Whitelist,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Presence => "presence",
            Access::Roster => "roster",
            Access::Whitelist => "whitelist",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Access::Open,
            Access::Presence,
            Access::Roster,
            Access::Whitelist,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

/// When the last item goes to a subscriber without being asked
/// (`pubsub#send_last_published_item`). PEP subscribes contacts by
/// presence, so only `on_sub_and_presence` sends it when one comes
/// online.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendLast {
    Never,
    OnSub,
    OnSubAndPresence,
}

impl SendLast {
    fn name(self) -> &'static str {
        match self {
            SendLast::Never => "never",
            SendLast::OnSub => "on_sub",
            SendLast::OnSubAndPresence => "on_sub_and_presence",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [SendLast::Never, SendLast::OnSub, SendLast::OnSubAndPresence]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// A node's configuration. The defaults are Prosody's for PEP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub access: Access,
    /// `pubsub#roster_groups_allowed`, for [`Access::Roster`].
    pub groups: Vec<String>,
    /// Items kept; `None`: as many as the server allows (`max`).
    pub max_items: Option<usize>,
    /// Without persistence a node still keeps its last item, which is
    /// what contacts coming online are sent.
    pub persist: bool,
    pub send_last: SendLast,
    pub notify_retract: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access: Access::Presence,
            groups: Vec::new(),
            max_items: Some(1),
            persist: true,
            send_last: SendLast::OnSubAndPresence,
            notify_retract: true,
        }
    }
}

/// One configuration option, as a form sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    Access(Access),
    Groups(Vec<String>),
    MaxItems(Option<usize>),
    Persist(bool),
    SendLast(SendLast),
    NotifyRetract(bool),
}

impl Config {
    /// The items this node keeps, under the server's cap.
    pub fn kept(&self, cap: usize) -> usize {
        let asked = if self.persist {
            self.max_items
        } else {
            Some(1)
        };
        asked.map_or(cap, |n| n.min(cap))
    }

    pub fn apply(&mut self, options: &[Setting]) {
        for option in options {
            match option {
                Setting::Access(a) => self.access = *a,
                Setting::Groups(g) => self.groups.clone_from(g),
                Setting::MaxItems(m) => self.max_items = *m,
                Setting::Persist(p) => self.persist = *p,
                Setting::SendLast(s) => self.send_last = *s,
                Setting::NotifyRetract(n) => self.notify_retract = *n,
            }
        }
    }

    /// Whether the node is configured as `options` ask (XEP-0060 section
    /// 7.1.5: publish-options are preconditions on an existing node).
    pub fn satisfies(&self, options: &[Setting]) -> bool {
        let mut wanted = self.clone();
        wanted.apply(options);
        wanted == *self
    }

    /// The `pubsub#node_config` form (section 8.2), filled in.
    pub fn form(&self) -> Element {
        let bool_ = |b: bool| if b { "1" } else { "0" };
        let max_items = self
            .max_items
            .map_or_else(|| "max".to_owned(), |n| n.to_string());
        let mut form = Element::new("x", NS_DATA).attr("type", "form").child(field(
            "FORM_TYPE",
            "hidden",
            &[NODE_CONFIG],
        ));
        form.push_child(list_field(
            "pubsub#access_model",
            self.access.name(),
            &["open", "presence", "roster", "whitelist"],
        ));
        let groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        form.push_child(field("pubsub#roster_groups_allowed", "list-multi", &groups));
        form.push_child(field("pubsub#max_items", "text-single", &[&max_items]));
        form.push_child(field(
            "pubsub#persist_items",
            "boolean",
            &[bool_(self.persist)],
        ));
        form.push_child(list_field(
            "pubsub#send_last_published_item",
            self.send_last.name(),
            &["never", "on_sub", "on_sub_and_presence"],
        ));
        form.push_child(field(
            "pubsub#notify_retract",
            "boolean",
            &[bool_(self.notify_retract)],
        ));
        form
    }
}

fn field(var: &str, kind: &str, values: &[&str]) -> Element {
    let mut field = Element::new("field", NS_DATA)
        .attr("var", var)
        .attr("type", kind);
    for value in values {
        field.push_child(Element::new("value", NS_DATA).text(value));
    }
    field
}

fn list_field(var: &str, value: &str, options: &[&str]) -> Element {
    let mut field = field(var, "list-single", &[value]);
    for option in options {
        field.push_child(
            Element::new("option", NS_DATA).child(Element::new("value", NS_DATA).text(option)),
        );
    }
    field
}

/// The options a submitted form sets: `publish-options` or a node
/// configuration (`form_type`). Fields this server does not know are
/// left alone, as Prosody does; a known one with a value it cannot
/// take is `<not-acceptable/>`, and so is a `max_items` above `cap`.
pub fn options(form: &Element, publish: bool, cap: usize) -> Result<Vec<Setting>, E> {
    let form_type = if publish {
        PUBLISH_OPTIONS
    } else {
        NODE_CONFIG
    };
    if !form.is("x", NS_DATA) {
        return Err(E::BadRequest);
    }
    let mut options = Vec::new();
    for f in form.children().filter(|c| c.is("field", NS_DATA)) {
        let values: Vec<String> = f
            .children()
            .filter(|v| v.is("value", NS_DATA))
            .map(Element::text_content)
            .collect();
        let one = values.first().map(|v| v.trim()).unwrap_or_default();
        let option = match f.get_attr("var").unwrap_or_default() {
            "FORM_TYPE" if one == form_type => continue,
            "FORM_TYPE" => return Err(E::BadRequest),
            "pubsub#access_model" => Setting::Access(Access::parse(one).ok_or(E::NotAcceptable)?),
            "pubsub#roster_groups_allowed" => Setting::Groups(values.clone()),
            "pubsub#max_items" if one == "max" => Setting::MaxItems(None),
            "pubsub#max_items" => match one.parse::<usize>() {
                Ok(n) if (1..=cap).contains(&n) => Setting::MaxItems(Some(n)),
                _ => return Err(E::NotAcceptable),
            },
            "pubsub#persist_items" => Setting::Persist(boolean(one)?),
            "pubsub#send_last_published_item" => {
                Setting::SendLast(SendLast::parse(one).ok_or(E::NotAcceptable)?)
            }
            "pubsub#notify_retract" => Setting::NotifyRetract(boolean(one)?),
            _ => continue,
        };
        options.push(option);
    }
    Ok(options)
}

/// An XML Schema boolean.
fn boolean(value: &str) -> Result<bool, E> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(E::NotAcceptable),
    }
}

/// A published item: its id and its one payload element.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub id: String,
    pub payload: Element,
}

impl Item {
    /// `<item id>` with the payload, in `ns` (pubsub, or pubsub#event).
    pub fn to_element(&self, ns: &'static str) -> Element {
        Element::new("item", ns)
            .attr("id", &self.id)
            .child(self.payload.clone())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub config: Config,
    /// Oldest first.
    pub items: Vec<Item>,
}

impl Node {
    pub fn new(name: &str, config: Config) -> Self {
        Node {
            name: name.to_owned(),
            config,
            items: Vec::new(),
        }
    }

    pub fn last(&self) -> Option<&Item> {
        self.items.last()
    }

    /// Publish `item`: one with the same id is replaced and becomes the
    /// newest; the oldest past what the node keeps go.
    pub fn publish(&mut self, item: Item, cap: usize) {
        self.items.retain(|i| i.id != item.id);
        self.items.push(item);
        self.trim(cap);
    }

    pub fn trim(&mut self, cap: usize) {
        let kept = self.config.kept(cap);
        if self.items.len() > kept {
            self.items.drain(..self.items.len() - kept);
        }
    }

    /// Remove the item `id`; whether there was one.
    pub fn retract(&mut self, id: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|i| i.id != id);
        self.items.len() != before
    }

    /// The stored document.
    pub fn to_document(&self) -> String {
        let c = &self.config;
        let max_items = c
            .max_items
            .map_or_else(|| "max".to_owned(), |n| n.to_string());
        let mut node = Element::new("node", NS_STORED)
            .attr("name", &self.name)
            .attr("access", c.access.name())
            .attr("max-items", &max_items)
            .attr("persist", if c.persist { "1" } else { "0" })
            .attr("send-last", c.send_last.name())
            .attr("notify-retract", if c.notify_retract { "1" } else { "0" });
        for group in &c.groups {
            node.push_child(Element::new("group", NS_STORED).text(group));
        }
        for item in &self.items {
            node.push_child(item.to_element(NS_STORED));
        }
        node.to_stream_string()
    }

    /// A stored document read back; `None` if it is not one.
    pub fn from_document(text: &str, limits: XmlLimits) -> Option<Node> {
        let stored = crate::xml::parse_stanza(text, limits)?;
        if !stored.is("node", NS_STORED) {
            return None;
        }
        let attr = |name| stored.get_attr(name).unwrap_or_default();
        let max_items = match attr("max-items") {
            "max" => None,
            n => Some(n.parse().ok()?),
        };
        let config = Config {
            access: Access::parse(attr("access"))?,
            groups: stored
                .children()
                .filter(|c| c.is("group", NS_STORED))
                .map(Element::text_content)
                .collect(),
            max_items,
            persist: attr("persist") == "1",
            send_last: SendLast::parse(attr("send-last"))?,
            notify_retract: attr("notify-retract") == "1",
        };
        let items = stored
            .children()
            .filter(|c| c.is("item", NS_STORED))
            .filter_map(|i| {
                Some(Item {
                    id: i.get_attr("id")?.to_owned(),
                    payload: i.children().next()?.clone(),
                })
            })
            .collect();
        Some(Node {
            name: attr("name").to_owned(),
            config,
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            payload: Element::new("nick", "http://jabber.org/protocol/nick").text(id),
        }
    }

    #[test]
    fn a_node_reads_back_as_it_was_stored() {
        let mut config = Config {
            access: Access::Roster,
            groups: vec!["Friends".into()],
            max_items: None,
            ..Config::default()
        };
        config.notify_retract = false;
        let mut node = Node::new("urn:xmpp:bookmarks:1", config);
        node.publish(item("a"), 10);
        node.publish(item("b"), 10);
        let limits = XmlLimits::default();
        assert_eq!(Node::from_document(&node.to_document(), limits), Some(node));
    }

    #[test]
    fn republishing_an_id_makes_it_the_newest_and_the_oldest_go_past_max_items() {
        let config = Config {
            max_items: Some(2),
            ..Config::default()
        };
        let mut node = Node::new("n", config);
        for id in ["a", "b", "a", "c"] {
            node.publish(item(id), 256);
        }
        let ids: Vec<&str> = node.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn publish_options_are_preconditions_on_what_they_name_only() {
        let options = [Setting::Access(Access::Open)];
        let open = Config {
            access: Access::Open,
            ..Config::default()
        };
        assert!(open.satisfies(&options));
        assert!(!Config::default().satisfies(&options));
    }
}
