//! The roster data model (RFC 6121 section 2.1) and its XML form.

use crate::xml::Element;
use jid::BareJid;
use std::collections::{BTreeMap, BTreeSet};

pub const NS_ROSTER: &str = "jabber:iq:roster";

/// The subscription state of one contact, without the pending flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Subscription {
    #[default]
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    Both,
}

impl Subscription {
    pub fn name(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }

    /// The user receives the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// The contact receives the user's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    pub fn with_to(self, on: bool) -> Self {
        Self::from_flags(on, self.has_from())
    }

    pub fn with_from(self, on: bool) -> Self {
        Self::from_flags(self.has_to(), on)
    }

    fn from_flags(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }
}

/// One contact in a user's roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterItem {
    pub jid: BareJid,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// Pending out: the user asked to subscribe and awaits an answer
    /// (`ask='subscribe'`).
    pub ask: bool,
    /// Pre-approved (RFC 6121 section 3.4): a future `subscribe` from the
    /// contact is approved at once.
    pub approved: bool,
    pub groups: Vec<String>,
}

impl RosterItem {
    pub fn new(jid: BareJid) -> Self {
        RosterItem {
            jid,
            name: None,
            subscription: Subscription::None,
            ask: false,
            approved: false,
            groups: Vec::new(),
        }
    }

    /// `<item/>` as it appears in roster results and pushes.
    pub fn to_element(&self) -> Element {
        let mut item = Element::new("item", NS_ROSTER)
            .attr("jid", self.jid.as_str())
            .attr("subscription", self.subscription.name());
        if let Some(name) = &self.name {
            item.set_attr("name", name);
        }
        if self.ask {
            item.set_attr("ask", "subscribe");
        }
        if self.approved {
            item.set_attr("approved", "true");
        }
        for group in &self.groups {
            item.push_child(Element::new("group", NS_ROSTER).text(group));
        }
        item
    }
}

/// A user's roster: contacts, pending inbound requests and the version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    pub items: BTreeMap<BareJid, RosterItem>,
    /// Inbound subscription requests awaiting the user's answer (pending
    /// in), with the request stanza to show again at the next login. A
    /// requester need not be in the roster (RFC 6121 section 3.1.3).
    pub pending_in: BTreeMap<BareJid, String>,
    /// XEP-0237 version: incremented by every change.
    pub version: u64,
    /// XEP-0191: JIDs the user blocks, as prepared strings (a full or
    /// bare JID, a domain, or a domain with a resource).
    pub blocked: BTreeSet<String>,
    /// XEP-0313 archiving preferences; `None` (nothing allocated) for
    /// the default, which keeps everything. Roster data because the
    /// `roster` default reads the roster, and both are needed wherever a
    /// message is routed.
    pub archive_prefs: Option<Box<ArchivePrefs>>,
    /// XEP-0153: the SHA-1 (hex) of the account's avatar, put in its
    /// presence; empty for "no avatar"; `None` if it never had one.
    pub photo: Option<Box<str>>,
}

/// XEP-0313 section 6: which messages an account's archive keeps, by the
/// other party's bare JID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchivePrefs {
    pub default: ArchiveDefault,
    /// Bare JIDs, prepared; no JID in both (a set naming one in both
    /// never keeps it, as in Prosody).
    pub always: BTreeSet<String>,
    pub never: BTreeSet<String>,
}

/// What happens to messages with JIDs in neither list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchiveDefault {
    /// Kept (Prosody's default policy).
    #[default]
    Always,
    Never,
    /// Kept if the JID is in the roster.
    Roster,
}

impl ArchiveDefault {
    pub fn name(self) -> &'static str {
        match self {
            ArchiveDefault::Always => "always",
            ArchiveDefault::Never => "never",
            ArchiveDefault::Roster => "roster",
        }
    }

    /// XEP-0313's rule, wherever the preferences are read: a listed JID
    /// is kept as its list says (`listed`: `Some(true)` for always,
    /// `Some(false)` for never, which wins), any other as the default
    /// says; `in_roster` matters to the `roster` default alone.
    pub fn keeps(self, listed: Option<bool>, in_roster: bool) -> bool {
        listed.unwrap_or(match self {
            ArchiveDefault::Always => true,
            ArchiveDefault::Never => false,
            ArchiveDefault::Roster => in_roster,
        })
    }

    pub fn parse(name: &str) -> Option<ArchiveDefault> {
        match name {
            "always" => Some(ArchiveDefault::Always),
            "never" => Some(ArchiveDefault::Never),
            "roster" => Some(ArchiveDefault::Roster),
            _ => None,
        }
    }
}

