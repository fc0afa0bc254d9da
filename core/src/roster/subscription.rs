//! The presence subscription state machine (RFC 6121 section 3 and
//! Appendix A) as pure functions: given a roster and a subscription stanza,
//! what changes and what must be sent. The roster manager carries them out.

use super::item::{Roster, RosterChange, RosterItem};
use jid::BareJid;

/// The four subscription stanza types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl SubscriptionKind {
    pub fn parse(presence_type: &str) -> Option<Self> {
        match presence_type {
            "subscribe" => Some(SubscriptionKind::Subscribe),
            "subscribed" => Some(SubscriptionKind::Subscribed),
            "unsubscribe" => Some(SubscriptionKind::Unsubscribe),
            "unsubscribed" => Some(SubscriptionKind::Unsubscribed),
            _ => None,
        }
    }

    /// Whether it only takes access away (`unsubscribe`, `unsubscribed`):
    /// such a change is applied even between users who block each other.
    pub fn withdraws(self) -> bool {
        matches!(
            self,
            SubscriptionKind::Unsubscribe | SubscriptionKind::Unsubscribed
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SubscriptionKind::Subscribe => "subscribe",
            SubscriptionKind::Subscribed => "subscribed",
            SubscriptionKind::Unsubscribe => "unsubscribe",
            SubscriptionKind::Unsubscribed => "unsubscribed",
        }
    }
}

/// What the user's server does with a subscription stanza the user sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    pub changes: Vec<RosterChange>,
    /// Route the stanza to the contact.
    pub forward: bool,
}

/// What the contact's server does with a subscription stanza addressed to
/// its user (the contact of the sender).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inbound {
    pub changes: Vec<RosterChange>,
    /// Deliver the stanza to the user's available resources.
    pub deliver: bool,
    /// Answer on the user's behalf (an already approved request).
    pub auto_reply: Option<SubscriptionKind>,
    /// The sender no longer receives the user's presence: send it
    /// unavailable from the user's available resources.
    pub send_unavailable: bool,
    /// The user now receives the sender's presence (subscription approved).
    pub probe_sender: bool,
    /// The user no longer receives the sender's presence.
    pub sender_unavailable: bool,
}

fn item_or_new(roster: &Roster, contact: &BareJid) -> RosterItem {
    roster
        .items
        .get(contact)
        .cloned()
        .unwrap_or_else(|| RosterItem::new(contact.clone()))
}

/// RFC 6121 sections 3.1.2, 3.2.2, 3.3.2, 3.4 (the user's server).
pub fn outbound(roster: &Roster, contact: &BareJid, kind: SubscriptionKind) -> Outbound {
    let mut item = item_or_new(roster, contact);
    let before = roster.items.get(contact).cloned();
    let pending_in = roster.pending_in.contains_key(contact);
    let mut out = Outbound::default();
    match kind {
        SubscriptionKind::Subscribe => {
            if !item.subscription.has_to() {
                item.ask = true;
            }
            out.forward = true;
        }
        SubscriptionKind::Unsubscribe => {
            if before.is_some() {
                item.subscription = item.subscription.with_to(false);
                item.ask = false;
            }
            out.forward = true;
        }
        SubscriptionKind::Subscribed => {
            if pending_in {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
                out.changes
                    .push(RosterChange::PendingIn(contact.clone(), None));
                out.forward = true;
            } else if !item.subscription.has_from() {
                // Pre-approval: remembered, not routed (section 3.4).
                item.approved = true;
            }
        }
        SubscriptionKind::Unsubscribed => {
            if pending_in {
                out.changes
                    .push(RosterChange::PendingIn(contact.clone(), None));
            }
            if item.subscription.has_from() || pending_in {
                out.forward = true;
            }
            item.subscription = item.subscription.with_from(false);
            item.approved = false;
        }
    }
    if before.as_ref() != Some(&item)
        && (before.is_some() || item != RosterItem::new(contact.clone()))
    {
        out.changes.insert(0, RosterChange::Upsert(item));
    }
    out
}

