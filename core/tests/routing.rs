//! Stanza routing (RFC 6120 section 10, RFC 6121 section 8.5), offline
//! messages (XEP-0160) and the server's own iq services.

mod support;
use rookery_core::{ConnectionId, Output};
use std::time::Duration;
use support::*;

fn online(b: &mut Bench, user: &str, resource: &str, priority: i8) -> ConnectionId {
    let password = if user == "juliet" { "r0m30" } else { "j00l13t" };
    let c = b.bound(user, password, resource);
    b.send(
        c,
        &format!("<presence><priority>{priority}</priority></presence>"),
    );
    b.take(c);
    c
}

fn chat(to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat'><body>{body}</body></message>")
}

fn delivered(from: &str, to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat' from='{from}'><body>{body}</body></message>")
}

#[test]
fn bare_jid_message_goes_to_the_highest_priority_resource() {
    let mut b = Bench::new();
    let low = online(&mut b, "juliet", "low", 1);
    let high = online(&mut b, "juliet", "high", 5);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.take(low);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert_eq!(
        b.take(high),
        delivered("romeo@localhost/orchard", "juliet@localhost", "hi")
    );
    assert_eq!(b.take(low), "");
}

#[test]
fn equal_top_priorities_all_receive_the_message() {
    let mut b = Bench::new();
    let one = online(&mut b, "juliet", "one", 3);
    let two = online(&mut b, "juliet", "two", 3);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.take(one);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert_eq!(
        b.take(one),
        delivered("romeo@localhost/orchard", "juliet@localhost", "hi")
    );
    assert_eq!(
        b.take(two),
        delivered("romeo@localhost/orchard", "juliet@localhost", "hi")
    );
}

#[test]
fn negative_priority_never_receives_bare_jid_messages_and_they_go_offline() {
    let mut b = Bench::new();
    let shy = online(&mut b, "juliet", "shy", -1);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost", "hi"));
    assert_eq!(b.take(shy), "");
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
}

#[test]
fn headline_goes_to_every_non_negative_resource() {
    let mut b = Bench::new();
    let one = online(&mut b, "juliet", "one", 1);
    let two = online(&mut b, "juliet", "two", 0);
    let shy = online(&mut b, "juliet", "shy", -5);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.take(one);
    b.take(two);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='headline'><body>news</body></message>",
    );
    assert!(b.take(one).contains("news"));
    assert!(b.take(two).contains("news"));
    assert_eq!(b.take(shy), "");
}

#[test]
fn full_jid_message_is_delivered_even_at_negative_priority() {
    let mut b = Bench::new();
    let shy = online(&mut b, "juliet", "shy", -1);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost/shy", "psst"));
    assert_eq!(
        b.take(shy),
        delivered("romeo@localhost/orchard", "juliet@localhost/shy", "psst")
    );
}

#[test]
fn chat_to_an_absent_full_jid_falls_back_to_the_bare_jid() {
    let mut b = Bench::new();
    let balcony = online(&mut b, "juliet", "balcony", 0);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost/gone", "hi"));
    assert_eq!(
        b.take(balcony),
        delivered("romeo@localhost/orchard", "juliet@localhost/gone", "hi")
    );
}

#[test]
fn groupchat_to_an_absent_full_jid_is_service_unavailable() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<message to='juliet@localhost/gone' type='groupchat' id='g'/>",
    );
    assert_eq!(
        b.take(romeo),
        "<message type='error' id='g' to='romeo@localhost/orchard' from='juliet@localhost/gone'>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    );
}

#[test]
fn message_to_an_offline_user_is_stored_with_a_delay_stamp_and_delivered_at_initial_presence() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost", "first"));
    b.send(romeo, &chat("juliet@localhost", "second"));
    assert_eq!(b.take(romeo), "");
    let juliet = b.bound("juliet", "r0m30", "balcony");
    assert_eq!(b.take(juliet), "", "nothing before initial presence");
    b.send(juliet, "<presence/>");
    let stamp = "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-25T04:13:20Z'>Offline Storage</delay>";
    assert_eq!(
        b.take(juliet),
        format!(
            "<presence from='juliet@localhost/balcony'/>\
             <message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'><body>first</body>{stamp}</message>\
             <message to='juliet@localhost' type='chat' from='romeo@localhost/orchard'><body>second</body>{stamp}</message>"
        )
    );
    assert!(b.offline.get("juliet@localhost").is_none_or(Vec::is_empty));
}

