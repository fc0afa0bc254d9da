//! Where a stanza from a bound session goes (RFC 6120 section 10).
//!
//! The router checks and stamps `from`, resolves `to` once into a
//! [`Destination`], answers what is not here (no federation yet: the one
//! place that says so), and hands each stanza kind with its destination to
//! its module: `presence`, `iq` and `message`. Another core, node or
//! domain will be more destinations, forwarded as envelopes.

use crate::hub::Ctx;
use crate::iq;
use crate::message;
use crate::presence;
use crate::session::SessionId;
use crate::stanza::{error_reply, is_error, StanzaErrorCondition as E, StanzaKind};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use jid::{BareJid, FullJid, Jid};

/// A stanza from one of our sessions on its way: `from` checked and
/// stamped, `to` parsed and resolved once. Modules act on envelopes and
/// never resolve an address again; one for another core or node will
/// travel as it is.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The session that sent it, which replies and errors go back to.
    pub sender: SessionId,
    /// The sender's full JID, as stamped on the stanza.
    pub from: FullJid,
    pub to: Option<Jid>,
    pub destination: Destination,
    pub stanza: Element,
}

/// Where a stanza's `to` points, from its sender's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// No `to`: the sender's own account, answered by the server on its
    /// behalf (RFC 6120 section 10.3).
    Unaddressed,
    /// The server's domain.
    Server,
    /// A connected resource of a local account (the sender's own
    /// included).
    Session(SessionId),
    /// A local account: its bare JID, or a full JID whose resource is not
    /// connected (`resource_gone`).
    Account { user: BareJid, resource_gone: bool },
    /// A domain this server does not serve.
    Remote,
}

impl Destination {
    /// Resolve `to` as seen by a stanza from one of our sessions.
    pub(crate) fn of(ctx: &Ctx, to: Option<&Jid>) -> Destination {
        let Some(to) = to else {
            return Destination::Unaddressed;
        };
        if !ctx.config.serves(to.domain().as_str()) {
            return Destination::Remote;
        }
        if to.node().is_none() {
            // `domain/resource` names nothing here either.
            return Destination::Server;
        }
        if let Ok(full) = to.try_as_full() {
            if let Some(s) = ctx.sessions.by_full_jid(full) {
                return Destination::Session(s.id);
            }
            return Destination::Account {
                user: to.to_bare(),
                resource_gone: true,
            };
        }
        Destination::Account {
            user: to.to_bare(),
            resource_gone: false,
        }
    }
}

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
    let destination = Destination::of(ctx, to.as_ref());
    if destination == Destination::Remote {
        // No federation yet (RFC 6120 section 10.4.3 until then): a
        // subscription request or a message or iq is told; other presence
        // is dropped.
        let subscription = kind == StanzaKind::Presence
            && stanza
                .get_attr("type")
                .and_then(crate::roster::SubscriptionKind::parse)
                .is_some();
        if kind != StanzaKind::Presence || subscription {
            reply(&stanza, E::RemoteServerNotFound, session, ctx);
        }
        return Ok(());
    }
    let envelope = Envelope {
        sender: session,
        from: my_jid,
        to,
        destination,
        stanza,
    };
    match kind {
        StanzaKind::Presence => presence::handle(ctx, envelope),
        StanzaKind::Iq => iq::route(ctx, envelope),
        StanzaKind::Message => message::route(ctx, envelope),
    }
    Ok(())
}

/// Answer with a stanza error, never in reply to an error.
fn reply(stanza: &Element, condition: E, session: SessionId, ctx: &mut Ctx) {
    if !is_error(stanza) {
        ctx.deliver(session, &error_reply(stanza, condition));
    }
}
