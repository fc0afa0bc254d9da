//! Where a stanza from a bound session goes (RFC 6120 section 10).
//!
//! Stamping `from`, presence to the presence module, roster iqs to the
//! roster manager, delivery to a connected full JID, and an error for
//! everything not yet deliverable, so that no iq goes unanswered and no
//! message vanishes silently. Bare-JID message delivery and offline storage
//! build on it (issue 4).

use crate::connection::Ctx;
use crate::presence;
use crate::roster::manager::{self, Op};
use crate::roster::NS_ROSTER;
use crate::session::SessionId;
use crate::stanza::{error_reply, is_error, StanzaErrorCondition as E, StanzaKind};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use jid::Jid;

pub(crate) fn from_session(
    session: SessionId,
    kind: StanzaKind,
    mut stanza: Element,
    ctx: &mut Ctx,
) -> Result<(), StreamError> {
    let Some(me) = ctx.sessions.get(session) else {
        return Err(StreamError::new(StreamErrorCondition::InternalServerError));
    };
    let (my_jid, my_connection) = (me.jid.clone(), me.connection);
    // RFC 6120 section 8.1.2.1: the server stamps the full JID; a `from`
    // naming anyone else is refused (poezio sends its own full JID, which
    // is fine, as is the bare JID).
    if let Some(from) = stanza.get_attr("from") {
        let claimed = Jid::new(from).ok();
        let own = claimed.as_ref().is_some_and(|j| {
            j.as_str() == my_jid.as_str() || j.as_str() == my_jid.to_bare().as_str()
        });
        if !own {
            return Err(StreamError::new(StreamErrorCondition::InvalidFrom));
        }
    }
    stanza.set_attr("from", my_jid.as_str());
    let to = match stanza.get_attr("to").map(Jid::new) {
        None => None,
        Some(Ok(jid)) => Some(jid),
        Some(Err(_)) => {
            stanza.remove_attr("to");
            reply(&stanza, E::JidMalformed, my_connection, ctx);
            return Ok(());
        }
    };
    if kind == StanzaKind::Presence {
        presence::handle(ctx, session, stanza, to);
        return Ok(());
    }
    let to_account = to.as_ref().is_none_or(|t| t.resource().is_none());
    if kind == StanzaKind::Iq && to_account && stanza.get_child("query", NS_ROSTER).is_some() {
        let own = to
            .as_ref()
            .is_none_or(|t| t.as_str() == my_jid.to_bare().as_str());
        if !own {
            // One user's roster is no one else's business.
            reply(&stanza, E::Forbidden, my_connection, ctx);
        } else if matches!(stanza.get_attr("type"), Some("get") | Some("set")) {
            let user = my_jid.to_bare();
            manager::submit(
                ctx,
                &user,
                Op::RosterIq {
                    session,
                    iq: stanza,
                },
            );
        }
        return Ok(());
    }
    let target = to
        .as_ref()
        .and_then(|j| j.try_as_full().ok())
        .and_then(|full| ctx.sessions.by_full_jid(full))
        .map(|s| s.connection);
    if let Some(connection) = target {
        ctx.out.send_element(connection, &stanza);
        return Ok(());
    }
    if let Some(to) = &to {
        if !ctx.config.serves(to.domain().as_str()) {
            reply(&stanza, E::RemoteServerNotFound, my_connection, ctx);
            return Ok(());
        }
    }
    match kind {
        StanzaKind::Presence => {}
        StanzaKind::Iq => {
            if matches!(stanza.get_attr("type"), Some("get") | Some("set")) {
                reply(&stanza, E::ServiceUnavailable, my_connection, ctx);
            }
        }
        StanzaKind::Message => {
            if !matches!(stanza.get_attr("type"), Some("headline")) {
                reply(&stanza, E::ServiceUnavailable, my_connection, ctx);
            }
        }
    }
    Ok(())
}

/// Answer with a stanza error, never in reply to an error.
fn reply(stanza: &Element, condition: E, connection: crate::ConnectionId, ctx: &mut Ctx) {
    if !is_error(stanza) {
        ctx.out
            .send_element(connection, &error_reply(stanza, condition));
    }
}
