//! Archiving preferences (XEP-0313 section 6): which conversations an
//! account's archive keeps. They are roster data, changed in the
//! account's roster queue like its blocklist: a change is answered once
//! durable, and the router, which holds the rosters of online accounts,
//! applies them as each message passes; storage applies those of an
//! account that is offline.

use crate::config::Config;
use crate::hub::Ctx;
use crate::modules::{Answer, Request};
use crate::roster::manager::{self, Effect, Op};
use crate::roster::{ArchiveDefault, ArchivePrefs, Roster, RosterChange};
use crate::session::SessionId;
use crate::stanza::{error_reply, iq_result, StanzaErrorCondition as E};
use crate::xml::Element;
use jid::Jid;
use std::collections::BTreeSet;

/// A get or set of the preferences runs in the account's roster queue.
pub(super) fn queue(ctx: &mut Ctx, request: &Request) -> Answer {
    manager::queue_iq(ctx, request, |session, iq| Op::ArchivePrefs { session, iq })
}

/// What a get or set does to the roster, and its answer.
pub(crate) fn plan(
    config: &Config,
    roster: &Roster,
    session: SessionId,
    iq: &Element,
) -> (Vec<RosterChange>, Vec<Effect>) {
    let reply = |e: Element| vec![Effect::Reply(session, e)];
    // Answered in the namespace asked (`urn:xmpp:mam:2` or `:1`).
    let Some(payload) = iq.children().find(|c| c.name() == "prefs") else {
        return (Vec::new(), reply(error_reply(iq, E::BadRequest)));
    };
    let ns = super::version_of(payload);
    if iq.get_attr("type") != Some("set") {
        let current = roster.archive_prefs.as_deref().cloned().unwrap_or_default();
        return (
            Vec::new(),
            reply(iq_result(iq, Some(element(&current, ns)))),
        );
    }
    match parse(payload, config.archive.max_prefs_jids) {
        Err(condition) => (Vec::new(), reply(error_reply(iq, condition))),
        Ok(prefs) => {
            let answer = iq_result(iq, Some(element(&prefs, ns)));
            if roster.archive_prefs.as_deref().cloned().unwrap_or_default() == prefs {
                // Nothing to write.
                return (Vec::new(), reply(answer));
            }
            // The default takes no storage and no memory.
            let stored = (prefs != ArchivePrefs::default()).then(|| Box::new(prefs));
            (vec![RosterChange::ArchivePrefs(stored)], reply(answer))
        }
    }
}

/// The preferences in a set (section 6.1): a default, and lists of bare
/// JIDs (a full JID stands for its bare JID).
fn parse(prefs: &Element, max_jids: usize) -> Result<ArchivePrefs, E> {
    let default = prefs
        .get_attr("default")
        .and_then(ArchiveDefault::parse)
        .ok_or(E::BadRequest)?;
    let list = |name: &str| -> Result<BTreeSet<String>, E> {
        let mut jids = BTreeSet::new();
        let Some(list) = prefs.get_child(name, prefs.ns()) else {
            return Ok(jids);
        };
        for jid in list.children().filter(|c| c.is("jid", prefs.ns())) {
            let jid = Jid::new(jid.text_content().trim()).map_err(|_| E::JidMalformed)?;
            jids.insert(jid.to_bare().to_string());
        }
        Ok(jids)
    };
    let (mut always, never) = (list("always")?, list("never")?);
    // A JID in both lists is never kept, as in Prosody: it is kept once.
    always.retain(|jid| !never.contains(jid));
    if always.len() + never.len() > max_jids {
        // Refused, like a blocklist past its cap, before any work.
        return Err(E::ResourceConstraint);
    }
    Ok(ArchivePrefs {
        default,
        always,
        never,
    })
}

/// `<prefs/>` as a result carries them (both lists present, if empty).
fn element(prefs: &ArchivePrefs, ns: &'static str) -> Element {
    let list = |name: &str, jids: &BTreeSet<String>| {
        jids.iter().fold(Element::new(name, ns), |list, jid| {
            list.child(Element::new("jid", ns).text(jid))
        })
    };
    Element::new("prefs", ns)
        .attr("default", prefs.default.name())
        .child(list("always", &prefs.always))
        .child(list("never", &prefs.never))
}
