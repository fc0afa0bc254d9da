//! Message Archive Management (XEP-0313): chats are kept in both parties'
//! archives under the stanza-id the recipient sees, and an account pages
//! through its own archive.

mod support;
use rookery_core::{Config, WallClock};
use std::time::Duration;
use support::*;

/// The id of the `n`th message archived since the bench started: the
/// bench's wall clock in microseconds, one more for each message archived
/// while it stands still.
fn id(n: u64) -> String {
    (1_795_580_000_000_000 + n - 1).to_string()
}

fn sid(n: u64, by: &str) -> String {
    format!(
        "<stanza-id xmlns='urn:xmpp:sid:0' id='{}' by='{by}'/>",
        id(n)
    )
}

const STAMP: &str = "2026-11-25T04:13:20Z";

fn bench() -> Bench {
    Bench::with_config(archiving())
}

/// Juliet and Romeo, bound and available.
fn pair(b: &mut Bench) -> (rookery_core::ConnectionId, rookery_core::ConnectionId) {
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    for c in [juliet, romeo] {
        b.send(c, "<presence/>");
        b.take(c);
    }
    (juliet, romeo)
}

fn chat(to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat'><body>{body}</body></message>")
}

/// What Juliet's archive answers a query with: each message as a result
/// (re-read from storage: its namespace declared inside `<forwarded/>`,
/// attributes in the parser's order), then the iq.
fn result(n: u64, body: &str) -> String {
    format!(
        "<message to='juliet@localhost/balcony'><result xmlns='urn:xmpp:mam:2' id='{id}' queryid='q'>\
         <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='{STAMP}'/>\
         <message xmlns='jabber:client' from='romeo@localhost/orchard' to='juliet@localhost' type='chat'>\
         <body>{body}</body><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@localhost' id='{id}'/></message>\
         </forwarded></result></message>",
        id = id(n),
    )
}

fn query(inner: &str) -> String {
    format!("<iq type='set' id='m'><query xmlns='urn:xmpp:mam:2' queryid='q'>{inner}</query></iq>")
}

fn rsm(inner: &str) -> String {
    format!("<set xmlns='http://jabber.org/protocol/rsm'>{inner}</set>")
}

fn fin(complete: bool, first: u64, last: u64) -> String {
    let complete = if complete { " complete='true'" } else { "" };
    format!(
        "<iq type='result' id='m' to='juliet@localhost/balcony'><fin xmlns='urn:xmpp:mam:2'{complete}>\
         <set xmlns='http://jabber.org/protocol/rsm'><first>{}</first><last>{}</last></set></fin></iq>",
        id(first),
        id(last)
    )
}

/// Romeo sends Juliet `bodies`, archived as 1, 2, …
fn romeo_writes(b: &mut Bench, romeo: rookery_core::ConnectionId, bodies: &[&str]) {
    for body in bodies {
        b.send(romeo, &chat("juliet@localhost", body));
    }
}

#[test]
fn a_delivered_chat_carries_the_recipients_stanza_id_and_both_archives_keep_it() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert_eq!(
        b.take(juliet),
        format!(
            "<message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'><body>hi</body>{}</message>",
            sid(1, "juliet@localhost")
        )
    );
    let kept = |user: &str| -> Vec<(String, (String, Option<String>))> {
        b.archive[user]
            .iter()
            .map(|(m, with)| (m.seq.to_string(), with.clone()))
            .collect()
    };
    assert_eq!(
        kept("juliet@localhost"),
        [(id(1), ("romeo@localhost".into(), Some("orchard".into())))]
    );
    assert_eq!(
        kept("romeo@localhost"),
        [(id(1), ("juliet@localhost".into(), None))]
    );
}

#[test]
fn a_stanza_id_a_client_claims_for_the_recipients_archive_is_removed() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='chat'><body>hi</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@localhost'/></message>",
    );
    let got = b.take(juliet);
    assert!(!got.contains("forged"), "{got}");
    assert!(got.contains(&sid(1, "juliet@localhost")), "{got}");
}

