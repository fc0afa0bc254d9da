//! Roster get and set (RFC 6121 sections 2.2-2.5) with their validation.

use super::item::{Roster, RosterItem, NS_ROSTER};
use crate::config::RosterLimits;
use crate::stanza::StanzaErrorCondition as E;
use crate::xml::Element;
use jid::BareJid;

/// A valid roster request.
#[derive(Debug, PartialEq, Eq)]
pub enum RosterRequest {
    /// `ver` is the client's cached version (XEP-0237), if any.
    Get {
        ver: Option<String>,
    },
    /// Add or update an item: name and groups only; the subscription is
    /// the server's business.
    Set {
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
    },
    Remove {
        jid: BareJid,
    },
}

/// Parse a roster iq from `user`. `Err` is the stanza error to answer with.
pub fn parse(
    iq: &Element,
    query: &Element,
    user: &BareJid,
    limits: &RosterLimits,
) -> Result<RosterRequest, E> {
    match iq.get_attr("type") {
        Some("get") => Ok(RosterRequest::Get {
            ver: query.get_attr("ver").map(str::to_owned),
        }),
        Some("set") => {
            let mut items = query.children().filter(|c| c.is("item", NS_ROSTER));
            let (Some(item), None) = (items.next(), items.next()) else {
                // Exactly one item per set (section 2.3.3).
                return Err(E::BadRequest);
            };
            let jid = item
                .get_attr("jid")
                .and_then(|j| BareJid::new(j).ok())
                .ok_or(E::BadRequest)?;
            if &jid == user {
                // Prosody refuses this too: a user is not their own contact.
                return Err(E::NotAllowed);
            }
            match item.get_attr("subscription") {
                Some("remove") => return Ok(RosterRequest::Remove { jid }),
                None | Some("none") | Some("to") | Some("from") | Some("both") => {}
                Some(_) => return Err(E::BadRequest),
            }
            let name = item
                .get_attr("name")
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            if name
                .as_ref()
                .is_some_and(|n| n.len() > limits.max_name_bytes)
            {
                return Err(E::NotAcceptable);
            }
            let mut groups: Vec<String> = Vec::new();
            for g in item.children().filter(|c| c.is("group", NS_ROSTER)) {
                let group = g.text_content();
                if group.is_empty() || group.len() > limits.max_group_bytes {
                    return Err(E::NotAcceptable);
                }
                if groups.contains(&group) {
                    return Err(E::BadRequest);
                }
                groups.push(group);
            }
            if groups.len() > limits.max_groups {
                return Err(E::NotAcceptable);
            }
            Ok(RosterRequest::Set { jid, name, groups })
        }
        _ => Err(E::BadRequest),
    }
}

/// The item a set produces, keeping what only the server may change.
pub fn updated_item(
    roster: &Roster,
    jid: &BareJid,
    name: Option<String>,
    groups: Vec<String>,
) -> RosterItem {
    let mut item = roster
        .items
        .get(jid)
        .cloned()
        .unwrap_or_else(|| RosterItem::new(jid.clone()));
    item.name = name;
    item.groups = groups;
    item
}

/// A roster push (section 2.1.6) to one interested resource.
pub fn push(item: Element, version: u64, id: &str, to: &str) -> Element {
    Element::new("iq", crate::ns::CLIENT)
        .attr("type", "set")
        .attr("id", id)
        .attr("to", to)
        .child(
            Element::new("query", NS_ROSTER)
                .attr("ver", &version.to_string())
                .child(item),
        )
}

/// The pushed item for a removal.
pub fn removed_item(jid: &BareJid) -> Element {
    Element::new("item", NS_ROSTER)
        .attr("jid", jid.as_str())
        .attr("subscription", "remove")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    fn set(item: &str) -> Result<RosterRequest, E> {
        let user = BareJid::new("juliet@localhost").unwrap();
        let query = Element::new("query", NS_ROSTER);
        let mut parser = crate::xml::StreamParser::new(Default::default());
        let doc = format!("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><query xmlns='jabber:iq:roster'>{item}</query>");
        let mut input = doc.as_bytes();
        parser.next_event(&mut input).unwrap();
        let Some(crate::xml::XmlEvent::Element(q)) = parser.next_event(&mut input).unwrap() else {
            panic!()
        };
        let _ = query;
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set");
        parse(&iq, &q, &user, &RosterLimits::default())
    }

    #[test]
    fn two_items_are_a_bad_request() {
        assert_eq!(
            set("<item jid='a@localhost'/><item jid='b@localhost'/>"),
            Err(E::BadRequest)
        );
    }

    #[test]
    fn subscription_other_than_remove_is_ignored_not_applied() {
        assert!(matches!(
            set("<item jid='a@localhost' subscription='both'/>"),
            Ok(RosterRequest::Set { .. })
        ));
        assert_eq!(
            set("<item jid='a@localhost' subscription='bogus'/>"),
            Err(E::BadRequest)
        );
    }

    #[test]
    fn empty_group_is_not_acceptable() {
        assert_eq!(
            set("<item jid='a@localhost'><group></group></item>"),
            Err(E::NotAcceptable)
        );
    }

    #[test]
    fn duplicate_group_is_a_bad_request() {
        assert_eq!(
            set("<item jid='a@localhost'><group>x</group><group>x</group></item>"),
            Err(E::BadRequest)
        );
    }

    #[test]
    fn invalid_jid_is_a_bad_request() {
        assert_eq!(set("<item jid='@@'/>"), Err(E::BadRequest));
    }

    #[test]
    fn removal_is_recognised() {
        assert_eq!(
            set("<item jid='a@localhost' subscription='remove'/>"),
            Ok(RosterRequest::Remove {
                jid: BareJid::new("a@localhost").unwrap()
            })
        );
    }
}