/// romeo leaves `count` chat messages of `size` bytes for juliet.
fn leave_offline(b: &mut Bench, count: usize, size: usize) {
    let romeo = online(b, "romeo", "orchard", 0);
    for i in 0..count {
        b.send(
            romeo,
            &chat("juliet@localhost", &format!("{i}{}", "x".repeat(size))),
        );
    }
    assert_eq!(b.take(romeo), "");
    assert_eq!(b.offline["juliet@localhost"].len(), count);
}

/// The writes to `c` in the log, from `from` on.
fn writes_to(b: &Bench, c: ConnectionId, from: usize) -> Vec<String> {
    b.log[from..]
        .iter()
        .filter_map(|o| match o {
            Output::Transmit { connection, data } if *connection == c => {
                Some(String::from_utf8_lossy(data).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn large_offline_messages_are_all_delivered_each_in_a_write_of_its_own_paced_by_the_output_budget()
{
    // The finding of issue 13: five 250 KiB messages were handed over in
    // one write past the 1 MiB budget, the client was cut off, and all
    // five were gone from storage.
    let mut b = Bench::new();
    leave_offline(&mut b, 5, 250 * 1024);
    b.auto_written = false;
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let mark = b.log.len();
    b.send(juliet, "<presence/>");
    let mut delivered = 0;
    for page in [2, 2, 1] {
        let writes = writes_to(&b, juliet, mark);
        let messages: Vec<_> = writes
            .iter()
            .filter(|w| w.starts_with("<message"))
            .collect();
        assert_eq!(
            messages.len(),
            delivered + page,
            "pages of half the output budget"
        );
        assert!(messages.iter().all(|m| m.matches("<message").count() == 1));
        assert!(messages
            .iter()
            .all(|m| m.len() < b.server.config().output_buffer / 2));
        delivered += page;
        // Nothing leaves storage until the shim reports the page written.
        assert_eq!(b.offline["juliet@localhost"].len(), 5 - delivered + page);
        b.report_written();
    }
    assert!(!b.offline.contains_key("juliet@localhost"));
    assert!(!b.is_closed(juliet));
}

#[test]
fn offline_messages_not_yet_written_when_the_connection_fails_are_delivered_at_the_next_login() {
    let mut b = Bench::new();
    leave_offline(&mut b, 2, 10);
    b.auto_written = false;
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, "<presence/>");
    assert_eq!(b.take(juliet).matches("<message").count(), 2);
    b.peer_close(juliet);
    b.unwritten.clear();
    assert_eq!(b.offline["juliet@localhost"].len(), 2);
    b.auto_written = true;
    let again = b.bound("juliet", "r0m30", "balcony");
    b.send(again, "<presence/>");
    assert_eq!(b.take(again).matches("<message").count(), 2);
    assert!(!b.offline.contains_key("juliet@localhost"));
}

/// juliet's client reads nothing (the shim never reports her writes
/// done) while romeo sends her 600 KiB: past half her 1 MiB output budget.
fn juliet_far_behind(b: &mut Bench) -> (ConnectionId, ConnectionId) {
    b.auto_written = false;
    let juliet = online(b, "juliet", "balcony", 0);
    let romeo = online(b, "romeo", "orchard", 0);
    let big = "x".repeat(200 * 1024);
    for _ in 0..3 {
        b.send(romeo, &chat("juliet@localhost/balcony", &big));
    }
    assert_eq!(b.take(romeo), "");
    b.take(juliet);
    (juliet, romeo)
}

#[test]
fn a_recipient_far_behind_in_reading_is_not_cut_off_and_senders_are_told_to_wait() {
    let mut b = Bench::new();
    let (juliet, romeo) = juliet_far_behind(&mut b);
    b.send(
        romeo,
        "<message to='juliet@localhost/balcony' type='chat' id='late'><body>hi</body></message>",
    );
    assert_eq!(
        b.take(romeo),
        "<message type='error' id='late' to='romeo@localhost/orchard' from='juliet@localhost/balcony'>\
         <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></message>"
    );
    b.send(romeo, &chat("juliet@localhost", "to the bare JID"));
    assert!(b.take(romeo).contains("<resource-constraint"));
    assert!(!b.is_closed(juliet));
    // Once her client has read it all, she takes messages again.
    b.report_written();
    b.take(juliet);
    b.send(romeo, &chat("juliet@localhost/balcony", "again"));
    assert_eq!(b.take(romeo), "");
    assert!(b.take(juliet).contains("<body>again</body>"));
}

#[test]
fn presence_and_answers_from_others_are_not_queued_for_a_recipient_far_behind() {
    let mut b = Bench::new();
    let (juliet, romeo) = juliet_far_behind(&mut b);
    b.send(
        romeo,
        "<presence to='juliet@localhost/balcony'><status>look</status></presence>",
    );
    b.send(
        romeo,
        "<presence to='juliet@localhost'><status>look</status></presence>",
    );
    b.send(
        romeo,
        "<iq type='result' id='unasked' to='juliet@localhost/balcony'/>",
    );
    b.send(
        romeo,
        "<iq type='error' id='unasked' to='juliet@localhost/balcony'/>",
    );
    assert_eq!(b.take(juliet), "");
    assert_eq!(b.take(romeo), "");
    assert!(!b.is_closed(juliet));
}

#[test]
fn a_message_of_quotes_is_written_no_larger_than_it_came() {
    // Written as `&apos;` each, 250,000 quotes made 1.5 MB of output from
    // 250 KB of input and cut the recipient off (found by review).
    let mut b = Bench::new();
    let juliet = online(&mut b, "juliet", "balcony", 0);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    let quotes = "'\"".repeat(5000);
    b.send(
        romeo,
        &format!("<message to='juliet@localhost/balcony' type='chat' id=\"q'\"><body>{quotes}</body></message>"),
    );
    let got = b.take(juliet);
    assert!(got.contains(&format!("<body>{quotes}</body>")), "{got}");
    assert!(got.contains(" id=\"q'\""), "{got}");
}

#[test]
fn message_over_the_offline_quota_is_service_unavailable() {
    let mut b = Bench::with_config(rookery_core::Config {
        offline_quota: 1,
        ..support::plaintext()
    });
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost", "first"));
    assert_eq!(b.take(romeo), "");
    b.send(romeo, &chat("juliet@localhost", "second"));
    assert!(b
        .take(romeo)
        .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}

#[test]
fn one_sender_fills_only_its_share_of_the_offline_quota() {
    let mut b = Bench::with_config(rookery_core::Config {
        offline_quota: 3,
        offline_quota_per_sender: 2,
        ..support::plaintext()
    });
    let romeo = online(&mut b, "romeo", "orchard", 0);
    for body in ["one", "two"] {
        b.send(romeo, &chat("juliet@localhost", body));
    }
    assert_eq!(b.take(romeo), "");
    b.send(romeo, &chat("juliet@localhost", "three"));
    assert!(b.take(romeo).contains("<service-unavailable"));
    b.add_user("nurse", "pw", 64);
    let nurse = b.bound("nurse", "pw", "r");
    b.send(nurse, &chat("juliet@localhost", "from the nurse"));
    assert_eq!(b.take(nurse), "");
    assert_eq!(b.offline["juliet@localhost"].len(), 3);
}

#[test]
fn offline_stores_past_the_in_flight_bound_tell_the_sender_to_wait() {
    let mut b = Bench::with_config(rookery_core::Config {
        max_offline_in_flight: 1,
        ..support::plaintext()
    });
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.auto_storage = false;
    b.send(romeo, &chat("juliet@localhost", "one"));
    b.send(
        romeo,
        "<message to='juliet@localhost' type='chat' id='two'><body>two</body></message>",
    );
    assert_eq!(
        b.take(romeo),
        "<message type='error' id='two' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></message>"
    );
    b.auto_storage = true;
    b.answer_storage();
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
}

#[test]
fn message_to_a_nonexistent_user_is_service_unavailable() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("ghost@localhost", "boo"));
    assert!(b
        .take(romeo)
        .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
}

#[test]
fn headline_to_an_offline_user_is_dropped_silently() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<message to='juliet@localhost' type='headline'><body>news</body></message>",
    );
    assert_eq!(b.take(romeo), "");
    assert!(!b.offline.contains_key("juliet@localhost"));
}

#[test]
fn error_message_is_never_answered_with_an_error() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<message to='juliet@localhost/gone' type='error'><error type='cancel'/></message>",
    );
    b.send(romeo, "<message to='nobody@example.org' type='error'/>");
    assert_eq!(b.take(romeo), "");
}

