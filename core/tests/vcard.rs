//! vcard-temp (XEP-0054): an account's own resources set and read its
//! vCard; anyone reads it; nobody else changes it.

mod support;
use rookery_core::{Config, DocumentStore};
use support::*;

const CARD: &str =
    "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>jc</NICKNAME></vCard>";

fn set_card(card: &str) -> String {
    format!("<iq type='set' id='s'>{card}</iq>")
}

const GET_OWN: &str = "<iq type='get' id='g'><vCard xmlns='vcard-temp'/></iq>";
const GET_JULIETS: &str =
    "<iq type='get' id='o' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>";

fn stored<'a>(b: &'a Bench, user: &str) -> Option<&'a String> {
    b.documents
        .get(&(user.to_owned(), DocumentStore::VCard, String::new()))
}

#[test]
fn an_account_without_a_vcard_reads_item_not_found() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, GET_OWN);
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='g' to='juliet@localhost/balcony'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn a_vcard_set_is_acknowledged_once_durable_and_read_back_whole() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.auto_storage = false;
    b.send(juliet, &set_card(CARD));
    assert_eq!(b.take(juliet), "", "nothing before the write is durable");
    b.answer_storage();
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='s' to='juliet@localhost/balcony'/>"
    );
    assert_eq!(
        stored(&b, "juliet@localhost").map(String::as_str),
        Some(CARD)
    );
    b.auto_storage = true;
    b.send(juliet, GET_OWN);
    assert_eq!(
        b.take(juliet),
        format!("<iq type='result' id='g' to='juliet@localhost/balcony'>{CARD}</iq>")
    );
}

#[test]
fn anyone_reads_an_accounts_vcard_at_its_bare_jid() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &set_card(CARD));
    b.take(juliet);
    // Romeo is no contact of hers.
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, GET_JULIETS);
    assert_eq!(
        b.take(romeo),
        format!(
            "<iq type='result' id='o' to='romeo@localhost/orchard' from='juliet@localhost'>{CARD}</iq>"
        )
    );
}

#[test]
fn a_missing_vcard_and_a_missing_account_look_the_same_to_others() {
    let mut b = Bench::new();
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, GET_JULIETS);
    let no_card = b.take(romeo);
    b.send(
        romeo,
        "<iq type='get' id='o' to='nobody@localhost'><vCard xmlns='vcard-temp'/></iq>",
    );
    let no_account = b.take(romeo);
    assert_eq!(
        no_card,
        "<iq type='error' id='o' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    assert_eq!(
        no_account,
        no_card.replace("from='juliet@localhost'", "from='nobody@localhost'")
    );
}

#[test]
fn someone_the_account_blocks_cannot_read_its_vcard() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &set_card(CARD));
    b.send(
        juliet,
        "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>",
    );
    b.send(juliet, "</stream:stream>");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, GET_JULIETS);
    assert!(b.take(romeo).contains("<service-unavailable "));
}

#[test]
fn nobody_sets_another_accounts_vcard() {
    let mut b = Bench::new();
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(
        romeo,
        &format!("<iq type='set' id='x' to='juliet@localhost'>{CARD}</iq>"),
    );
    assert_eq!(
        b.take(romeo),
        "<iq type='error' id='x' to='romeo@localhost/orchard' from='juliet@localhost'>\
         <error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    assert_eq!(stored(&b, "juliet@localhost"), None);
}

#[test]
fn a_vcard_over_the_size_limit_is_refused_and_the_old_one_kept() {
    let mut config = plaintext();
    config.vcard.max_bytes = CARD.len();
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, &set_card(CARD));
    b.take(juliet);
    let larger = CARD.replace("jc", "jcc");
    b.send(juliet, &set_card(&larger));
    assert_eq!(
        b.take(juliet),
        "<iq type='error' id='s' to='juliet@localhost/balcony'><error type='modify'>\
         <policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    assert_eq!(
        stored(&b, "juliet@localhost").map(String::as_str),
        Some(CARD)
    );
}

#[test]
fn the_domain_advertises_vcard_temp() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(b.take(juliet).contains("<feature var='vcard-temp'/>"));
}

#[test]
fn disabling_the_module_stops_both_the_feature_and_the_answers() {
    let config = Config {
        modules_disabled: vec!["vcard".into()],
        ..plaintext()
    };
    let mut b = Bench::with_config(config);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(juliet, GET_OWN);
    assert!(b.take(juliet).contains("<service-unavailable"));
    b.send(
        juliet,
        "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(!b.take(juliet).contains("vcard-temp"));
}
