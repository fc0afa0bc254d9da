//! Where a stanza from a bound session goes (RFC 6120 section 10).
//!
//! The router checks and stamps `from`, refuses remote domains until
//! federation exists, and hands each stanza kind to its module: `presence`,
//! `iq` and `message`.

use crate::hub::Ctx;
use crate::iq;
use crate::message;
use crate::presence;
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
    let my_jid = me.jid.clone();
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
            reply(&stanza, E::JidMalformed, session, ctx);
            return Ok(());
        }
    };
    if let Some(to) = &to {
        // No federation yet (RFC 6120 section 10.4.3 until then); presence
        // decides for itself (subscriptions are refused, the rest dropped).
        if !ctx.config.serves(to.domain().as_str()) && kind != StanzaKind::Presence {
            reply(&stanza, E::RemoteServerNotFound, session, ctx);
            return Ok(());
        }
    }
    match kind {
        StanzaKind::Presence => presence::handle(ctx, session, stanza, to),
        StanzaKind::Iq => iq::route(ctx, session, stanza, to),
        StanzaKind::Message => {
            // No `to`: the user's own account (RFC 6120 section 10.3.1).
            let to = to.unwrap_or_else(|| Jid::from(my_jid.to_bare()));
            message::route(ctx, session, stanza, to);
        }
    }
    Ok(())
}

/// Answer with a stanza error, never in reply to an error.
fn reply(stanza: &Element, condition: E, session: SessionId, ctx: &mut Ctx) {
    if !is_error(stanza) {
        ctx.deliver(session, &error_reply(stanza, condition));
    }
}
