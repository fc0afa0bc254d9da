//! # rookery-core: a sans-IO XMPP client-to-server core
//!
//! The core turns what happens on client connections into what the server
//! must do. It owns no socket, reads no clock, draws no random number and
//! touches no disk; a shim (`rookery-smol`, `rookery-std`, the fuzzer, a
//! test) does all of that and feeds the results in.
//!
//! ```text
//!            inputs                                   outputs
//!  accept(conn, seed, now) ──┐                ┌──> Transmit { conn, bytes }
//!  bytes(conn, data, now) ───┤   ┌────────┐   ├──> Close { conn }
//!  peer_closed(conn, now) ───┼──>│ Server │───┼──> Storage { request, query }
//!  timeout(now) ─────────────┤   └────────┘   └──> poll_timeout(): next deadline
//!  storage(request, answer) ─┘
//! ```
//!
//! The run loop of every shim:
//!
//! 1. call the `handle_*` method for whatever happened (a connection was
//!    accepted, bytes arrived, a peer closed, a deadline passed, a storage
//!    query finished), passing the current time;
//! 2. drain [`Server::poll_output`] and carry out each [`Output`] in order;
//! 3. sleep until the next event or [`Server::poll_timeout`].
//!
//! Because time, randomness (a per-connection [`Seed`]) and storage answers
//! are inputs, the same inputs always give the same outputs: tests step many
//! simulated clients with a fake clock, and fuzzing can replay anything.
//!
//! ## Inside: connections and the hub
//!
//! ```text
//!  bytes ─▶ Connection ──(bind, stanza, SM/CSI element, lost)──▶ Hub ──▶ router ──▶ modules
//!           stream/TLS/                                            │     (message, iq,
//!           SASL/bind                                              │      presence, roster,
//!              ▲                                                   ▼      carbons, blocking, …)
//!              └── Transmit ◀── stream management ◀── client state ◀── Ctx::deliver(session, stanza)
//! ```
//!
//! A `Connection` negotiates its stream and knows nothing of other users.
//! The `Hub` owns every session (attached to a connection, or detached and
//! hibernating for XEP-0198), the rosters and the modules' state, and
//! reaches a client only through `Ctx::deliver`. The router stamps each
//! stanza's `from` and resolves its `to` once into an envelope; a module
//! reaches another account only by address, through the hub's accounts
//! view (`Ctx::reach`, `message_reach`, `probe`), never by reading that
//! account's sessions. Each XEP is a module that declares what it adds
//! (`modules::Module`); disco replies and stream features are built from
//! the loaded ones.
//!
//! ## Map
//! - [`xml`]: incremental parsing of the XML stream (on `rxml`) into stanzas.
//! - [`stream`]: stream headers, features and stream errors (RFC 6120 §4).
//! - [`sasl`]: PLAIN and SCRAM (RFC 6120 §6, RFC 5802, RFC 7677).
//! - `bind`: resource binding (RFC 6120 §7).
//! - `connection`: one connection's negotiation state machine; once bound,
//!   it hands its stanzas to the hub as typed events.
//! - `hub`: owns sessions, rosters and the IM modules, and reaches a client
//!   only through one delivery point, `Ctx::deliver`; `hub::accounts` turns
//!   addresses into the resources they reach.
//! - [`session`], [`session_manager`]: sessions (attached to a connection or
//!   detached) and the connected, available and interested resource sets.
//! - [`roster`]: rosters, subscriptions and their durability (RFC 6121 §2-3).
//! - `presence`: presence broadcast, probes and directed presence (RFC 6121 §4).
//! - `router`: where a stanza from a session goes (RFC 6120 §10), as an
//!   `Envelope`, then
//!   `message` (RFC 6121 §8.5), `offline` (XEP-0160) and `iq`.
//! - `modules`: what each XEP adds (disco and stream features, iqs), and
//!   the registry that builds disco replies and stream features from the
//!   loaded modules: disco (XEP-0030), ping (0199), time (0202), version
//!   (0092), stream management (0198), carbons (0280), client state (0352),
//!   blocking (0191), last activity (0012), contact addresses (0157) and
//!   entity capabilities (0115).
//! - [`storage`]: the storage queries the core emits and their answers.

#![forbid(unsafe_code)]

mod admission;
mod backpressure;
mod bind;
pub mod clock;
pub mod config;
mod connection;
mod entropy;
#[doc(hidden)]
pub mod fuzzing;
mod hub;
mod iq;
pub mod limits;
mod message;
mod modules;
pub mod ns;
mod offline;
mod presence;
pub mod roster;
mod router;
pub mod sasl;
mod server;
pub mod session;
pub mod session_manager;
pub mod stanza;
pub mod storage;
pub mod stream;
pub mod tls;
pub mod xml;

pub use clock::WallClock;
pub use config::Config;
pub use entropy::Seed;
pub use modules::contact_info::KINDS as CONTACT_KINDS;
pub use modules::names as module_names;
pub use server::{ConnectionId, Output, Server};
pub use storage::{
    ArchiveQuery, ArchivedMessage, DocumentStore, OfflineMessage, RequestId, StorageAnswer,
    StorageRequest, StoreOutcome,
};
pub use tls::{ChannelBinding, Encryption};
