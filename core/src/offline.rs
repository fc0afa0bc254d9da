//! Offline messages (XEP-0160): kept durably for a user with no available
//! resource, stamped with when they arrived (XEP-0203), and delivered in
//! order at the user's next initial presence.

use crate::connection::Ctx;
use crate::ns;
use crate::session::SessionId;
use crate::stanza::{error_reply, StanzaErrorCondition as E};
use crate::storage::{RequestId, StorageAnswer, StorageRequest, StoreOutcome};
use crate::xml::Element;
use jid::BareJid;
use std::collections::HashMap;

pub const NS_DELAY: &str = "urn:xmpp:delay";

/// Offline requests in flight.
#[derive(Default)]
pub(crate) struct Offline {
    /// Messages being stored, with their sender to tell if refused.
    stores: HashMap<RequestId, (SessionId, Element)>,
    /// Stored messages being fetched for this session.
    takes: HashMap<RequestId, (SessionId, BareJid)>,
}

impl Offline {
    pub fn owns(&self, request: RequestId) -> bool {
        self.stores.contains_key(&request) || self.takes.contains_key(&request)
    }
}

/// Keep `message` (from `sender`) for `user`, with a delay stamp.
pub(crate) fn store(ctx: &mut Ctx, sender: SessionId, user: &BareJid, message: Element) {
    let mut stamped = message.clone();
    let domain = user.domain().as_str().to_owned();
    stamped.push_child(
        Element::new("delay", NS_DELAY)
            .attr("from", &domain)
            .attr("stamp", &ctx.clock.xmpp_datetime())
            .text("Offline Storage"),
    );
    let request = ctx.out.storage(StorageRequest::StoreOffline {
        user: user.clone(),
        stanza: stamped.to_stream_string(),
        quota: ctx.config.offline_quota,
    });
    ctx.offline.stores.insert(request, (sender, message));
}

/// The session sent initial presence: fetch what waited for the user.
pub(crate) fn deliver(ctx: &mut Ctx, session: SessionId, user: &BareJid) {
    let request = ctx
        .out
        .storage(StorageRequest::TakeOffline { user: user.clone() });
    ctx.offline.takes.insert(request, (session, user.clone()));
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    if let Some((sender, message)) = ctx.offline.stores.remove(&request) {
        let refused = match answer {
            StorageAnswer::Stored(StoreOutcome::Stored) => false,
            // Over quota, no such user, or storage failed: the sender must
            // know the message was not kept (RFC 6121 section 8.5.2.1.1).
            _ => true,
        };
        if refused {
            if let Some(connection) = ctx.sessions.get(sender).map(|s| s.connection) {
                ctx.out
                    .send_element(connection, &error_reply(&message, E::ServiceUnavailable));
            }
        }
        return;
    }
    let Some((session, user)) = ctx.offline.takes.remove(&request) else {
        return;
    };
    let StorageAnswer::Offline(messages) = answer else {
        return;
    };
    match ctx.sessions.get(session).map(|s| s.connection) {
        Some(connection) => {
            for message in messages {
                ctx.out.send(connection, &message);
            }
        }
        None => {
            // The session left before its messages arrived: keep them.
            for stanza in messages {
                let request = ctx.out.storage(StorageRequest::StoreOffline {
                    user: user.clone(),
                    stanza,
                    quota: usize::MAX,
                });
                let placeholder = Element::new("message", ns::CLIENT).attr("type", "error");
                ctx.offline.stores.insert(request, (session, placeholder));
            }
        }
    }
}
