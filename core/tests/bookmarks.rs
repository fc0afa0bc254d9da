//! Bookmarks (XEP-0402) kept once, on PEP, and read and written through
//! private XML (XEP-0048 over XEP-0049) by clients that still do so.

mod support;
use support::*;

const ITEMS: &str = "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
    <items node='urn:xmpp:bookmarks:1'/></pubsub></iq>";
const LEGACY_GET: &str =
    "<iq type='get' id='g'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>";

fn legacy_set(conferences: &str) -> String {
    format!(
        "<iq type='set' id='s'><query xmlns='jabber:iq:private'>\
         <storage xmlns='storage:bookmarks'>{conferences}</storage></query></iq>"
    )
}

fn publish(room: &str, payload: &str) -> String {
    format!(
        "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='urn:xmpp:bookmarks:1'><item id='{room}'>{payload}</item></publish>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pubsub#persist_items'><value>true</value></field>\
         <field var='pubsub#max_items'><value>max</value></field>\
         <field var='pubsub#send_last_published_item'><value>never</value></field>\
         <field var='pubsub#access_model'><value>whitelist</value></field>\
         </x></publish-options></pubsub></iq>"
    )
}

#[test]
fn bookmarks_kept_in_private_xml_are_pep_items_one_per_room() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &legacy_set(
            "<conference jid='verona@chat.localhost' name='Verona' autojoin='true'>\
             <nick>jc</nick></conference><url name='x' url='https://example.org/'/>",
        ),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='s' to='juliet@localhost/balcony'/>"
    );
    b.send(juliet, ITEMS);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='i' to='juliet@localhost/balcony'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'>\
         <item id='verona@chat.localhost'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' \
         name='Verona'><nick>jc</nick></conference></item></items></pubsub></iq>"
    );
}

#[test]
fn bookmarks_published_on_pep_read_back_as_private_xml() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &publish(
            "verona@chat.localhost",
            "<conference xmlns='urn:xmpp:bookmarks:1' name='Verona'><password>s</password></conference>",
        ),
    );
    assert!(b.take(juliet).contains("type='result'"));
    b.send(juliet, LEGACY_GET);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='g' to='juliet@localhost/balcony'><query xmlns='jabber:iq:private'>\
         <storage xmlns='storage:bookmarks'><conference jid='verona@chat.localhost' name='Verona' \
         autojoin='false'><password>s</password></conference></storage></query></iq>"
    );
}

#[test]
fn without_bookmarks_private_xml_reads_an_empty_storage() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, LEGACY_GET);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='g' to='juliet@localhost/balcony'><query xmlns='jabber:iq:private'>\
         <storage xmlns='storage:bookmarks'/></query></iq>"
    );
}

#[test]
fn a_legacy_write_removes_rooms_it_omits_and_keeps_extensions_it_cannot_say() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let with_extensions = "<conference xmlns='urn:xmpp:bookmarks:1' name='Verona'>\
        <extensions><state xmlns='urn:example:pinned'/></extensions></conference>";
    b.send(juliet, &publish("verona@chat.localhost", with_extensions));
    b.send(
        juliet,
        &publish(
            "mantua@chat.localhost",
            "<conference xmlns='urn:xmpp:bookmarks:1'/>",
        ),
    );
    b.take(juliet);
    b.send(
        juliet,
        &legacy_set("<conference jid='verona@chat.localhost' name='Verona'/>"),
    );
    b.take(juliet);
    b.send(juliet, ITEMS);
    let items = b.take(juliet);
    assert!(!items.contains("mantua"), "{items}");
    assert!(
        items.contains("<item id='verona@chat.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Verona'><extensions><state xmlns='urn:example:pinned'/></extensions></conference></item>"),
        "{items}"
    );
}

#[test]
fn private_xml_bookmarks_with_another_fragment_are_not_acceptable() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='set' id='s'><query xmlns='jabber:iq:private'>\
         <storage xmlns='storage:bookmarks'/><prefs xmlns='urn:example:prefs'/></query></iq>",
    );
    assert!(b.take(juliet).contains("<not-acceptable"));
}

#[test]
fn the_account_advertises_bookmarks_compatibility() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    assert!(b
        .own_account_info(juliet, "juliet@localhost")
        .contains("<feature var='urn:xmpp:bookmarks:1#compat'/>"));
}

#[test]
fn bookmarks_kept_in_private_xml_before_conversion_still_read_back() {
    let mut b = Bench::new();
    let old = "<storage xmlns='storage:bookmarks'><conference jid='verona@chat.localhost' autojoin='true'/></storage>";
    b.documents.insert(
        (
            "juliet@localhost".to_owned(),
            rookery_core::DocumentStore::Private,
            "storage storage:bookmarks".to_owned(),
        ),
        old.to_owned(),
    );
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, LEGACY_GET);
    assert_eq!(
        b.take(juliet),
        format!(
            "<iq type='result' id='g' to='juliet@localhost/balcony'><query xmlns='jabber:iq:private'>{}</query></iq>",
            old.replace("jid='verona@chat.localhost' autojoin='true'", "autojoin='true' jid='verona@chat.localhost'")
        )
    );
}

#[test]
fn more_legacy_bookmarks_than_a_node_keeps_are_refused_whole() {
    let mut config = plaintext();
    config.pep.max_items = 2;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &legacy_set(
            "<conference jid='a@chat.localhost'/><conference jid='b@chat.localhost'/>\
             <conference jid='c@chat.localhost'/>",
        ),
    );
    assert!(b.take(juliet).contains("<policy-violation"));
    b.send(juliet, ITEMS);
    assert!(b.take(juliet).contains("<item-not-found"));
}