#[test]
fn iq_between_two_clients_round_trips() {
    let mut b = Bench::new();
    let juliet = online(&mut b, "juliet", "balcony", 0);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='get' id='v' to='juliet@localhost/balcony'><query xmlns='jabber:iq:version'/></iq>");
    assert_eq!(
        b.take(juliet),
        "<iq id='v' to='juliet@localhost/balcony' type='get' from='romeo@localhost/orchard'><query xmlns='jabber:iq:version'/></iq>"
    );
    b.send(
        juliet,
        "<iq type='result' id='v' to='romeo@localhost/orchard'/>",
    );
    assert_eq!(
        b.take(romeo),
        "<iq id='v' to='romeo@localhost/orchard' type='result' from='juliet@localhost/balcony'/>"
    );
}

#[test]
fn iq_to_an_absent_full_jid_is_service_unavailable() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='q' to='juliet@localhost/gone'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert!(b.take(romeo).contains("<service-unavailable"));
}

#[test]
fn iq_get_without_payload_is_a_bad_request() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='get' id='e' to='localhost'/>");
    assert_eq!(
        b.take(romeo),
        "<iq type='error' id='e' to='romeo@localhost/orchard' from='localhost'><error type='modify'>\
         <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn iq_set_with_two_payloads_is_a_bad_request() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='set' id='e' to='localhost'><a xmlns='urn:x'/><b xmlns='urn:x'/></iq>",
    );
    assert!(b.take(romeo).contains("<bad-request"));
}