#[test]
fn a_forged_stanza_id_is_removed_from_messages_not_archived_too() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='headline'><body>news</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='JULIET@localhost/x'/></message>",
    );
    assert!(!b.take(juliet).contains("forged"));
}

#[test]
fn one_query_at_a_time_per_session() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.auto_storage = false;
    b.send(juliet, &query(""));
    b.send(juliet, &query(""));
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='m' to='juliet@localhost/balcony'><error type='wait'>\
         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    b.answer_storage();
    assert!(b.take(juliet).contains("<fin "));
    b.auto_storage = true;
    b.send(juliet, &query(""));
    assert!(b.take(juliet).contains("<fin "));
}

#[test]
fn a_message_from_someone_the_offline_recipient_blocks_stays_out_of_its_archive() {
    let mut b = bench();
    b.rosters
        .entry("juliet@localhost".into())
        .or_default()
        .blocked
        .insert("romeo@localhost".into());
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &chat("juliet@localhost", "let me in"));
    assert!(
        !b.archive.contains_key("juliet@localhost"),
        "{:?}",
        b.archive
    );
}

#[test]
fn only_chats_and_normal_messages_with_a_body_are_archived() {
    let mut b = bench();
    let (_, romeo) = pair(&mut b);
    for stanza in [
        "<message to='juliet@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message to='juliet@localhost' type='headline'><body>news</body></message>",
        "<message to='juliet@localhost' type='chat'><body>off the record</body><no-store xmlns='urn:xmpp:hints'/></message>",
    ] {
        b.send(romeo, stanza);
    }
    assert!(b.archive.is_empty(), "{:?}", b.archive);
    b.send(
        romeo,
        "<message to='juliet@localhost'><body>normal</body></message>",
    );
    assert_eq!(b.archive["juliet@localhost"].len(), 1);
}

#[test]
fn a_message_stored_offline_is_archived_with_its_stanza_id() {
    let mut b = bench();
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &chat("juliet@localhost", "later"));
    let stored = &b.offline["juliet@localhost"][0];
    assert!(stored.contains(&sid(1, "juliet@localhost")), "{stored}");
    assert_eq!(b.archive["juliet@localhost"].len(), 1);
}

#[test]
fn a_query_returns_each_message_then_a_complete_fin() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one", "two"]);
    b.take(juliet);
    b.send(juliet, &query(""));
    assert_eq!(
        b.take(juliet),
        result(1, "one") + &result(2, "two") + &fin(true, 1, 2)
    );
}

#[test]
fn pages_run_forward_from_the_last_id_seen() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one", "two", "three"]);
    b.take(juliet);
    b.send(juliet, &query(&rsm("<max>2</max>")));
    assert_eq!(
        b.take(juliet),
        result(1, "one") + &result(2, "two") + &fin(false, 1, 2)
    );
    b.send(
        juliet,
        &query(&rsm(&format!("<max>2</max><after>{}</after>", id(2)))),
    );
    assert_eq!(b.take(juliet), result(3, "three") + &fin(true, 3, 3));
}

#[test]
fn an_empty_before_asks_for_the_last_page_and_flip_page_reverses_it() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one", "two", "three"]);
    b.take(juliet);
    b.send(juliet, &query(&rsm("<max>2</max><before/>")));
    assert_eq!(
        b.take(juliet),
        result(2, "two") + &result(3, "three") + &fin(false, 2, 3)
    );
    b.send(
        juliet,
        &query(&(rsm("<max>2</max><before/>") + "<flip-page/>")),
    );
    assert_eq!(
        b.take(juliet),
        // The bounds stay in archive order.
        result(3, "three") + &result(2, "two") + &fin(false, 2, 3)
    );
}

