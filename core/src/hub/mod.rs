//! The hub: the per-server half of the core (quinn-proto's `Endpoint` to
//! the connections' `Connection`s).
//!
//! A [`Connection`](crate::connection) negotiates its stream (TLS, SASL,
//! bind) and hands the hub typed events: [`Hub::bind`], [`Hub::stanza`],
//! [`Hub::connection_lost`]. The hub owns everything shared (the session
//! manager, rosters, offline messages) and the IM modules, which it lends
//! out for one event at a time as a [`Ctx`]. The modules reach a client
//! only through [`Ctx::deliver`] (see `delivery`): none of them knows
//! which connection, if any, carries a session.

mod accounts;
mod delivery;

pub(crate) use accounts::{AccountReach, Recipients, Urgency};

use crate::clock::WallClock;
use crate::config::Config;
use crate::connection::Outbox;
use crate::entropy::Entropy;
use crate::modules::avatar_conversion::{self, Conversions};
use crate::modules::blocking::{self, Blocking};
use crate::modules::caps::{self, Capabilities};
use crate::modules::carbons::{self, Carbons};
use crate::modules::csi::ClientState;
use crate::modules::last_activity::{self, LastActivity};
use crate::modules::mam::{self, Archive};
use crate::modules::pep::{self, Pep};
use crate::modules::register::Passwords;
use crate::modules::stream_management::{self as sm, StreamManagement};
use crate::modules::waiting::{self, Waiting};
use crate::modules::Loaded;
use crate::offline::{self, Offline};
use crate::presence;
use crate::roster::manager as rosters;
use crate::roster::Rosters;
use crate::router;
use crate::session::SessionId;
use crate::session_manager::SessionManager;
use crate::stanza::StanzaKind;
use crate::storage::{RequestId, StorageAnswer};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use crate::ConnectionId;
use jid::{BareJid, FullJid};
use std::time::Instant;

/// What the hub owns: every session and what the modules keep for them.
pub(crate) struct Hub {
    /// The modules the configuration loads.
    loaded: Loaded,
    sessions: SessionManager,
    rosters: Rosters,
    offline: Offline,
    sm: StreamManagement,
    carbons: Carbons,
    csi: ClientState,
    blocking: Blocking,
    last: LastActivity,
    waiting: Waiting,
    mam: Archive,
    caps: Capabilities,
    pep: Pep,
    avatars: Conversions,
    passwords: Passwords,
}

/// What a module borrows from the hub while it handles one event.
pub(crate) struct Ctx<'a> {
    pub config: &'a Config,
    pub loaded: &'a Loaded,
    pub sessions: &'a mut SessionManager,
    pub rosters: &'a mut Rosters,
    pub offline: &'a mut Offline,
    pub sm: &'a mut StreamManagement,
    pub carbons: &'a mut Carbons,
    pub csi: &'a mut ClientState,
    pub blocking: &'a mut Blocking,
    pub last: &'a mut LastActivity,
    pub waiting: &'a mut Waiting,
    pub mam: &'a mut Archive,
    pub caps: &'a mut Capabilities,
    pub pep: &'a mut Pep,
    pub avatars: &'a mut Conversions,
    pub passwords: &'a mut Passwords,
    pub out: &'a mut Outbox,
    pub now: Instant,
    pub clock: WallClock,
}

/// A session ends (its connection closed, timed out or failed, or it was
/// replaced): every module that keeps something for it lets go, and its
/// observers get their unavailable presence.
fn end_session(ctx: &mut Ctx, session: SessionId) {
    sm::session_ended(ctx, session);
    carbons::session_ended(ctx, session);
    blocking::session_ended(ctx, session);
    last_activity::session_ended(ctx, session);
    caps::session_ended(ctx, session);
    ctx.csi.set_active(session);
    offline::session_ended(ctx, session);
    presence::session_ended(ctx, session);
}

/// What the server lends the hub for one event.
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub out: &'a mut Outbox,
    pub now: Instant,
    pub clock: WallClock,
}

impl Hub {
    pub fn new(config: &Config) -> Self {
        Hub {
            loaded: Loaded::new(config),
            sessions: SessionManager::default(),
            rosters: Rosters::default(),
            offline: Offline::default(),
            sm: StreamManagement::default(),
            carbons: Carbons::default(),
            csi: ClientState::default(),
            blocking: Blocking::default(),
            last: LastActivity::default(),
            waiting: Waiting::default(),
            mam: Archive::default(),
            caps: Capabilities::default(),
            pep: Pep::default(),
            avatars: Conversions::default(),
            passwords: Passwords::default(),
        }
    }

