//! Personal eventing (XEP-0163): an account publishes on its own
//! service; contacts are notified as their capabilities (XEP-0115) ask,
//! and read what the node's access model lets them.

mod support;
use base64::Engine;
use rookery_core::roster::Subscription;
use rookery_core::{ConnectionId, DocumentStore};
use sha1::Digest;
use support::*;

const NICK: &str = "http://jabber.org/protocol/nick";
const DISCO: &str = "http://jabber.org/protocol/disco#info";

/// The verification string (XEP-0115 section 5.1) of a client named
/// Tester with these features.
fn ver(features: &[&str]) -> String {
    let mut features = features.to_vec();
    features.sort_unstable();
    let mut s = "client/pc//Tester<".to_owned();
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(s.as_bytes()))
}

fn caps_presence(features: &[&str]) -> String {
    format!(
        "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
         node='https://tester' ver='{}'/></presence>",
        ver(features)
    )
}

/// The id of the server's question about a client with these features.
fn query_id(features: &[&str]) -> String {
    format!("caps {}", ver(features))
}

/// The client's disco#info answer to the server's query `id`.
fn disco_answer(id: &str, features: &[&str]) -> String {
    let mut answer = format!(
        "<iq type='result' to='localhost' id='{id}'><query xmlns='{DISCO}' \
         node='https://tester#{}'><identity category='client' type='pc' name='Tester'/>",
        ver(features)
    );
    for f in features {
        answer.push_str(&format!("<feature var='{f}'/>"));
    }
    answer + "</query></iq>"
}

/// Features of a client following nicknames.
const FOLLOWS_NICKS: &[&str] = &[DISCO, NICK, "http://jabber.org/protocol/nick+notify"];

/// Log in, become available with these capabilities, and answer the
/// server's question about them if it asks; returns what arrived after.
fn online(
    b: &mut Bench,
    user: &str,
    password: &str,
    resource: &str,
    features: &[&str],
) -> (ConnectionId, String) {
    let c = b.bound(user, password, resource);
    b.send(c, &caps_presence(features));
    let got = b.take(c);
    if let Some(id) = between(&got, "<iq type='get' id='", "'") {
        let id = id.to_owned();
        b.send(c, &disco_answer(&id, features));
    }
    let after = b.take(c);
    (c, after)
}

/// Juliet and Romeo share their presence both ways.
fn lovers(b: &mut Bench) {
    b.stored_contact("juliet@localhost", "romeo@localhost", Subscription::Both);
    b.stored_contact("romeo@localhost", "juliet@localhost", Subscription::Both);
}

/// Juliet (balcony) has published her nick, which Romeo (orchard), her
/// contact, follows; both streams read up to here.
fn nick_romeo_follows(b: &mut Bench) -> (ConnectionId, ConnectionId) {
    lovers(b);
    let (romeo, _) = online(b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    b.take(romeo);
    (juliet, romeo)
}

fn publish(node: &str, id: &str, payload: &str, options: &str) -> String {
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(
            "<publish-options><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             {options}</x></publish-options>"
        )
    };
    format!(
        "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='{node}'><item id='{id}'>{payload}</item></publish>{options}</pubsub></iq>"
    )
}

fn nick(name: &str) -> String {
    format!("<nick xmlns='{NICK}'>{name}</nick>")
}

fn access(model: &str) -> String {
    format!("<field var='pubsub#access_model'><value>{model}</value></field>")
}

fn published(node: &str, id: &str) -> String {
    format!(
        "<iq type='result' id='p' to='juliet@localhost/balcony'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'>\
         <item id='{id}'/></publish></pubsub></iq>"
    )
}

fn nick_event(to: &str, name: &str) -> String {
    format!(
        "<message from='juliet@localhost' to='{to}' type='headline'>\
         <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{NICK}'>\
         <item id='current'>{}</item></items></event></message>",
        nick(name)
    )
}

fn items_of_juliet(node: &str) -> String {
    format!(
        "<iq type='get' id='i' to='juliet@localhost'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{node}'/></pubsub></iq>"
    )
}

#[test]
fn an_account_is_a_pep_service_with_publish_options() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let got = b.own_account_info(juliet, "juliet@localhost");
    assert!(
        got.contains("<identity category='pubsub' type='pep'/>"),
        "{got}"
    );
    assert!(
        got.contains("<feature var='http://jabber.org/protocol/pubsub#publish-options'/>"),
        "{got}"
    );
}

