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
        modules_disabled: vec![
            "roster".into(),
            "stream_management".into(),
            "csi".into(),
            "caps".into(),
        ],
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

/// XEP-0115 section 5.1, written again here: the verification string of
/// a disco#info answer (identities, features, then forms).
fn caps_of(info: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}='");
        tag.split(&key)
            .nth(1)
            .map(|r| r[..r.find('\'').unwrap()].to_owned())
            .unwrap_or_default()
    };
    let identity = info.split("<identity ").nth(1).unwrap();
    let mut s = format!(
        "{}/{}//{}<",
        attr(identity, "category"),
        attr(identity, "type"),
        attr(identity, "name")
    );
    let mut features: Vec<String> = info
        .split("<feature ")
        .skip(1)
        .map(|f| attr(f, "var"))
        .collect();
    features.sort();
    for f in features {
        s.push_str(&f);
        s.push('<');
    }
    if let Some(form) = info.split("<x xmlns='jabber:x:data'").nth(1) {
        let mut fields: Vec<(String, Vec<String>)> = form
            .split("<field ")
            .skip(1)
            .map(|f| {
                let values = f
                    .split("<value>")
                    .skip(1)
                    .map(|v| v[..v.find("</value>").unwrap()].to_owned())
                    .collect();
                (attr(f, "var"), values)
            })
            .collect();
        fields.sort();
        let form_type = fields.iter().position(|(v, _)| v == "FORM_TYPE").unwrap();
        let (_, mut values) = fields.remove(form_type);
        s.push_str(&values.pop().unwrap());
        s.push('<');
        for (var, mut values) in fields {
            values.sort();
            s.push_str(&var);
            s.push('<');
            for v in values {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(s.as_bytes()))
}

fn caps_check(config: Config) -> String {
    let mut b = Bench::with_config(config);
    let c = b.connect();
    b.send(c, HEADER);
    b.send(c, &plain("romeo", "j00l13t"));
    b.send(c, HEADER);
    let features = b.take(c);
    let ver = features
        .split("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://rookery.chat' ver='")
        .nth(1)
        .map(|r| r[..r.find('\'').unwrap()].to_owned())
        .unwrap_or_else(|| panic!("no caps in {features}"));
    b.send(
        c,
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    b.take(c);
    b.send(c, DISCO_INFO);
    let info = b.take(c);
    assert_eq!(ver, caps_of(&info), "{info}");
    info
}

#[test]
fn the_caps_in_the_stream_features_hash_the_servers_disco_info() {
    caps_check(plaintext());
}

#[test]
fn contact_addresses_are_a_form_in_disco_and_in_the_caps_hash() {
    let info = caps_check(Config {
        contact_info: vec![
            ("abuse".into(), vec!["mailto:abuse@localhost".into()]),
            (
                "admin".into(),
                vec![
                    "xmpp:admin@localhost".into(),
                    "mailto:admin@localhost".into(),
                ],
            ),
        ],
        ..plaintext()
    });
    assert!(
        info.contains(
            "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/network/serverinfo</value></field>\
             <field var='abuse-addresses' type='list-multi'><value>mailto:abuse@localhost</value></field>\
             <field var='admin-addresses' type='list-multi'><value>xmpp:admin@localhost</value>\
             <value>mailto:admin@localhost</value></field></x>"
        ),
        "{info}"
    );
}
