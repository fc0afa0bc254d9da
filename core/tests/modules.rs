//! What the server advertises is what its loaded modules declare: disco
//! replies and stream features are built from them, and a module the
//! configuration does not load is neither advertised nor answered.

mod support;
use rookery_core::Config;
use support::*;

const DISCO_INFO: &str = "<iq type='get' id='d' to='localhost'>\
    <query xmlns='http://jabber.org/protocol/disco#info'/></iq>";

fn bench(config: Config) -> (Bench, rookery_core::ConnectionId) {
    let mut b = Bench::with_config(config);
    let c = b.bound("romeo", "j00l13t", "orchard");
    (b, c)
}

#[test]
fn a_hidden_software_version_is_neither_advertised_nor_answered() {
    let (mut b, c) = bench(Config {
        expose_version: false,
        ..plaintext()
    });
    b.send(c, DISCO_INFO);
    let info = b.take(c);
    assert!(info.contains("<feature var='urn:xmpp:ping'/>"), "{info}");
    assert!(!info.contains("jabber:iq:version"), "{info}");
    b.send(
        c,
        "<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
    );
    assert_eq!(
        b.take(c),
        "<iq type='error' id='v' to='romeo@localhost/orchard' from='localhost'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn a_disabled_module_is_neither_advertised_nor_answered() {
    let (mut b, c) = bench(Config {
        modules_disabled: vec!["ping".into()],
        ..plaintext()
    });
    b.send(c, DISCO_INFO);
    let info = b.take(c);
    assert!(info.contains("<feature var='urn:xmpp:time'/>"), "{info}");
    assert!(!info.contains("urn:xmpp:ping"), "{info}");
    b.send(
        c,
        "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        b.take(c),
        "<iq type='error' id='p' to='romeo@localhost/orchard' from='localhost'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
}

#[test]
fn stream_features_after_login_come_from_the_loaded_modules() {
    let mut b = Bench::with_config(Config {
        modules_disabled: vec!["roster".into(), "stream_management".into(), "csi".into()],
        ..plaintext()
    });
    let c = b.connect();
    b.send(c, HEADER);
    b.send(c, &plain("romeo", "j00l13t"));
    b.send(c, HEADER);
    let got = b.take(c);
    assert!(
        got.ends_with(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"
        ),
        "{got}"
    );
}