#[test]
fn the_with_field_filters_by_the_other_party() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one"]);
    b.send(juliet, &chat("romeo@localhost", "reply"));
    b.take(juliet);
    b.take(romeo);
    let form = "<x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
        <field var='with'><value>nurse@localhost</value></field></x>";
    b.send(juliet, &query(form));
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='m' to='juliet@localhost/balcony'><fin xmlns='urn:xmpp:mam:2' complete='true'>\
         <set xmlns='http://jabber.org/protocol/rsm'/></fin></iq>"
    );
    b.send(juliet, &query(&form.replace("nurse", "romeo")));
    let got = b.take(juliet);
    assert_eq!(got.matches("<result ").count(), 2, "{got}");
}

#[test]
fn start_and_end_bound_the_messages_by_their_stamps() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one"]);
    b.take(juliet);
    let form = |var: &str, value: &str| {
        format!("<x xmlns='jabber:x:data' type='submit'><field var='{var}'><value>{value}</value></field></x>")
    };
    b.send(juliet, &query(&form("start", "2026-11-25T04:13:21Z")));
    assert!(!b.take(juliet).contains("<result "));
    b.send(juliet, &query(&form("end", "2026-11-25T04:13:20Z")));
    assert!(b.take(juliet).contains("<result "));
    b.send(juliet, &query(&form("start", "yesterday")));
    assert!(b.take(juliet).contains("<bad-request "));
}

#[test]
fn paging_from_an_id_not_in_the_archive_is_item_not_found() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(juliet, &query(&rsm("<after>nonesuch</after>")));
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='m' to='juliet@localhost/balcony'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn a_filter_the_server_does_not_know_is_refused_not_ignored() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(
        juliet,
        &query("<x xmlns='jabber:x:data' type='submit'><field var='fulltext'><value>love</value></field></x>"),
    );
    assert!(b.take(juliet).contains("<feature-not-implemented "));
}

#[test]
fn a_page_is_never_larger_than_the_configured_maximum() {
    let mut config = archiving();
    config.archive.max_page = 2;
    let mut b = Bench::with_config(config);
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one", "two", "three"]);
    b.take(juliet);
    b.send(juliet, &query(&rsm("<max>1000</max>")));
    assert_eq!(
        b.take(juliet),
        result(1, "one") + &result(2, "two") + &fin(false, 1, 2)
    );
}

#[test]
fn the_query_form_lists_the_supported_filters() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(
        juliet,
        "<iq type='get' id='f'><query xmlns='urn:xmpp:mam:2'/></iq>",
    );
    let form = b.take(juliet);
    for var in ["FORM_TYPE", "with", "start", "end", "before-id", "after-id"] {
        assert!(form.contains(&format!("var='{var}'")), "{var}: {form}");
    }
}

#[test]
fn the_account_advertises_mam_and_stanza_ids() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(
        juliet,
        "<iq type='get' id='d' to='juliet@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let info = b.take(juliet);
    for feature in ["urn:xmpp:mam:1", "urn:xmpp:mam:2", "urn:xmpp:sid:0"] {
        assert!(
            info.contains(&format!("<feature var='{feature}'/>")),
            "{info}"
        );
    }
}

#[test]
fn a_query_in_the_older_namespace_is_answered_in_it() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["hi"]);
    b.take(juliet);
    b.send(
        juliet,
        "<iq type='set' id='m'><query xmlns='urn:xmpp:mam:1' queryid='q'/></iq>",
    );
    let answer = b.take(juliet);
    assert!(
        answer.starts_with(&result(1, "hi").replace("urn:xmpp:mam:2", "urn:xmpp:mam:1")),
        "{answer}"
    );
    assert!(
        answer.ends_with(&fin(true, 1, 1).replace("urn:xmpp:mam:2", "urn:xmpp:mam:1")),
        "{answer}"
    );
    b.send(
        juliet,
        "<iq type='get' id='p'><prefs xmlns='urn:xmpp:mam:1'/></iq>",
    );
    assert!(b
        .take(juliet)
        .contains("<prefs xmlns='urn:xmpp:mam:1' default='always'>"),);
}

