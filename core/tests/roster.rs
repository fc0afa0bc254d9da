//! Roster management (RFC 6121 section 2) through the whole core.

mod support;
use support::*;

const GET: &str = "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>";

fn set(id: &str, item: &str) -> String {
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>")
}

fn error(id: &str, kind: &str, condition: &str) -> String {
    format!(
        "<iq type='error' id='{id}' to='juliet@localhost/balcony'><error type='{kind}'>\
         <{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
}

#[test]
fn empty_roster_is_returned_with_version_zero() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, GET);
    assert_eq!(
        b.take(c),
        "<iq type='result' id='r1' to='juliet@localhost/balcony'><query xmlns='jabber:iq:roster' ver='0'/></iq>"
    );
}

#[test]
fn set_is_acknowledged_and_pushed_to_interested_resources_only() {
    let mut b = Bench::new();
    let balcony = b.bound("juliet", "r0m30", "balcony");
    let garden = b.bound("juliet", "r0m30", "garden");
    let uninterested = b.bound("juliet", "r0m30", "chamber");
    b.send(balcony, GET);
    b.send(garden, GET);
    b.take(balcony);
    b.take(garden);
    b.send(
        balcony,
        &set(
            "s1",
            "<item jid='nurse@localhost' name='Nurse'><group>Servants</group></item>",
        ),
    );
    assert_eq!(
        b.take(balcony),
        "<iq type='result' id='s1' to='juliet@localhost/balcony'/>\
         <iq type='set' id='push1' to='juliet@localhost/balcony'><query xmlns='jabber:iq:roster' ver='1'>\
         <item jid='nurse@localhost' subscription='none' name='Nurse'><group>Servants</group></item></query></iq>"
    );
    assert_eq!(
        b.take(garden),
        "<iq type='set' id='push2' to='juliet@localhost/garden'><query xmlns='jabber:iq:roster' ver='1'>\
         <item jid='nurse@localhost' subscription='none' name='Nurse'><group>Servants</group></item></query></iq>"
    );
    assert_eq!(b.take(uninterested), "");
}

#[test]
fn set_is_acknowledged_only_once_durable() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, GET);
    b.take(c);
    b.auto_storage = false;
    b.send(c, &set("s1", "<item jid='nurse@localhost'/>"));
    assert_eq!(b.take(c), "", "nothing before the write is durable");
    assert!(!b.rosters.contains_key("juliet@localhost"));
    b.answer_storage();
    assert!(b.take(c).starts_with("<iq type='result' id='s1'"));
    assert!(b.rosters["juliet@localhost"].items.len() == 1);
}

#[test]
fn unchanged_version_gets_an_empty_result() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &set("s1", "<item jid='nurse@localhost'/>"));
    b.take(c);
    b.send(
        c,
        "<iq type='get' id='r2'><query xmlns='jabber:iq:roster' ver='1'/></iq>",
    );
    assert_eq!(
        b.take(c),
        "<iq type='result' id='r2' to='juliet@localhost/balcony'/>"
    );
    b.send(
        c,
        "<iq type='get' id='r3'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
    );
    assert!(b.take(c).contains("<item jid='nurse@localhost'"));
}

#[test]
fn two_items_in_one_set_are_a_bad_request() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        &set("s1", "<item jid='a@localhost'/><item jid='b@localhost'/>"),
    );
    assert_eq!(b.take(c), error("s1", "modify", "bad-request"));
}

#[test]
fn roster_set_for_another_user_is_forbidden() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        "<iq type='set' id='s1' to='romeo@localhost'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/></query></iq>",
    );
    assert_eq!(
        b.take(c),
        "<iq type='error' id='s1' to='juliet@localhost/balcony' from='romeo@localhost'><error type='auth'>\
         <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn overlong_group_is_not_acceptable() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        &set(
            "s1",
            &format!(
                "<item jid='a@localhost'><group>{}</group></item>",
                "g".repeat(2000)
            ),
        ),
    );
    assert_eq!(b.take(c), error("s1", "modify", "not-acceptable"));
}

#[test]
fn roster_over_the_item_limit_is_a_resource_constraint() {
    let mut config = support::plaintext();
    config.roster.max_items = 1;
    let mut b = Bench::with_config(config);
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &set("s1", "<item jid='a@localhost'/>"));
    b.take(c);
    b.send(c, &set("s2", "<item jid='b@localhost'/>"));
    assert_eq!(b.take(c), error("s2", "wait", "resource-constraint"));
}

#[test]
fn removing_an_absent_item_is_item_not_found() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(
        c,
        &set("s1", "<item jid='a@localhost' subscription='remove'/>"),
    );
    assert_eq!(b.take(c), error("s1", "cancel", "item-not-found"));
}

#[test]
fn removal_is_pushed_with_subscription_remove() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, GET);
    b.send(c, &set("s1", "<item jid='a@localhost'/>"));
    b.take(c);
    b.send(
        c,
        &set("s2", "<item jid='a@localhost' subscription='remove'/>"),
    );
    assert!(b
        .take(c)
        .ends_with("<query xmlns='jabber:iq:roster' ver='2'><item jid='a@localhost' subscription='remove'/></query></iq>"));
    assert!(b.rosters["juliet@localhost"].items.is_empty());
}

#[test]
fn adding_yourself_is_not_allowed() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &set("s1", "<item jid='juliet@localhost'/>"));
    assert_eq!(b.take(c), error("s1", "cancel", "not-allowed"));
}

#[test]
fn roster_is_released_when_the_last_session_ends() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    assert_eq!(b.server.rosters_held(), 1);
    b.peer_close(c);
    assert_eq!(b.server.rosters_held(), 0);
}

#[test]
fn a_roster_that_cannot_be_loaded_ends_the_session() {
    let mut b = Bench::new();
    b.auto_storage = false;
    let c = b.connect();
    b.send(c, HEADER);
    b.send(c, &plain("juliet", "r0m30"));
    b.answer_storage();
    b.send(c, HEADER);
    b.send(
        c,
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    b.take(c);
    let (request, _) = b.pending.pop().expect("roster load");
    b.server.handle_storage(
        request,
        rookery_core::StorageAnswer::Failed("disk gone".into()),
        b.now,
    );
    b.answer_storage();
    assert!(b
        .take(c)
        .contains("<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    assert!(b.server.sessions().is_empty());
}

#[test]
fn roster_operations_past_the_per_user_queue_get_resource_constraint() {
    let mut b = Bench::with_config(rookery_core::Config {
        roster: rookery_core::config::RosterLimits {
            max_queued_operations: 2,
            ..Default::default()
        },
        ..plaintext()
    });
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='get' id='load'><query xmlns='jabber:iq:roster'/></iq>",
    );
    b.take(juliet);
    // Storage stalls: the first set is being written, two wait, the
    // fourth is refused.
    b.auto_storage = false;
    for i in 0..4 {
        b.send(
            juliet,
            &format!(
                "<iq type='set' id='s{i}'><query xmlns='jabber:iq:roster'>\
                 <item jid='c{i}@localhost'/></query></iq>"
            ),
        );
    }
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='s3' to='juliet@localhost/balcony'><error type='wait'>\
         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    b.auto_storage = true;
    b.answer_storage();
    let answers = b.take(juliet);
    for i in 0..3 {
        assert!(
            answers.contains(&format!("<iq type='result' id='s{i}'")),
            "{answers}"
        );
    }
}