impl ArchivePrefs {
    /// Whether a message with `with` (a bare JID) is kept; `in_roster`
    /// says whether `with` is in the account's roster.
    pub fn keeps(&self, with: &str, in_roster: bool) -> bool {
        let listed = if self.never.contains(with) {
            Some(false)
        } else {
            self.always.contains(with).then_some(true)
        };
        self.default.keeps(listed, in_roster)
    }
}

impl Roster {
    /// Whether the account's archive keeps a message with `with`.
    pub fn archives(&self, with: &BareJid) -> bool {
        self.archive_prefs
            .as_ref()
            .is_none_or(|p| p.keeps(with.as_str(), self.items.contains_key(with)))
    }

    pub fn subscription(&self, contact: &BareJid) -> Subscription {
        self.items
            .get(contact)
            .map(|i| i.subscription)
            .unwrap_or_default()
    }

    /// Contacts that receive the user's presence (`from` or `both`).
    pub fn presence_subscribers(&self) -> impl Iterator<Item = &BareJid> {
        self.items
            .values()
            .filter(|i| i.subscription.has_from())
            .map(|i| &i.jid)
    }

    /// Contacts whose presence the user receives (`to` or `both`).
    pub fn presence_subscriptions(&self) -> impl Iterator<Item = &BareJid> {
        self.items
            .values()
            .filter(|i| i.subscription.has_to())
            .map(|i| &i.jid)
    }

    /// `<query xmlns='jabber:iq:roster' ver='…'>` with every item.
    pub fn to_query(&self) -> Element {
        let mut query = Element::new("query", NS_ROSTER).attr("ver", &self.version.to_string());
        for item in self.items.values() {
            query.push_child(item.to_element());
        }
        query
    }
}

/// One durable change to a roster; a write carries several, atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterChange {
    Upsert(RosterItem),
    Remove(BareJid),
    /// Record an inbound request (with its stanza) or, with `None`,
    /// forget it.
    PendingIn(BareJid, Option<String>),
    /// XEP-0191: block a JID, or unblock it.
    Block(String),
    Unblock(String),
    /// Unblock every JID.
    UnblockAll,
    /// XEP-0313: replace the archiving preferences (`None`: the default).
    ArchivePrefs(Option<Box<ArchivePrefs>>),
    /// XEP-0153: the avatar's hash.
    Photo(Box<str>),
}

impl Roster {
    /// Apply changes in memory, as storage will durably.
    pub fn apply(&mut self, changes: &[RosterChange], version: u64) {
        for change in changes {
            match change {
                RosterChange::Upsert(item) => {
                    self.items.insert(item.jid.clone(), item.clone());
                }
                RosterChange::Remove(jid) => {
                    self.items.remove(jid);
                }
                RosterChange::PendingIn(jid, Some(stanza)) => {
                    self.pending_in.insert(jid.clone(), stanza.clone());
                }
                RosterChange::PendingIn(jid, None) => {
                    self.pending_in.remove(jid);
                }
                RosterChange::Block(jid) => {
                    self.blocked.insert(jid.clone());
                }
                RosterChange::Unblock(jid) => {
                    self.blocked.remove(jid);
                }
                RosterChange::UnblockAll => self.blocked.clear(),
                RosterChange::ArchivePrefs(prefs) => self.archive_prefs = prefs.clone(),
                RosterChange::Photo(photo) => self.photo = Some(photo.clone()),
            }
        }
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_serialises_with_ask_and_groups() {
        let mut item = RosterItem::new(BareJid::new("romeo@example.net").unwrap());
        item.name = Some("Romeo".into());
        item.ask = true;
        item.groups = vec!["Friends".into()];
        assert_eq!(
            item.to_element().to_stream_string(),
            "<item xmlns='jabber:iq:roster' jid='romeo@example.net' subscription='none' name='Romeo' \
             ask='subscribe'><group>Friends</group></item>"
        );
    }

    #[test]
    fn subscription_flags_compose() {
        assert_eq!(Subscription::To.with_from(true), Subscription::Both);
        assert_eq!(Subscription::Both.with_to(false), Subscription::From);
        assert_eq!(Subscription::From.with_from(false), Subscription::None);
    }
}