#[test]
fn ping_to_the_server_is_answered() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='p' to='romeo@localhost/orchard' from='localhost'/>"
    );
}

#[test]
fn ping_without_to_is_answered_by_the_server() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='p' to='romeo@localhost/orchard'/>"
    );
}

#[test]
fn server_disco_info_lists_identity_and_features() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='d' to='romeo@localhost/orchard' from='localhost'>\
         <query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im' name='Rookery'/>\
         <feature var='http://jabber.org/protocol/commands'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/>\
         <feature var='jabber:iq:last'/><feature var='jabber:iq:private'/><feature var='jabber:iq:register'/><feature var='jabber:iq:version'/>\
         <feature var='msgoffline'/><feature var='urn:xmpp:blocking'/><feature var='urn:xmpp:carbons:2'/>\
         <feature var='urn:xmpp:ping'/><feature var='urn:xmpp:time'/><feature var='vcard-temp'/></query></iq>"
    );
}

/// Every iq feature the server advertises answers a get with a result.
#[test]
fn every_advertised_iq_feature_has_a_working_handler() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let info = b.take(romeo);
    let features: Vec<&str> = info
        .split("<feature var='")
        .skip(1)
        .map(|f| &f[..f.find('\'').unwrap()])
        .collect();
    assert!(features.len() >= 5, "{info}");
    for feature in features {
        let iq = match feature {
            "msgoffline" => continue, // a message feature, tested above
            "urn:xmpp:ping" => {
                "<iq type='get' id='f' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>".to_owned()
            }
            "urn:xmpp:time" => {
                "<iq type='get' id='f' to='localhost'><time xmlns='urn:xmpp:time'/></iq>".to_owned()
            }
            // Served to the user's own account.
            "urn:xmpp:carbons:2" => {
                "<iq type='set' id='f'><enable xmlns='urn:xmpp:carbons:2'/></iq>".to_owned()
            }
            "urn:xmpp:blocking" => {
                "<iq type='get' id='f'><blocklist xmlns='urn:xmpp:blocking'/></iq>".to_owned()
            }
            "jabber:iq:private" => {
                "<iq type='get' id='f'><query xmlns='jabber:iq:private'><x xmlns='x:y'/></query></iq>"
                    .to_owned()
            }
            "vcard-temp" => "<iq type='set' id='f'><vCard xmlns='vcard-temp'/></iq>".to_owned(),
            // Ad-hoc commands are listed as disco items (none for romeo).
            "http://jabber.org/protocol/commands" => "<iq type='get' id='f' to='localhost'>\
                <query xmlns='http://jabber.org/protocol/disco#items' \
                node='http://jabber.org/protocol/commands'/></iq>"
                .to_owned(),
            ns => format!("<iq type='get' id='f' to='localhost'><query xmlns='{ns}'/></iq>"),
        };
        b.send(romeo, &iq);
        let got = b.take(romeo);
        assert!(
            got.starts_with("<iq type='result' id='f'"),
            "{feature}: {got}"
        );
    }
}

#[test]
fn entity_time_is_the_wall_clock_in_utc() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>",
    );
    assert!(b.take(romeo).contains(
        "<time xmlns='urn:xmpp:time'><tzo>+00:00</tzo><utc>2026-11-25T04:13:20Z</utc></time>"
    ));
}

#[test]
fn hidden_version_is_service_unavailable() {
    let mut b = Bench::with_config(rookery_core::Config {
        expose_version: false,
        ..support::plaintext()
    });
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
    );
    assert!(b.take(romeo).contains("<service-unavailable"));
}

