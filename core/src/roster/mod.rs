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

pub use item::{Roster, RosterChange, RosterItem, Subscription, NS_ROSTER};
pub(crate) use manager::Rosters;
pub use subscription::SubscriptionKind;
