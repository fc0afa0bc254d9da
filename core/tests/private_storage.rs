//! Private XML storage (XEP-0049): fragments an account's own resources
//! keep, one per element name and namespace.

mod support;
use rookery_core::DocumentStore;
use support::*;

const PREFS: &str = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>";

fn query(kind: &str, id: &str, inner: &str) -> String {
    format!("<iq type='{kind}' id='{id}'><query xmlns='jabber:iq:private'>{inner}</query></iq>")
}

fn error(id: &str, kind: &str, condition: &str) -> String {
    format!(
        "<iq type='error' id='{id}' to='juliet@localhost/balcony'><error type='{kind}'>\
         <{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
}

#[test]
fn a_stored_fragment_is_read_back_by_its_name_and_namespace() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("set", "s", PREFS));
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='s' to='juliet@localhost/balcony'/>"
    );
    b.send(juliet, &query("get", "g", "<exodus xmlns='exodus:prefs'/>"));
    assert_eq!(
        b.take(juliet),
        format!(
            "<iq type='result' id='g' to='juliet@localhost/balcony'>\
             <query xmlns='jabber:iq:private'>{PREFS}</query></iq>"
        )
    );
}

#[test]
fn a_fragment_never_stored_reads_back_empty() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &query("get", "g", "<storage xmlns='storage:bookmarks'/>"),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='g' to='juliet@localhost/balcony'>\
         <query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>"
    );
}

#[test]
fn storing_an_empty_element_removes_the_fragment() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("set", "s", PREFS));
    b.send(juliet, &query("set", "e", "<exodus xmlns='exodus:prefs'/>"));
    b.take(juliet);
    assert!(b.documents.is_empty(), "{:?}", b.documents);
}

#[test]
fn the_same_name_in_another_namespace_is_another_fragment() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("set", "s", PREFS));
    b.send(juliet, &query("get", "g", "<exodus xmlns='other:prefs'/>"));
    assert!(b
        .take(juliet)
        .ends_with("<query xmlns='jabber:iq:private'><exodus xmlns='other:prefs'/></query></iq>"));
}

#[test]
fn a_query_without_a_fragment_is_not_acceptable() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("get", "g", ""));
    assert_eq!(b.take(juliet), error("g", "modify", "not-acceptable"));
}

#[test]
fn a_fragment_in_the_private_namespace_itself_is_not_acceptable() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("set", "s", "<prefs>x</prefs>"));
    assert_eq!(b.take(juliet), error("s", "modify", "not-acceptable"));
    assert!(b.documents.is_empty());
}

#[test]
fn a_get_asks_for_one_namespace_at_a_time() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &query("get", "g", "<a xmlns='a:a'/><b xmlns='b:b'/>"),
    );
    assert_eq!(b.take(juliet), error("g", "modify", "bad-request"));
}

#[test]
fn another_accounts_private_data_is_not_there_to_read() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &query("set", "s", PREFS));
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(
        romeo,
        "<iq type='get' id='x' to='juliet@localhost'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>",
    );
    assert_eq!(
        b.take(romeo),
        "<iq type='error' id='x' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn past_the_quota_a_set_is_refused_whole() {
    let mut config = plaintext();
    config.private_storage.max_documents = 2;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &query("set", "s", "<a xmlns='a:a'>1</a><b xmlns='b:b'>2</b>"),
    );
    b.take(juliet);
    b.send(
        juliet,
        &query("set", "t", "<a xmlns='a:a'>3</a><c xmlns='c:c'>4</c>"),
    );
    assert_eq!(b.take(juliet), error("t", "wait", "resource-constraint"));
    let a = (
        "juliet@localhost".to_owned(),
        DocumentStore::Private,
        "a a:a".to_owned(),
    );
    assert_eq!(b.documents[&a], "<a xmlns='a:a'>1</a>");
    assert_eq!(b.documents.len(), 2);
}

#[test]
fn more_fragments_in_one_set_than_the_quota_are_refused_before_storage() {
    let mut config = plaintext();
    config.private_storage.max_documents = 1;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.auto_storage = false;
    b.send(
        juliet,
        &query("set", "s", "<a xmlns='a:a'>1</a><b xmlns='b:b'>2</b>"),
    );
    assert_eq!(b.take(juliet), error("s", "wait", "resource-constraint"));
}