    /// The wall clock, as the server was told it.
    pub fn clock(&mut self, now: crate::clock::WallClock) {
        self.last.clock(now);
    }

    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    fn ctx<'a>(&'a mut self, env: &'a mut Env<'_>) -> Ctx<'a> {
        Ctx {
            config: env.config,
            loaded: &self.loaded,
            sessions: &mut self.sessions,
            rosters: &mut self.rosters,
            offline: &mut self.offline,
            sm: &mut self.sm,
            carbons: &mut self.carbons,
            csi: &mut self.csi,
            blocking: &mut self.blocking,
            last: &mut self.last,
            waiting: &mut self.waiting,
            mam: &mut self.mam,
            caps: &mut self.caps,
            pep: &mut self.pep,
            avatars: &mut self.avatars,
            passwords: &mut self.passwords,
            out: env.out,
            now: env.now,
            clock: env.clock,
        }
    }

    pub fn sessions(&self) -> &SessionManager {
        &self.sessions
    }

    pub fn rosters(&self) -> &Rosters {
        &self.rosters
    }

    /// `connection`, authenticated as `jid`'s account, binds `jid`
    /// (RFC 6120 section 7); `iq` is its request, answered here.
    ///
    /// Conflict policy: the new session wins and the old one ends with
    /// `<conflict/>` (Prosody's default `conflict_resolve = "kick_old"`):
    /// a client that reconnects after a dropped TCP connection gets its
    /// resource back instead of waiting for the stale session to time out.
    ///
    /// An account has at most `max_resources_per_account` sessions: past
    /// it the oldest hibernating one ends, and with none hibernating the
    /// bind is refused (the returned error, for the connection to send).
    pub fn bind(
        &mut self,
        env: &mut Env,
        connection: ConnectionId,
        jid: FullJid,
        iq: &Element,
    ) -> Result<(), Element> {
        let mut ctx = self.ctx(env);
        let user = jid.to_bare();
        let others: Vec<(SessionId, bool)> = ctx
            .sessions
            .resources_of(&user)
            .filter(|s| s.jid != jid)
            .map(|s| (s.id, s.connection().is_none()))
            .collect();
        if others.len() >= ctx.config.max_resources_per_account {
            let Some(oldest) = others
                .iter()
                .filter(|(_, detached)| *detached)
                .map(|(s, _)| *s)
                .min()
            else {
                return Err(crate::stanza::error_reply(
                    iq,
                    crate::stanza::StanzaErrorCondition::ResourceConstraint,
                ));
            };
            end_session(&mut ctx, oldest);
        }
        if let Some(old) = ctx.sessions.by_full_jid(&jid).map(|s| s.id) {
            ctx.evict(old, StreamError::new(StreamErrorCondition::Conflict));
            end_session(&mut ctx, old);
        }
        let session = ctx.sessions.bind(connection, jid.clone()).session;
        // RFC 6121 section 2.2: the roster is loaded when the resource
        // becomes a connected resource.
        rosters::ensure_loaded(&mut ctx, &jid.to_bare());
        ctx.deliver(session, &crate::bind::bind_result(iq, &jid));
        Ok(())
    }

    /// Sessions waiting to be resumed: they count against the server's
    /// connection limit, as the connections they stand for.
    pub fn hibernating(&self) -> usize {
        self.sm.hibernating()
    }

    /// A stanza from the client of the session `connection` carries.
    pub fn stanza(
        &mut self,
        env: &mut Env,
        connection: ConnectionId,
        kind: StanzaKind,
        stanza: Element,
    ) -> Result<(), StreamError> {
        let Some(session) = self.sessions.by_connection(connection) else {
            return Err(StreamError::new(StreamErrorCondition::InternalServerError));
        };
        let mut ctx = self.ctx(env);
        sm::handled(&mut ctx, session);
        router::from_session(session, kind, stanza, &mut ctx)
    }

    /// The connection answered a stanza of its bound session's client
    /// itself (a second bind, the legacy session iq): counted and
    /// delivered like any other.
    pub fn answer(&mut self, env: &mut Env, connection: ConnectionId, reply: &Element) {
        let Some(session) = self.sessions.by_connection(connection) else {
            return;
        };
        let mut ctx = self.ctx(env);
        sm::handled(&mut ctx, session);
        ctx.deliver(session, reply);
    }

    /// A stream management element (XEP-0198) from `connection`,
    /// authenticated as `user`. Returns whether the connection now
    /// carries a session it resumed.
    pub fn stream_management(
        &mut self,
        env: &mut Env,
        connection: ConnectionId,
        user: &BareJid,
        element: &Element,
        entropy: &mut Entropy,
    ) -> Result<bool, StreamError> {
        let session = self.sessions.by_connection(connection);
        let mut ctx = self.ctx(env);
        // 128 bits from the connection's cryptographic seed.
        let token = || entropy.hex_token(32);
        let resumed = sm::handle(&mut ctx, connection, user, session, element, token)?;
        Ok(resumed.is_some())
    }

    /// A client state indication (XEP-0352) from `connection`'s client;
    /// ignored before a resource is bound.
    pub fn client_state(&mut self, env: &mut Env, connection: ConnectionId, element: &Element) {
        let Some(session) = self.sessions.by_connection(connection) else {
            return;
        };
        let mut ctx = self.ctx(env);
        match element.name() {
            "inactive" => ctx.csi.set_inactive(session),
            "active" => ctx.flush_held(session),
            _ => {}
        }
    }

    /// The connection is gone. The session it carried ends, and its
    /// observers get their unavailable presence; unless the connection
    /// broke (`abrupt`: no stream close, a timeout) and the session can
    /// be resumed, in which case it hibernates.
    pub fn connection_lost(&mut self, env: &mut Env, connection: ConnectionId, abrupt: bool) {
        let Some(session) = self.sessions.by_connection(connection) else {
            return;
        };
        let mut ctx = self.ctx(env);
        if abrupt && sm::hibernate(&mut ctx, session) {
            return;
        }
        end_session(&mut ctx, session);
    }

    /// The server stops: hibernating sessions end now, so that what they
    /// kept reaches offline storage before the process exits.
    pub fn shutdown(&mut self, env: &mut Env) {
        let detached: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|s| s.connection().is_none())
            .map(|s| s.id)
            .collect();
        let mut ctx = self.ctx(env);
        for session in detached {
            end_session(&mut ctx, session);
        }
    }

    /// When [`Hub::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let archive = self.mam.next_expiry();
        self.sm.next_expiry().into_iter().chain(archive).min()
    }

    /// Hibernating sessions whose time is up end, and archives expire.
    pub fn handle_timeout(&mut self, env: &mut Env) {
        mam::handle_timeout(&mut self.ctx(env));
        loop {
            let expired = self.sm.expired(env.now);
            if expired.is_empty() {
                return;
            }
            let mut ctx = self.ctx(env);
            for session in expired {
                end_session(&mut ctx, session);
            }
        }
    }

    /// The operator ended the account's sessions (deleted, or a new
    /// password): each stream ends with `error`.
    pub fn end_sessions(&mut self, env: &mut Env, user: &BareJid, error: &StreamError) {
        let sessions: Vec<SessionId> = self.sessions.resources_of(user).map(|s| s.id).collect();
        let mut ctx = self.ctx(env);
        for session in sessions {
            ctx.evict(session, error.clone());
        }
    }

    /// The shim wrote what came before a notification the hub asked for.
    pub fn written(&mut self, env: &mut Env, connection: ConnectionId, token: u64) {
        if let Some(session) = self.sessions.by_connection(connection) {
            offline::delivered(&mut self.ctx(env), session, token);
        }
    }

    /// A storage answer, if one of the hub's modules asked; `false` if
    /// the request is not the hub's.
    pub fn storage(&mut self, env: &mut Env, request: RequestId, answer: StorageAnswer) -> bool {
        if self.rosters.owns(request) {
            rosters::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.offline.owns(request) {
            offline::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.last.owns(request) {
            last_activity::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.waiting.owns(request) {
            waiting::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.mam.owns(request) {
            mam::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.pep.owns(request) {
            pep::handle_storage(&mut self.ctx(env), request, answer);
        } else if self.avatars.owns(request) {
            avatar_conversion::handle_storage(&mut self.ctx(env), request, answer);
        } else {
            return false;
        }
        true
    }

    /// The session model's invariants, and every connected user's roster
    /// held.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.sessions.check_invariants()?;
        self.sm.check_invariants(&self.sessions)?;
        self.rosters.check_invariants()?;
        for s in self.sessions.iter() {
            if !self.rosters.is_held(&s.jid.to_bare()) {
                return Err(format!(
                    "{:?} is connected but its roster is not held",
                    s.id
                ));
            }
        }
        Ok(())
    }
}