/// RFC 6121 sections 3.1.3, 3.1.6, 3.2.3, 3.3.3 (the contact's server),
/// applied to the roster of the user who receives the stanza from
/// `sender`. `stanza` is the request as it will be shown again later.
pub fn inbound(roster: &Roster, sender: &BareJid, kind: SubscriptionKind, stanza: &str) -> Inbound {
    let before = roster.items.get(sender);
    let mut item = item_or_new(roster, sender);
    let pending_in = roster.pending_in.contains_key(sender);
    let mut out = Inbound::default();
    match kind {
        SubscriptionKind::Subscribe => {
            if item.subscription.has_from() {
                out.auto_reply = Some(SubscriptionKind::Subscribed);
            } else if item.approved {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
                // The approval reaches the sender's server as `subscribed`,
                // which then asks for our presence (`probe_sender` there).
                out.auto_reply = Some(SubscriptionKind::Subscribed);
            } else if !pending_in {
                out.changes.push(RosterChange::PendingIn(
                    sender.clone(),
                    Some(stanza.to_owned()),
                ));
                out.deliver = true;
            }
        }
        SubscriptionKind::Subscribed => {
            if item.ask && !item.subscription.has_to() {
                item.subscription = item.subscription.with_to(true);
                item.ask = false;
                out.deliver = true;
                out.probe_sender = true;
            }
        }
        SubscriptionKind::Unsubscribe => {
            if pending_in {
                out.changes
                    .push(RosterChange::PendingIn(sender.clone(), None));
                out.deliver = true;
            }
            if item.subscription.has_from() {
                item.subscription = item.subscription.with_from(false);
                out.deliver = true;
                out.send_unavailable = true;
            }
            item.approved = false;
        }
        SubscriptionKind::Unsubscribed => {
            if item.subscription.has_to() || item.ask {
                // Only a user who received the sender's presence needs it
                // retracted; a denied request never showed any.
                out.sender_unavailable = item.subscription.has_to();
                item.subscription = item.subscription.with_to(false);
                item.ask = false;
                out.deliver = true;
            }
        }
    }
    if let Some(before) = before {
        if before != &item {
            out.changes.insert(0, RosterChange::Upsert(item));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::item::Subscription;
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    fn roster_with(sub: Subscription, ask: bool, pending_in: bool) -> Roster {
        let mut r = Roster::default();
        let mut item = RosterItem::new(jid("contact@localhost"));
        item.subscription = sub;
        item.ask = ask;
        r.items.insert(item.jid.clone(), item);
        if pending_in {
            r.pending_in
                .insert(jid("contact@localhost"), "<presence/>".into());
        }
        r
    }

    fn upserted(changes: &[RosterChange]) -> Option<&RosterItem> {
        changes.iter().find_map(|c| match c {
            RosterChange::Upsert(i) => Some(i),
            _ => None,
        })
    }

    #[test]
    fn outbound_subscribe_to_a_new_contact_adds_it_pending_out() {
        let out = outbound(
            &Roster::default(),
            &jid("contact@localhost"),
            SubscriptionKind::Subscribe,
        );
        let item = upserted(&out.changes).unwrap();
        assert_eq!((item.subscription, item.ask), (Subscription::None, true));
        assert!(out.forward);
    }

    #[test]
    fn outbound_subscribed_approves_a_pending_request() {
        let r = roster_with(Subscription::To, false, true);
        let out = outbound(&r, &jid("contact@localhost"), SubscriptionKind::Subscribed);
        assert_eq!(
            upserted(&out.changes).unwrap().subscription,
            Subscription::Both
        );
        assert!(out
            .changes
            .contains(&RosterChange::PendingIn(jid("contact@localhost"), None)));
        assert!(out.forward);
    }

    #[test]
    fn outbound_subscribed_without_request_is_a_pre_approval_not_routed() {
        let out = outbound(
            &Roster::default(),
            &jid("contact@localhost"),
            SubscriptionKind::Subscribed,
        );
        assert!(upserted(&out.changes).unwrap().approved);
        assert!(!out.forward);
    }

    #[test]
    fn outbound_unsubscribed_cancels_from() {
        let r = roster_with(Subscription::Both, false, false);
        let out = outbound(
            &r,
            &jid("contact@localhost"),
            SubscriptionKind::Unsubscribed,
        );
        assert_eq!(
            upserted(&out.changes).unwrap().subscription,
            Subscription::To
        );
        assert!(out.forward);
    }

    #[test]
    fn inbound_subscribe_from_a_stranger_is_stored_pending_in_and_delivered() {
        let out = inbound(
            &Roster::default(),
            &jid("contact@localhost"),
            SubscriptionKind::Subscribe,
            "<p/>",
        );
        assert_eq!(
            out.changes,
            vec![RosterChange::PendingIn(
                jid("contact@localhost"),
                Some("<p/>".into())
            )]
        );
        assert!(out.deliver);
    }

    #[test]
    fn inbound_subscribe_already_approved_is_answered_by_the_server() {
        let r = roster_with(Subscription::From, false, false);
        let out = inbound(
            &r,
            &jid("contact@localhost"),
            SubscriptionKind::Subscribe,
            "<p/>",
        );
        assert_eq!(out.auto_reply, Some(SubscriptionKind::Subscribed));
        assert!(!out.deliver);
        assert!(out.changes.is_empty());
    }

    #[test]
    fn inbound_subscribed_completes_a_pending_out_request() {
        let r = roster_with(Subscription::From, true, false);
        let out = inbound(
            &r,
            &jid("contact@localhost"),
            SubscriptionKind::Subscribed,
            "<p/>",
        );
        let item = upserted(&out.changes).unwrap();
        assert_eq!((item.subscription, item.ask), (Subscription::Both, false));
        assert!(out.deliver && out.probe_sender);
    }

    #[test]
    fn inbound_subscribed_without_request_is_ignored() {
        let r = roster_with(Subscription::None, false, false);
        assert_eq!(
            inbound(
                &r,
                &jid("contact@localhost"),
                SubscriptionKind::Subscribed,
                "<p/>"
            ),
            Inbound::default()
        );
    }

    #[test]
    fn inbound_unsubscribe_ends_from_and_sends_unavailable() {
        let r = roster_with(Subscription::Both, false, false);
        let out = inbound(
            &r,
            &jid("contact@localhost"),
            SubscriptionKind::Unsubscribe,
            "<p/>",
        );
        assert_eq!(
            upserted(&out.changes).unwrap().subscription,
            Subscription::To
        );
        assert!(out.deliver && out.send_unavailable);
    }

    #[test]
    fn inbound_unsubscribed_ends_to_and_the_contact_goes_unavailable() {
        let r = roster_with(Subscription::To, false, false);
        let out = inbound(
            &r,
            &jid("contact@localhost"),
            SubscriptionKind::Unsubscribed,
            "<p/>",
        );
        assert_eq!(
            upserted(&out.changes).unwrap().subscription,
            Subscription::None
        );
        assert!(out.deliver && out.sender_unavailable);
    }
}
