//! Rosters and presence subscriptions (RFC 6121 sections 2 and 3).
//!
//! - `item`: the data model and its XML form;
//! - `subscription`: the subscription state machine as pure functions;
//! - `iq`: roster get/set parsing and validation;
//! - `manager`: per-user roster state, ordering and durability.

mod iq;
mod item;
pub(crate) mod manager;
mod subscription;

pub use item::{
    ArchiveDefault, ArchivePrefs, Roster, RosterChange, RosterItem, Subscription, NS_ROSTER,
};
pub(crate) use manager::Rosters;
pub use subscription::SubscriptionKind;

use crate::modules::{Addressee, Answer, IqHandler, Module, Request};
use crate::xml::Element;

/// Roster management, with versioning (XEP-0237) and subscription
/// pre-approval (RFC 6121 section 3.4), both advertised as stream
/// features.
pub(crate) const MODULE: Module = Module {
    name: "roster",
    stream_features: |_| {
        vec![
            Element::new("ver", "urn:xmpp:features:rosterver"),
            Element::new("sub", "urn:xmpp:features:pre-approval"),
        ]
    },
    iqs: &[IqHandler {
        to: Addressee::OwnAccount,
        name: "query",
        ns: NS_ROSTER,
        get: Some(roster_iq),
        set: Some(roster_iq),
    }],
    ..Module::NONE
};

/// Queued on the user's roster, answered once it has run (and, for a
/// set, once its change is durable).
fn roster_iq(ctx: &mut crate::hub::Ctx, request: &Request) -> Answer {
    let Some(user) = ctx.account_of(request.session) else {
        return Answer::Later;
    };
    let op = manager::Op::RosterIq {
        session: request.session,
        iq: request.iq.clone(),
    };
    manager::submit(ctx, &user, op);
    Answer::Later
}