#[test]
fn past_the_cap_an_accounts_oldest_messages_go() {
    let mut config = archiving();
    config.archive.max_messages = 2;
    let mut b = Bench::with_config(config);
    let (_, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["one", "two", "three"]);
    let ids: Vec<String> = b.archive["juliet@localhost"]
        .iter()
        .map(|(m, _)| m.seq.to_string())
        .collect();
    assert_eq!(ids, [id(2), id(3)]);
}

#[test]
fn messages_older_than_the_retention_expire_in_the_background() {
    let mut b = bench();
    let (_, romeo) = pair(&mut b);
    romeo_writes(&mut b, romeo, &["old"]);
    let year_and_a_day = Duration::from_secs(366 * 24 * 60 * 60);
    b.server.handle_wall_clock(WallClock(
        Duration::from_secs(1_795_580_000) + year_and_a_day,
    ));
    romeo_writes(&mut b, romeo, &["new"]);
    // Expiry first runs a minute after the server started.
    b.advance(Duration::from_secs(61));
    let left: Vec<&str> = b.archive["juliet@localhost"]
        .iter()
        .map(|(m, _)| m.stanza.as_str())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("<body>new</body>"), "{left:?}");
}

#[test]
fn disabling_the_module_stops_archiving_and_the_feature() {
    let config = Config {
        modules_disabled: vec!["mam".into()],
        ..archiving()
    };
    let mut b = Bench::with_config(config);
    let (juliet, romeo) = pair(&mut b);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert!(!b.take(juliet).contains("stanza-id"));
    assert!(b.archive.is_empty());
}

const PREFS_GET: &str = "<iq type='get' id='p'><prefs xmlns='urn:xmpp:mam:2'/></iq>";

/// A preferences set; `inner` goes on from the `<prefs` start tag.
fn prefs(iq_type: &str, inner: &str) -> String {
    format!("<iq type='{iq_type}' id='p'><prefs xmlns='urn:xmpp:mam:2'{inner}</prefs></iq>")
}

/// How many messages `user`'s archive holds.
fn kept_by(b: &Bench, user: &str) -> usize {
    b.archive.get(user).map_or(0, Vec::len)
}

fn prefs_result(to: &str, default: &str, always: &str, never: &str) -> String {
    let list = |name: &str, jids: &str| match jids {
        "" => format!("<{name}/>"),
        jid => format!("<{name}><jid>{jid}</jid></{name}>"),
    };
    format!(
        "<iq type='result' id='p' to='{to}'><prefs xmlns='urn:xmpp:mam:2' default='{default}'>{}{}</prefs></iq>",
        list("always", always),
        list("never", never)
    )
}

#[test]
fn preferences_read_as_always_until_set_and_a_set_is_answered_with_what_is_kept() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(juliet, PREFS_GET);
    assert_eq!(
        b.take(juliet),
        prefs_result("juliet@localhost/balcony", "always", "", "")
    );
    b.send(
        juliet,
        &prefs(
            "set",
            " default='roster'><always><jid>nurse@localhost/garden</jid></always><never><jid>Tybalt@localhost</jid></never>",
        ),
    );
    assert_eq!(
        b.take(juliet),
        prefs_result(
            "juliet@localhost/balcony",
            "roster",
            "nurse@localhost",
            "tybalt@localhost"
        )
    );
    let stored = b.rosters["juliet@localhost"].archive_prefs.clone();
    assert_eq!(
        stored.map(|p| (p.default.name(), p.always.len(), p.never.len())),
        Some(("roster", 1, 1))
    );
}

