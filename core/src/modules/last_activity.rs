//! Last Activity (XEP-0012): how long ago an account's last session
//! ended, with the status it left (`jabber:iq:last` to a bare JID, shown
//! to the contacts the account shares its presence with), and the
//! server's uptime (to the domain).

use super::{Addressee, Answer, IqHandler, Module, Request};
use crate::clock::WallClock;
use crate::hub::Ctx;
use crate::ns;
use crate::session::SessionId;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::storage::{RequestId, StorageAnswer, StorageRequest};
use crate::xml::Element;
use jid::Jid;
use std::collections::HashMap;

pub const NS: &str = "jabber:iq:last";

pub(crate) const MODULE: Module = Module {
    name: "last_activity",
    features: &[NS],
    account_features: &[NS],
    iqs: &[
        IqHandler {
            to: Addressee::Server,
            name: "query",
            ns: NS,
            get: Some(uptime),
            set: None,
        },
        IqHandler {
            to: Addressee::Account,
            name: "query",
            ns: NS,
            get: Some(last_logout),
            set: None,
        },
    ],
    ..Module::NONE
};

/// Look-ups in flight, and the statuses sessions left with.
#[derive(Default)]
pub(crate) struct LastActivity {
    /// When the server started, by the wall clock.
    started: Option<WallClock>,
    /// Storage look-ups, and the request each answers.
    lookups: HashMap<RequestId, (SessionId, Element)>,
    /// The status of a session's last unavailable presence, kept until
    /// the session ends (bounded by the presence size limit).
    statuses: HashMap<SessionId, String>,
}

impl LastActivity {
    pub fn owns(&self, request: RequestId) -> bool {
        self.lookups.contains_key(&request)
    }

    /// The wall clock as reported: the first report is the start.
    pub fn clock(&mut self, now: WallClock) {
        self.started.get_or_insert(now);
    }
}

fn query(seconds: u64, status: &str) -> Element {
    let query = Element::new("query", NS).attr("seconds", &seconds.to_string());
    if status.is_empty() {
        query
    } else {
        query.text(status)
    }
}

/// To the domain: seconds since the server started (section 3).
fn uptime(ctx: &mut Ctx, _: &Request) -> Answer {
    let started = ctx.last.started.unwrap_or(ctx.clock);
    Answer::Result(Some(query(
        ctx.clock.0.saturating_sub(started.0).as_secs(),
        "",
    )))
}

/// To an account: 0 while it has an available resource, else the time
/// since its last session ended, from storage (section 4).
fn last_logout(ctx: &mut Ctx, request: &Request) -> Answer {
    let account = match request.iq.get_attr("to").map(Jid::new) {
        Some(Ok(to)) => to.to_bare(),
        // No `to`: the asker's own account.
        _ => match ctx.sessions.get(request.session) {
            Some(s) => s.jid.to_bare(),
            None => return Answer::Error(E::ServiceUnavailable),
        },
    };
    if ctx.is_available(&account) {
        return Answer::Result(Some(query(0, "")));
    }
    if ctx.last.lookups.len() >= ctx.config.max_offline_in_flight {
        return Answer::Error(E::ResourceConstraint);
    }
    let lookup = ctx
        .out
        .storage(StorageRequest::LoadLastActivity { user: account });
    ctx.last
        .lookups
        .insert(lookup, (request.session, request.iq.clone()));
    Answer::Later
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    let Some((session, iq)) = ctx.last.lookups.remove(&request) else {
        return;
    };
    let reply = match answer {
        StorageAnswer::LastActivity(Some((at, status))) => {
            let seconds = ctx.clock.0.as_secs().saturating_sub(at);
            iq_result(&iq, Some(query(seconds, &status)))
        }
        // Never logged out since it existed: no record.
        StorageAnswer::LastActivity(None) => error_reply(&iq, E::ItemNotFound),
        _ => error_reply(&iq, E::InternalServerError),
    };
    ctx.deliver(session, &reply);
}

/// A session broadcast unavailable presence: its status is what the
/// account leaves with, if it is the last to go.
pub(crate) fn unavailable(ctx: &mut Ctx, session: SessionId, presence: &Element) {
    if !ctx.loaded.has(MODULE.name) {
        return;
    }
    match presence.get_child("status", ns::CLIENT) {
        Some(status) => {
            ctx.last.statuses.insert(session, status.text_content());
        }
        None => {
            ctx.last.statuses.remove(&session);
        }
    }
}

/// A session ends; if it was the account's last, the account's last
/// activity is now, with the status it left.
pub(crate) fn session_ended(ctx: &mut Ctx, session: SessionId) {
    let status = ctx.last.statuses.remove(&session).unwrap_or_default();
    if !ctx.loaded.has(MODULE.name) {
        return;
    }
    let Some(user) = ctx.account_of(session) else {
        return;
    };
    if ctx.sessions.resources_of(&user).any(|s| s.id != session) {
        return;
    }
    ctx.out.storage(StorageRequest::StoreLastActivity {
        user,
        at: ctx.clock.0.as_secs(),
        status,
    });
}
