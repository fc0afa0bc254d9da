//! Random stanzas between random sessions: every iq get or set gets exactly
//! one reply, and no error is ever answered with an error (RFC 6120
//! sections 8.2.3 and 8.3.1). Clients here answer the iqs delivered to them
//! with a result, as real clients must.

mod support;
use proptest::prelude::*;
use rookery_core::ConnectionId;
use std::collections::HashMap;
use support::*;

const TARGETS: [&str; 9] = [
    "",
    "localhost",
    "example.org",
    "juliet@localhost",
    "romeo@localhost",
    "ghost@localhost",
    "juliet@localhost/a",
    "romeo@localhost/b",
    "romeo@localhost/gone",
];
const IQ_TYPES: [&str; 5] = ["get", "set", "result", "error", "bogus"];
const MESSAGE_TYPES: [&str; 6] = ["chat", "normal", "headline", "groupchat", "error", ""];
const PAYLOADS: [&str; 6] = [
    "",
    "<ping xmlns='urn:xmpp:ping'/>",
    "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    "<query xmlns='urn:example:unknown'/>",
    "<query xmlns='jabber:iq:roster'/>",
    "<ping xmlns='urn:xmpp:ping'/><time xmlns='urn:xmpp:time'/>",
];

#[derive(Clone, Debug)]
struct Send {
    from: usize,
    iq: bool,
    kind: usize,
    to: usize,
    payload: usize,
    available: bool,
}

fn send() -> impl Strategy<Value = Send> {
    (
        0..2usize,
        any::<bool>(),
        0..6usize,
        0..9usize,
        0..6usize,
        any::<bool>(),
    )
        .prop_map(|(from, iq, kind, to, payload, available)| Send {
            from,
            iq,
            kind,
            to,
            payload,
            available,
        })
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}='"))? + name.len() + 3;
    let len = tag[start..].find('\'')?;
    Some(&tag[start..start + len])
}

/// Stanza start tags in what a connection received.
fn tags(text: &str, name: &str) -> Vec<String> {
    text.split(&format!("<{name} "))
        .skip(1)
        .map(|t| format!(" {}", &t[..t.find('>').unwrap_or(t.len())]))
        .collect()
}

/// Cut received text into top-level stanzas.
fn stanzas(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = ["<iq ", "<message ", "<presence "]
        .iter()
        .flat_map(|p| text.match_indices(p).map(|(i, _)| i))
        .collect();
    starts.sort_unstable();
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

fn run(sends: Vec<Send>) -> Result<(), String> {
    let mut b = Bench::new();
    let clients: [(ConnectionId, &str); 2] = [
        (b.bound("juliet", "r0m30", "a"), "juliet@localhost/a"),
        (b.bound("romeo", "j00l13t", "b"), "romeo@localhost/b"),
    ];
    // id -> (sender index, replies seen)
    let mut requests: HashMap<String, (usize, usize)> = HashMap::new();
    let mut errors_sent: Vec<String> = Vec::new();
    for (n, s) in sends.into_iter().enumerate() {
        let (conn, _) = clients[s.from];
        if s.available {
            b.send(conn, "<presence/>");
        }
        let id = format!("s{n}");
        let to = match TARGETS[s.to] {
            "" => String::new(),
            t => format!(" to='{t}'"),
        };
        let stanza = if s.iq {
            let kind = IQ_TYPES[s.kind % IQ_TYPES.len()];
            if kind == "get" || kind == "set" || kind == "bogus" {
                requests.insert(id.clone(), (s.from, 0));
            }
            format!(
                "<iq type='{kind}' id='{id}'{to}>{}</iq>",
                PAYLOADS[s.payload]
            )
        } else {
            let kind = MESSAGE_TYPES[s.kind];
            format!("<message type='{kind}' id='{id}'{to}><body>x</body></message>")
        };
        if stanza.contains("type='error'") {
            errors_sent.push(id.clone());
        }
        b.send(conn, &stanza);
        // Deliver, answer delivered requests, and count replies, until quiet.
        loop {
            let mut answered = false;
            for (i, (c, me)) in clients.iter().enumerate() {
                let got = b.take(*c);
                for tag in tags(&got, "iq") {
                    let (Some(id), Some(kind)) = (attr(&tag, "id"), attr(&tag, "type")) else {
                        continue;
                    };
                    let from = attr(&tag, "from").unwrap_or("");
                    match kind {
                        "get" | "set"
                            if !from.is_empty() && from != *me
                                || from == *me && attr(&tag, "to") == Some(me) =>
                        {
                            b.send(*c, &format!("<iq type='result' id='{id}' to='{from}'/>"));
                            answered = true;
                        }
                        "result" | "error" => {
                            if let Some((sender, count)) = requests.get_mut(id) {
                                if *sender == i {
                                    *count += 1;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // A server-made error carries a defined stanza error
                // condition; the errors the clients send here carry none.
                for stanza in stanzas(&got) {
                    let answered_error = errors_sent
                        .iter()
                        .any(|id| stanza.contains(&format!(" id='{id}'")));
                    if answered_error && stanza.contains("urn:ietf:params:xml:ns:xmpp-stanzas") {
                        return Err(format!("an error was answered with an error: {stanza}"));
                    }
                }
            }
            if !answered {
                break;
            }
        }
    }
    for (id, (_, count)) in requests {
        if count != 1 {
            return Err(format!("iq {id} got {count} replies"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_request_gets_exactly_one_reply_and_errors_get_none(sends in prop::collection::vec(send(), 1..40)) {
        if let Err(broken) = run(sends) {
            return Err(TestCaseError::fail(broken));
        }
    }
}