#[test]
fn the_server_asks_a_resource_once_what_its_capabilities_stand_for() {
    let mut b = Bench::new();
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &caps_presence(FOLLOWS_NICKS));
    assert!(b.take(romeo).contains(&format!(
        "<iq type='get' id='caps {}' from='localhost' to='romeo@localhost/orchard'>\
         <query xmlns='{DISCO}' node='https://tester#{}'/></iq>",
        ver(FOLLOWS_NICKS),
        ver(FOLLOWS_NICKS)
    )));
    b.send(
        romeo,
        &disco_answer(&query_id(FOLLOWS_NICKS), FOLLOWS_NICKS),
    );
    // Another resource showing the same hash is not asked again.
    let hall = b.bound("romeo", "j00l13t", "hall");
    b.send(hall, &caps_presence(FOLLOWS_NICKS));
    assert!(!b.take(hall).contains("disco#info"));
}

#[test]
fn a_publish_is_answered_once_written_and_notifies_contacts_following_the_node() {
    let mut b = Bench::new();
    lovers(&mut b);
    let (romeo, _) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    // A resource of Romeo's that does not follow nicknames.
    let (hall, _) = online(&mut b, "romeo", "j00l13t", "hall", &[DISCO]);
    b.take(romeo);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.auto_storage = false;
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.answer_storage(); // the node is read
    assert_eq!(b.take(juliet), "", "nothing before the write is durable");
    assert_eq!(b.take(romeo), "");
    b.answer_storage(); // and written
    assert_eq!(b.take(juliet), published(NICK, "current"));
    assert_eq!(
        b.take(romeo),
        nick_event("romeo@localhost/orchard", "Jules")
    );
    assert_eq!(b.take(hall), "");
}

#[test]
fn capabilities_that_do_not_hash_to_their_ver_are_not_believed() {
    let mut b = Bench::new();
    lovers(&mut b);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &caps_presence(&[DISCO]));
    b.take(romeo);
    // The answer claims more than the hash says.
    let lie = disco_answer(&query_id(&[DISCO]), FOLLOWS_NICKS)
        .replace(&ver(FOLLOWS_NICKS), &ver(&[DISCO]));
    b.send(romeo, &lie);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    assert_eq!(b.take(juliet), published(NICK, "current"));
    assert_eq!(b.take(romeo), "");
}

#[test]
fn a_resource_coming_online_is_sent_the_last_item_of_each_node_it_follows() {
    let mut b = Bench::new();
    lovers(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    let (_, got) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    assert_eq!(got, nick_event("romeo@localhost/orchard", "Jules"));
    // Known capabilities: sent at once.
    let hall = b.bound("romeo", "j00l13t", "hall");
    b.send(hall, &caps_presence(FOLLOWS_NICKS));
    assert!(b
        .take(hall)
        .ends_with(&nick_event("romeo@localhost/hall", "Jules")));
}

#[test]
fn strangers_cannot_read_a_node_only_contacts_may_see() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &items_of_juliet(NICK));
    assert_eq!(
        b.take(romeo),
        "<iq type='error' id='i' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <presence-subscription-required xmlns='http://jabber.org/protocol/pubsub#errors'/>\
         </error></iq>"
    );
}

#[test]
fn anyone_reads_an_open_node() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let bundle =
        "<bundle xmlns='eu.siacs.conversations.axolotl'><identityKey>a2V5</identityKey></bundle>";
    let node = "eu.siacs.conversations.axolotl.bundles:1234";
    b.send(juliet, &publish(node, "current", bundle, &access("open")));
    assert_eq!(b.take(juliet), published(node, "current"));
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &items_of_juliet(node));
    assert_eq!(
        b.take(romeo),
        format!(
            "<iq type='result' id='i' to='romeo@localhost/orchard' from='juliet@localhost'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{node}'>\
             <item id='current'>{bundle}</item></items></pubsub></iq>"
        )
    );
}

#[test]
fn a_whitelist_node_is_closed_to_contacts_too() {
    let mut b = Bench::new();
    lovers(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let node = "urn:xmpp:bookmarks:1";
    let conference = "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>";
    b.send(
        juliet,
        &publish(
            node,
            "verona@chat.localhost",
            conference,
            &access("whitelist"),
        ),
    );
    b.take(juliet);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &items_of_juliet(node));
    assert!(b.take(romeo).contains(
        "<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <closed-node xmlns='http://jabber.org/protocol/pubsub#errors'/></error>"
    ));
}

#[test]
fn publish_options_configure_a_new_node_and_are_preconditions_after() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &publish(NICK, "current", &nick("Jules"), &access("open")),
    );
    assert_eq!(b.take(juliet), published(NICK, "current"));
    b.send(
        juliet,
        &publish(NICK, "current", &nick("J"), &access("presence")),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='p' to='juliet@localhost/balcony'><error type='cancel'>\
         <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/></error></iq>"
    );
}