/// juliet's stored roster shares her presence with romeo.
fn juliet_shares_presence_with_romeo(b: &mut Bench) {
    let from = rookery_core::roster::Subscription::From;
    b.stored_contact("juliet@localhost", "romeo@localhost", from);
}

#[test]
fn disco_info_on_an_account_is_answered_to_a_contact_it_shares_presence_with() {
    let mut b = Bench::new();
    juliet_shares_presence_with_romeo(&mut b);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='get' id='a' to='juliet@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let pubsub = [
        "access-open",
        "access-presence",
        "access-roster",
        "access-whitelist",
        "auto-create",
        "config-node",
        "delete-nodes",
        "filtered-notifications",
        "item-ids",
        "last-published",
        "persistent-items",
        "presence-notifications",
        "publish",
        "publish-options",
        "retract-items",
        "retrieve-items",
    ]
    .map(|f| format!("<feature var='http://jabber.org/protocol/pubsub#{f}'/>"))
    .concat();
    assert_eq!(
        b.take(romeo),
        format!(
            "<iq type='result' id='a' to='romeo@localhost/orchard' from='juliet@localhost'>\
             <query xmlns='http://jabber.org/protocol/disco#info'><identity category='account' type='registered'/>\
             <identity category='pubsub' type='pep'/>\
             <feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/pubsub'/>{pubsub}\
             <feature var='jabber:iq:last'/><feature var='urn:xmpp:bookmarks:1#compat'/>\
             <feature var='urn:xmpp:pep-vcard-conversion:0'/></query></iq>"
        )
    );
    assert_eq!(
        b.server.rosters_held(),
        1,
        "juliet's roster was loaded only to answer"
    );
}

#[test]
fn disco_info_from_a_stranger_is_answered_the_same_whether_the_account_exists() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    let ask = |b: &mut Bench, user: &str| {
        b.send(romeo, &format!("<iq type='get' id='a' to='{user}@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
        b.take(romeo).replace(user, "USER")
    };
    let existing = ask(&mut b, "juliet");
    assert_eq!(existing, ask(&mut b, "ghost"));
    assert_eq!(
        existing,
        "<iq type='error' id='a' to='romeo@localhost/orchard' from='USER@localhost'>\
         <error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn unknown_payload_to_a_bare_jid_is_service_unavailable() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(
        romeo,
        "<iq type='get' id='a' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>",
    );
    assert!(b.take(romeo).contains("<service-unavailable"));
}

#[test]
fn iq_of_unknown_type_is_a_bad_request() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, "<iq type='bogus' id='s0'></iq>");
    assert!(b.take(romeo).contains("<bad-request"));
}

#[test]
fn offline_messages_wait_for_a_non_negative_resource() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.send(romeo, &chat("juliet@localhost", "for a human"));
    let bot = online(&mut b, "juliet", "bot", -1);
    assert_eq!(b.take(bot), "");
    let human = b.bound("juliet", "r0m30", "human");
    b.send(human, "<presence/>");
    assert!(b.take(human).contains("for a human"));
}

#[test]
fn a_sender_quiet_long_enough_to_park_its_parser_is_still_routed() {
    let mut b = Bench::new();
    let juliet = online(&mut b, "juliet", "balcony", 0);
    let romeo = online(&mut b, "romeo", "orchard", 0);
    b.take(juliet);
    b.advance(Duration::from_secs(3));
    b.send(romeo, &chat("juliet@localhost/balcony", "still here"));
    assert_eq!(
        b.take(juliet),
        delivered(
            "romeo@localhost/orchard",
            "juliet@localhost/balcony",
            "still here"
        )
    );
}

/// "Not here" is decided once, by the router: every stanza kind to a
/// domain this server does not serve.
#[test]
fn stanzas_to_a_domain_not_served_get_remote_server_not_found_or_are_dropped() {
    let mut b = Bench::new();
    let romeo = online(&mut b, "romeo", "orchard", 0);
    let error = "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>";
    for stanza in [
        "<message to='mercutio@verona.example' type='chat'><body>hi</body></message>",
        "<iq type='get' id='i' to='verona.example'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<presence to='mercutio@verona.example' type='subscribe'/>",
    ] {
        b.send(romeo, stanza);
        assert!(b.take(romeo).contains(error), "{stanza}");
    }
    // Directed presence has no one to tell.
    b.send(romeo, "<presence to='mercutio@verona.example'/>");
    assert_eq!(b.take(romeo), "");
}