#[test]
fn a_preferences_set_without_a_known_default_is_a_bad_request() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    b.send(juliet, &prefs("set", " default='sometimes'>"));
    let answer = b.take(juliet);
    assert!(answer.contains("<bad-request"), "{answer}");
    assert!(b
        .rosters
        .get("juliet@localhost")
        .is_none_or(|r| r.archive_prefs.is_none()));
}

#[test]
fn preferences_past_their_cap_are_refused_whole() {
    let mut config = archiving();
    config.archive.max_prefs_jids = 1;
    let mut b = Bench::with_config(config);
    let (juliet, _) = pair(&mut b);
    b.send(
        juliet,
        &prefs(
            "set",
            " default='always'><never><jid>a@localhost</jid><jid>b@localhost</jid></never>",
        ),
    );
    let answer = b.take(juliet);
    assert!(answer.contains("<resource-constraint"), "{answer}");
}

#[test]
fn a_chat_the_recipients_preferences_leave_out_has_no_stanza_id_and_only_the_sender_keeps_it() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(juliet, &prefs("set", " default='never'>"));
    b.take(juliet);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert_eq!(
        b.take(juliet),
        "<message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'><body>hi</body></message>"
    );
    assert_eq!(
        (
            kept_by(&b, "juliet@localhost"),
            kept_by(&b, "romeo@localhost")
        ),
        (0, 1)
    );
}

#[test]
fn a_chat_the_senders_preferences_leave_out_is_kept_by_the_recipient_alone() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(
        romeo,
        &prefs(
            "set",
            " default='always'><never><jid>juliet@localhost</jid></never>",
        ),
    );
    b.take(romeo);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    b.take(juliet);
    assert_eq!(
        (
            kept_by(&b, "romeo@localhost"),
            kept_by(&b, "juliet@localhost")
        ),
        (0, 1)
    );
}

#[test]
fn the_roster_default_keeps_contacts_and_leaves_strangers_out() {
    let mut b = bench();
    let (juliet, romeo) = pair(&mut b);
    b.send(
        juliet,
        "<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost'/></query></iq>",
    );
    b.take(juliet);
    b.send(juliet, &prefs("set", " default='roster'>"));
    b.take(juliet);
    b.send(romeo, &chat("juliet@localhost", "a contact"));
    b.add_user("nurse", "n0rs3", 4096);
    let nurse = b.bound("nurse", "n0rs3", "garden");
    b.send(nurse, &chat("juliet@localhost", "a stranger"));
    let kept: Vec<bool> = b.archive["juliet@localhost"]
        .iter()
        .map(|(m, _)| m.stanza.contains("a contact"))
        .collect();
    assert_eq!(kept, [true]);
}

#[test]
fn an_offline_recipients_stored_preferences_keep_its_archive_out() {
    let mut b = bench();
    b.rosters
        .entry("juliet@localhost".into())
        .or_default()
        .archive_prefs = Some(Box::new(rookery_core::roster::ArchivePrefs {
        default: rookery_core::roster::ArchiveDefault::Never,
        ..Default::default()
    }));
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &chat("juliet@localhost", "later"));
    assert_eq!(
        (
            kept_by(&b, "juliet@localhost"),
            kept_by(&b, "romeo@localhost")
        ),
        (0, 1)
    );
}

#[test]
fn a_jid_in_both_lists_is_never_kept_and_an_unchanged_set_writes_nothing() {
    let mut b = bench();
    let (juliet, _) = pair(&mut b);
    let set = prefs(
        "set",
        " default='always'><always><jid>romeo@localhost</jid></always>\
         <never><jid>romeo@localhost</jid></never>",
    );
    b.send(juliet, &set);
    assert_eq!(
        b.take(juliet),
        prefs_result("juliet@localhost/balcony", "always", "", "romeo@localhost")
    );
    let version = b.rosters["juliet@localhost"].version;
    b.send(juliet, &set);
    b.take(juliet);
    assert_eq!(b.rosters["juliet@localhost"].version, version);
}