#[test]
fn a_node_keeps_its_newest_max_items_and_max_items_reads_the_newest() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let keep_two = "<field var='pubsub#max_items'><value>2</value></field>";
    for id in ["a", "b", "c"] {
        b.send(juliet, &publish("n", id, &nick(id), keep_two));
        assert_eq!(b.take(juliet), published("n", id));
    }
    b.send(
        juliet,
        "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='n' max_items='1'/></pubsub></iq>",
    );
    assert_eq!(
        b.take(juliet),
        format!(
            "<iq type='result' id='i' to='juliet@localhost/balcony'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>\
             <item id='c'>{}</item></items></pubsub></iq>",
            nick("c")
        )
    );
    b.send(juliet, "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub></iq>");
    let all = b.take(juliet);
    assert!(
        !all.contains("id='a'") && all.contains("id='b'") && all.contains("id='c'"),
        "{all}"
    );
}

#[test]
fn a_retraction_removes_the_item_and_tells_followers() {
    let mut b = Bench::new();
    let (juliet, romeo) = nick_romeo_follows(&mut b);
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <retract node='{NICK}' notify='true'><item id='current'/></retract></pubsub></iq>"
        ),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='r' to='juliet@localhost/balcony'/>"
    );
    assert_eq!(
        b.take(romeo),
        format!(
            "<message from='juliet@localhost' to='romeo@localhost/orchard' type='headline'>\
             <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{NICK}'>\
             <retract id='current'/></items></event></message>"
        )
    );
    b.send(juliet, &items_of_juliet(NICK));
    assert_eq!(
        b.take(juliet),
        format!(
            "<iq type='result' id='i' to='juliet@localhost/balcony' from='juliet@localhost'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{NICK}'/></pubsub></iq>"
        )
    );
}

#[test]
fn a_deleted_node_is_gone_and_followers_are_told() {
    let mut b = Bench::new();
    let (juliet, romeo) = nick_romeo_follows(&mut b);
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <delete node='{NICK}'/></pubsub></iq>"
        ),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='x' to='juliet@localhost/balcony'/>"
    );
    assert_eq!(
        b.take(romeo),
        format!(
            "<message from='juliet@localhost' to='romeo@localhost/orchard' type='headline'>\
             <event xmlns='http://jabber.org/protocol/pubsub#event'><delete node='{NICK}'/>\
             </event></message>"
        )
    );
    assert!(!b.documents.contains_key(&(
        "juliet@localhost".to_owned(),
        DocumentStore::Pep,
        NICK.to_owned()
    )));
    b.send(juliet, &items_of_juliet(NICK));
    assert!(b.take(juliet).contains("<item-not-found"));
}

#[test]
fn the_owner_reads_and_changes_a_nodes_configuration() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    let configure = format!(
        "<iq type='set' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
         <configure node='{NICK}'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/pubsub#node_config</value></field>{}\
         </x></configure></pubsub></iq>",
        access("open")
    );
    b.send(juliet, &configure);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='c' to='juliet@localhost/balcony'/>"
    );
    b.send(
        juliet,
        &format!(
            "<iq type='get' id='g'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <configure node='{NICK}'/></pubsub></iq>"
        ),
    );
    let form = b.take(juliet);
    assert!(
        form.contains("<field var='pubsub#access_model' type='list-single'><value>open</value>"),
        "{form}"
    );
    // Now a precondition of access open holds.
    b.send(
        juliet,
        &publish(NICK, "current", &nick("J"), &access("open")),
    );
    assert_eq!(b.take(juliet), published(NICK, "current"));
}

#[test]
fn changes_to_one_accounts_nodes_run_one_at_a_time_in_order() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let keep_all = "<field var='pubsub#max_items'><value>max</value></field>";
    b.auto_storage = false;
    b.send(juliet, &publish("n", "a", &nick("a"), keep_all));
    b.send(juliet, &publish("n", "b", &nick("b"), keep_all));
    for _ in 0..4 {
        b.answer_storage();
    }
    assert_eq!(b.take(juliet), published("n", "a") + &published("n", "b"));
    let stored = &b.documents[&(
        "juliet@localhost".to_owned(),
        DocumentStore::Pep,
        "n".to_owned(),
    )];
    assert!(
        stored.contains("id='a'") && stored.contains("id='b'"),
        "{stored}"
    );
}

