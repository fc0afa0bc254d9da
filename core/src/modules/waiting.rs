//! Iqs a module answers once storage has spoken (a vCard read, a private
//! XML write): the one place that keeps them, bounded server-wide, and
//! hands each answer to the module that asked.

use super::{Answer, Request};
use crate::hub::Ctx;
use crate::session::SessionId;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{RequestId, StorageAnswer, StorageRequest, StoreOutcome};
use crate::xml::Element;
use std::collections::HashMap;

/// What answers an iq once storage has: given the asking session (which
/// it may send more to first), what the module kept of the request, and
/// storage's answer.
pub(crate) type Then = fn(&mut Ctx, SessionId, Option<&Element>, StorageAnswer) -> Answer;

/// Iqs waiting for storage, by the request each waits for.
#[derive(Default)]
pub(crate) struct Waiting {
    iqs: HashMap<RequestId, Iq>,
}

struct Iq {
    session: SessionId,
    /// The iq without its payload: all a reply needs, and all that is
    /// worth holding while storage works.
    head: Element,
    /// What the module needs of the request to answer it (small).
    kept: Option<Element>,
    then: Then,
}

impl Waiting {
    pub fn owns(&self, request: RequestId) -> bool {
        self.iqs.contains_key(&request)
    }
}

/// Ask storage `query` for `request`, which `then` answers with `kept`;
/// while too many iqs wait already (`max_offline_in_flight`, as many as
/// offline stores), the asker is told to wait instead.
pub(crate) fn ask(
    ctx: &mut Ctx,
    request: &Request,
    query: StorageRequest,
    kept: Option<Element>,
    then: Then,
) -> Answer {
    if ctx.waiting.iqs.len() >= ctx.config.max_offline_in_flight {
        return Answer::Error(E::ResourceConstraint);
    }
    let head = request.iq.shallow();
    let id = ctx.out.storage(query);
    ctx.waiting.iqs.insert(
        id,
        Iq {
            session: request.session,
            head,
            kept,
            then,
        },
    );
    Answer::Later
}

pub(crate) fn handle_storage(ctx: &mut Ctx, request: RequestId, answer: StorageAnswer) {
    let Some(iq) = ctx.waiting.iqs.remove(&request) else {
        return;
    };
    // `None`: answered by another request the module made.
    let Some(reply) = (iq.then)(ctx, iq.session, iq.kept.as_ref(), answer).reply(&iq.head) else {
        return;
    };
    ctx.deliver(iq.session, &reply);
}

/// A write's outcome, as an answer: a result once durable.
pub(crate) fn written(answer: StorageAnswer) -> Answer {
    match answer {
        StorageAnswer::Stored(StoreOutcome::Stored) | StorageAnswer::Written => {
            Answer::Result(None)
        }
        StorageAnswer::Stored(StoreOutcome::QuotaExceeded) => Answer::Error(E::ResourceConstraint),
        _ => Answer::Error(E::InternalServerError),
    }
}