#[test]
fn changes_past_the_queue_are_refused_with_resource_constraint() {
    let mut config = plaintext();
    config.pep.max_queued = 1;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.auto_storage = false;
    for _ in 0..3 {
        b.send(juliet, &publish("n", "a", &nick("a"), ""));
    }
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='p' to='juliet@localhost/balcony'><error type='wait'>\
         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn a_new_node_past_the_accounts_quota_is_refused() {
    let mut config = plaintext();
    config.pep.max_nodes = 1;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish("one", "a", &nick("a"), ""));
    assert_eq!(b.take(juliet), published("one", "a"));
    b.send(juliet, &publish("two", "a", &nick("a"), ""));
    assert!(b.take(juliet).contains("<resource-constraint"));
}

#[test]
fn a_contact_blocked_by_the_publisher_is_not_notified() {
    let mut b = Bench::new();
    lovers(&mut b);
    let (romeo, _) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'>\
         <item jid='romeo@localhost'/></block></iq>",
    );
    b.take(juliet);
    b.take(romeo);
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    assert_eq!(b.take(juliet), published(NICK, "current"));
    assert_eq!(b.take(romeo), "");
}

#[test]
fn a_roster_node_shows_only_to_contacts_in_its_groups() {
    let mut b = Bench::new();
    lovers(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let friends = "<field var='pubsub#roster_groups_allowed'><value>Friends</value></field>";
    b.send(
        juliet,
        &publish(
            NICK,
            "current",
            &nick("Jules"),
            &(access("roster") + friends),
        ),
    );
    b.take(juliet);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, &items_of_juliet(NICK));
    assert!(b.take(romeo).contains("<not-in-roster-group"));
    b.send(
        juliet,
        "<iq type='set' id='g'><query xmlns='jabber:iq:roster'>\
         <item jid='romeo@localhost'><group>Friends</group></item></query></iq>",
    );
    b.take(juliet);
    b.send(romeo, &items_of_juliet(NICK));
    assert!(b.take(romeo).contains("<item id='current'>"));
}

#[test]
fn others_cannot_publish_on_an_accounts_service() {
    let mut b = Bench::new();
    lovers(&mut b);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(
        romeo,
        &publish(NICK, "current", &nick("Jules"), "")
            .replace("id='p'", "id='p' to='juliet@localhost'"),
    );
    assert!(b.take(romeo).contains("<forbidden"));
}

#[test]
fn new_capabilities_bring_the_last_items_of_newly_followed_nodes_only() {
    let mut b = Bench::new();
    lovers(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let metadata = "urn:xmpp:avatar:metadata";
    let info = "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='9' id='abc' type='image/png'/></metadata>";
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.send(juliet, &publish(metadata, "abc", info, ""));
    b.take(juliet);
    let (romeo, got) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    assert_eq!(got, nick_event("romeo@localhost/orchard", "Jules"));
    let follows_both = [FOLLOWS_NICKS, &["urn:xmpp:avatar:metadata+notify"]].concat();
    b.send(romeo, &caps_presence(&follows_both));
    let asked = b.take(romeo);
    let id = between(&asked, "<iq type='get' id='", "'")
        .unwrap()
        .to_owned();
    b.send(romeo, &disco_answer(&id, &follows_both));
    assert_eq!(
        b.take(romeo),
        format!(
            "<message from='juliet@localhost' to='romeo@localhost/orchard' type='headline'>\
             <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{metadata}'>\
             <item id='abc'>{info}</item></items></event></message>"
        )
    );
}

#[test]
fn a_caps_answer_folding_features_into_an_identity_name_is_not_believed() {
    let mut b = Bench::new();
    lovers(&mut b);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    // The hash of a client following nicknames...
    b.send(romeo, &caps_presence(FOLLOWS_NICKS));
    b.take(romeo);
    // ...answered by one identity whose name spells the same string.
    let mut sorted = FOLLOWS_NICKS.to_vec();
    sorted.sort_unstable();
    let forged_name = format!("Tester<{}", sorted[..sorted.len() - 1].join("<"));
    let forged = format!(
        "<iq type='result' to='localhost' id='{}'><query xmlns='{DISCO}'>\
         <identity category='client' type='pc' name='{}'/>\
         <feature var='{}'/></query></iq>",
        query_id(FOLLOWS_NICKS),
        forged_name.replace('<', "&lt;"),
        sorted[sorted.len() - 1]
    );
    b.send(romeo, &forged);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    assert_eq!(b.take(romeo), "");
}

#[test]
fn a_resource_that_never_answers_is_passed_over_for_the_next_showing_its_hash() {
    let mut b = Bench::new();
    lovers(&mut b);
    let silent = b.bound("romeo", "j00l13t", "orchard");
    b.send(silent, &caps_presence(FOLLOWS_NICKS));
    let id = query_id(FOLLOWS_NICKS);
    assert!(b.take(silent).contains(&format!("id='{id}'")));
    b.advance(std::time::Duration::from_secs(31));
    let hall = b.bound("romeo", "j00l13t", "hall");
    b.send(hall, &caps_presence(FOLLOWS_NICKS));
    assert!(b.take(hall).contains(&format!("<iq type='get' id='{id}'")));
    b.send(hall, &disco_answer(&id, FOLLOWS_NICKS));
    b.take(silent);
    // Both now follow nicknames.
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.take(juliet);
    assert_eq!(
        b.take(silent),
        nick_event("romeo@localhost/orchard", "Jules")
    );
    assert!(b
        .take(hall)
        .ends_with(&nick_event("romeo@localhost/hall", "Jules")));
}

#[test]
fn a_resource_keeps_its_notifications_when_the_server_forgets_its_hash() {
    let mut config = plaintext();
    config.pep.max_known_caps = 1;
    let mut b = Bench::with_config(config);
    lovers(&mut b);
    let (romeo, _) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    // Another hash pushes Romeo's out of the server's memory.
    let other = [FOLLOWS_NICKS, &["urn:example:other"]].concat();
    online(&mut b, "romeo", "j00l13t", "hall", &other);
    b.take(romeo);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    assert_eq!(
        b.take(romeo),
        nick_event("romeo@localhost/orchard", "Jules")
    );
}

#[test]
fn an_offline_owner_who_blocks_a_contact_sends_it_no_last_items() {
    let mut b = Bench::new();
    lovers(&mut b);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &publish(NICK, "current", &nick("Jules"), &access("open")),
    );
    b.send(
        juliet,
        "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'>\
         <item jid='romeo@localhost'/></block></iq>",
    );
    b.take(juliet);
    b.peer_close(juliet);
    assert_eq!(b.server.rosters_held(), 0, "her roster is no longer held");
    let (_, got) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    assert_eq!(got, "");
}

#[test]
fn a_node_past_its_byte_limit_is_refused_as_payload_too_big() {
    let mut config = plaintext();
    config.pep.max_node_bytes = 300;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &publish(NICK, "current", &nick(&"J".repeat(400)), ""),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='p' to='juliet@localhost/balcony'><error type='modify'>\
         <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <payload-too-big xmlns='http://jabber.org/protocol/pubsub#errors'/></error></iq>"
    );
}

#[test]
fn an_items_reply_holds_the_newest_items_that_fit_half_the_output_budget() {
    let mut config = plaintext();
    config.output_buffer = 8 * 1024;
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let keep_all = "<field var='pubsub#max_items'><value>max</value></field>";
    for id in ["a", "b", "c"] {
        b.send(juliet, &publish("n", id, &nick(&id.repeat(1500)), keep_all));
        b.take(juliet);
    }
    b.send(juliet, "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub></iq>");
    let got = b.take(juliet);
    assert!(
        !got.contains("id='a'") && got.contains("id='b'") && got.contains("id='c'"),
        "{got}"
    );
}

#[test]
fn a_new_subscriber_gets_the_last_items_it_follows() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &publish(NICK, "current", &nick("Jules"), ""));
    b.send(
        juliet,
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
    );
    b.take(juliet);
    let (romeo, _) = online(&mut b, "romeo", "j00l13t", "orchard", FOLLOWS_NICKS);
    b.send(romeo, "<presence to='juliet@localhost' type='subscribe'/>");
    b.send(juliet, "<presence to='romeo@localhost' type='subscribed'/>");
    assert!(b
        .take(romeo)
        .ends_with(&nick_event("romeo@localhost/orchard", "Jules")));
}

#[test]
fn when_the_resource_asked_leaves_the_next_showing_its_hash_is_asked() {
    let mut b = Bench::new();
    let asked = b.bound("romeo", "j00l13t", "orchard");
    b.send(asked, &caps_presence(FOLLOWS_NICKS));
    let id = query_id(FOLLOWS_NICKS);
    assert!(b.take(asked).contains(&format!("id='{id}'")));
    let hall = b.bound("romeo", "j00l13t", "hall");
    b.send(hall, &caps_presence(FOLLOWS_NICKS));
    assert!(
        !b.take(hall).contains("disco#info"),
        "one question at a time"
    );
    b.peer_close(asked);
    assert!(b.take(hall).contains(&format!(
        "<iq type='get' id='{id}' from='localhost' to='romeo@localhost/hall'>"
    )));
}
