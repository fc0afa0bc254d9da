//! Stream management (XEP-0198): acknowledgements, resumption on a new
//! connection, hibernation, and nothing lost when a session ends with
//! stanzas its client never acknowledged.

mod support;
use rookery_core::{Config, ConnectionId};
use std::time::Duration;
use support::*;

const SM: &str = "urn:xmpp:sm:3";
const R: &str = "<r xmlns='urn:xmpp:sm:3'/>";

fn chat(to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat'><body>{body}</body></message>")
}

fn delivered(from: &str, to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat' from='{from}'><body>{body}</body></message>")
}

fn ack(h: u32) -> String {
    format!("<a xmlns='{SM}' h='{h}'/>")
}

/// Juliet's session with stream management enabled (with resumption),
/// available, everything so far acknowledged; and her token.
fn managed(b: &mut Bench) -> (ConnectionId, String) {
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}' resume='true'/>"));
    let enabled = b.take(c);
    let id = enabled
        .split("id='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{enabled}"))
        .to_owned();
    b.send(c, "<presence/>");
    // Her own presence comes back: stanza 1.
    b.take(c);
    b.send(c, &ack(1));
    (c, id)
}

fn romeo(b: &mut Bench) -> ConnectionId {
    let c = b.bound("romeo", "j00l13t", "orchard");
    b.send(c, "<presence/>");
    b.take(c);
    c
}

fn resume(b: &mut Bench, token: &str, h: u32) -> (ConnectionId, String) {
    let c = b.authenticated("juliet", "r0m30");
    b.send(
        c,
        &format!("<resume xmlns='{SM}' previd='{token}' h='{h}'/>"),
    );
    let got = b.take(c);
    (c, got)
}

#[test]
fn enabling_with_resumption_answers_a_token_and_the_hibernation_time() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}' resume='true'/>"));
    let got = b.take(c);
    assert!(
        got.starts_with(&format!("<enabled xmlns='{SM}' id='")),
        "{got}"
    );
    assert!(got.ends_with("' resume='true' max='600'/>"), "{got}");
    let token = got
        .split("id='")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert_eq!(token.len(), 32, "128 bits of the connection's seed: {got}");
}

#[test]
fn a_client_may_ask_for_a_shorter_hibernation_never_a_longer_one() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}' resume='true' max='60'/>"));
    assert!(b.take(c).ends_with("max='60'/>"));
    let d = b.bound("juliet", "r0m30", "chamber");
    b.send(c, "");
    b.send(
        d,
        &format!("<enable xmlns='{SM}' resume='true' max='86400'/>"),
    );
    assert!(b.take(d).ends_with("max='600'/>"));
}

#[test]
fn enabling_before_binding_or_twice_fails_with_unexpected_request() {
    let mut b = Bench::new();
    let c = b.authenticated("juliet", "r0m30");
    let failed = format!(
        "<failed xmlns='{SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
    );
    b.send(c, &format!("<enable xmlns='{SM}'/>"));
    assert_eq!(b.take(c), failed);
    let (c, _) = managed(&mut b);
    b.send(c, &format!("<enable xmlns='{SM}'/>"));
    assert_eq!(b.take(c), failed);
}

#[test]
fn a_request_is_answered_with_how_many_stanzas_were_handled() {
    let mut b = Bench::new();
    let (c, _) = managed(&mut b);
    b.send(
        c,
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    b.take(c);
    b.send(c, R);
    // The presence and the ping.
    assert_eq!(b.take(c), ack(2));
}

#[test]
fn a_delivered_stanza_is_followed_by_a_request_while_none_is_out() {
    let mut b = Bench::new();
    let (juliet, _) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.take(juliet);
    b.send(romeo, &chat("juliet@localhost/balcony", "one"));
    b.send(romeo, &chat("juliet@localhost/balcony", "two"));
    let from = "romeo@localhost/orchard";
    let to = "juliet@localhost/balcony";
    assert_eq!(
        b.take(juliet),
        format!(
            "{}{R}{}",
            delivered(from, to, "one"),
            delivered(from, to, "two")
        )
    );
    // Answered: the next delivery asks again.
    b.send(juliet, &ack(3));
    b.send(romeo, &chat(to, "three"));
    assert_eq!(
        b.take(juliet),
        format!("{}{R}", delivered(from, to, "three"))
    );
}

#[test]
fn an_acknowledgement_of_more_than_was_sent_is_a_stream_error() {
    let mut b = Bench::new();
    let (c, _) = managed(&mut b);
    b.send(c, &ack(7));
    assert_eq!(
        b.take(c),
        format!(
            "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <handled-count-too-high xmlns='{SM}' h='7' send-count='1'/></stream:error></stream:stream>"
        )
    );
    assert!(b.is_closed(c));
}

#[test]
fn a_resumed_session_receives_exactly_what_it_had_not_acknowledged() {
    let mut b = Bench::new();
    let (juliet, token) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.take(juliet);
    let to = "juliet@localhost/balcony";
    for body in ["one", "two", "three"] {
        b.send(romeo, &chat(to, body));
    }
    // She acknowledges "one" (2) and loses the connection.
    b.send(juliet, &ack(2));
    b.peer_close(juliet);
    // Still there for others while it hibernates.
    b.send(romeo, &chat(to, "four"));
    assert_eq!(b.take(romeo), "");
    let (c, got) = resume(&mut b, &token, 2);
    let from = "romeo@localhost/orchard";
    assert_eq!(
        got,
        format!(
            "<resumed xmlns='{SM}' previd='{token}' h='1'/>{}{}{}{R}",
            delivered(from, to, "two"),
            delivered(from, to, "three"),
            delivered(from, to, "four")
        )
    );
    // The session carries on over the new connection.
    b.send(romeo, &chat(to, "five"));
    assert_eq!(b.take(c), delivered(from, to, "five"));
    b.send(c, R);
    assert_eq!(b.take(c), ack(1));
}

#[test]
fn a_resumption_takes_over_from_a_connection_still_open() {
    let mut b = Bench::new();
    let (old, token) = managed(&mut b);
    let (new, got) = resume(&mut b, &token, 1);
    assert!(got.starts_with("<resumed"), "{got}");
    assert_eq!(
        b.take(old),
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>replaced by a resumed session</text>\
         </stream:error></stream:stream>"
    );
    assert!(b.is_closed(old));
    assert!(!b.is_closed(new));
    assert_eq!(b.server.sessions().len(), 1);
}

#[test]
fn a_resumption_with_an_unknown_token_fails_with_item_not_found() {
    let mut b = Bench::new();
    let (_, got) = resume(&mut b, "nosuchtoken", 0);
    assert_eq!(
        got,
        format!(
            "<failed xmlns='{SM}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        )
    );
}

#[test]
fn another_accounts_token_resumes_nothing() {
    let mut b = Bench::new();
    let (juliet, token) = managed(&mut b);
    b.peer_close(juliet);
    let c = b.authenticated("romeo", "j00l13t");
    b.send(c, &format!("<resume xmlns='{SM}' previd='{token}' h='1'/>"));
    assert!(b.take(c).contains("<item-not-found"));
    // Juliet's own client still can.
    let (_, got) = resume(&mut b, &token, 1);
    assert!(got.starts_with("<resumed"), "{got}");
}

#[test]
fn when_hibernation_ends_unacknowledged_messages_go_to_offline_storage() {
    let mut b = Bench::new();
    let (juliet, token) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.take(juliet);
    b.send(romeo, &chat("juliet@localhost/balcony", "kept"));
    b.peer_close(juliet);
    b.send(romeo, &chat("juliet@localhost", "while away"));
    assert!(b.offline.get("juliet@localhost").is_none_or(Vec::is_empty));
    b.advance(Duration::from_secs(601));
    let stored = &b.offline["juliet@localhost"];
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored[0].contains("<body>kept</body>"), "{stored:?}");
    assert!(stored[1].contains("<body>while away</body>"), "{stored:?}");
    assert!(b
        .server
        .sessions()
        .by_full_jid(&"juliet@localhost/balcony".parse().unwrap())
        .is_none());
    // A late resumption learns how much of hers was handled.
    let (_, got) = resume(&mut b, &token, 3);
    assert_eq!(
        got,
        format!(
            "<failed xmlns='{SM}' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        )
    );
}

#[test]
fn closing_the_stream_ends_the_session_and_keeps_what_was_not_acknowledged() {
    let mut b = Bench::new();
    let (juliet, _) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.send(romeo, &chat("juliet@localhost/balcony", "unread"));
    b.send(juliet, "</stream:stream>");
    assert_eq!(b.server.sessions().len(), 1);
    let stored = &b.offline["juliet@localhost"];
    assert_eq!(stored.len(), 1);
    assert!(stored[0].contains("<body>unread</body>"));
}

#[test]
fn without_resumption_a_broken_connection_ends_the_session() {
    let mut b = Bench::new();
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}'/>"));
    assert_eq!(b.take(c), format!("<enabled xmlns='{SM}'/>"));
    b.peer_close(c);
    assert!(b.server.sessions().is_empty());
}

#[test]
fn offline_messages_leave_storage_only_once_acknowledged() {
    let mut b = Bench::new();
    let romeo = romeo(&mut b);
    b.send(romeo, &chat("juliet@localhost", "stored"));
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}' resume='true'/>"));
    b.take(c);
    b.send(c, "<presence/>");
    let got = b.take(c);
    assert!(got.contains("<body>stored</body>"), "{got}");
    // Written to the socket, but not acknowledged: still stored.
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
    // Her presence, then the stored message.
    b.send(c, &ack(2));
    assert!(!b.offline.contains_key("juliet@localhost"));
}

#[test]
fn a_stored_message_not_acknowledged_is_not_stored_twice() {
    let mut b = Bench::new();
    let romeo = romeo(&mut b);
    b.send(romeo, &chat("juliet@localhost", "stored"));
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, &format!("<enable xmlns='{SM}'/>"));
    b.send(c, "<presence/>");
    b.send(c, "</stream:stream>");
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
}

#[test]
fn a_hibernating_session_with_a_full_queue_takes_nothing_more_from_others() {
    let mut b = Bench::with_config(Config {
        stream_management: rookery_core::config::StreamManagementLimits {
            max_unacked_stanzas: 2,
            ..Default::default()
        },
        ..plaintext()
    });
    let (juliet, _) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.peer_close(juliet);
    let to = "juliet@localhost/balcony";
    b.send(romeo, &chat(to, "one"));
    b.send(romeo, &chat(to, "two"));
    assert_eq!(b.take(romeo), "");
    b.send(romeo, &chat(to, "three"));
    assert!(
        b.take(romeo).contains("<resource-constraint"),
        "the sender is told to wait"
    );
}

#[test]
fn a_client_that_never_acknowledges_is_cut_off_and_loses_nothing() {
    let mut b = Bench::with_config(Config {
        stream_management: rookery_core::config::StreamManagementLimits {
            max_unacked_stanzas: 2,
            ..Default::default()
        },
        ..plaintext()
    });
    let (juliet, _) = managed(&mut b);
    let romeo = romeo(&mut b);
    let to = "juliet@localhost/balcony";
    for body in ["one", "two", "three"] {
        b.send(romeo, &chat(to, body));
    }
    assert!(b.take(juliet).contains("too many unacknowledged stanzas"));
    assert!(b.is_closed(juliet));
    assert_eq!(b.offline["juliet@localhost"].len(), 3);
}

#[test]
fn shutting_down_ends_hibernating_sessions_into_offline_storage() {
    let mut b = Bench::new();
    let (juliet, _) = managed(&mut b);
    let romeo = romeo(&mut b);
    b.send(romeo, &chat("juliet@localhost/balcony", "kept"));
    b.peer_close(juliet);
    b.server.handle_shutdown(b.now);
    b.advance(Duration::ZERO);
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
}

#[test]
fn binding_past_the_resource_limit_ends_the_oldest_hibernating_session() {
    let mut b = Bench::with_config(Config {
        max_resources_per_account: 2,
        ..plaintext()
    });
    let (first, _) = managed(&mut b);
    b.peer_close(first);
    let _second = b.bound("juliet", "r0m30", "chamber");
    assert_eq!(b.server.sessions().len(), 2);
    let _third = b.bound("juliet", "r0m30", "garden");
    let jid = |r: &str| format!("juliet@localhost/{r}").parse().unwrap();
    assert!(b.server.sessions().by_full_jid(&jid("balcony")).is_none());
    assert!(b.server.sessions().by_full_jid(&jid("garden")).is_some());
}

#[test]
fn binding_past_the_resource_limit_with_none_hibernating_is_a_resource_constraint() {
    let mut b = Bench::with_config(Config {
        max_resources_per_account: 1,
        ..plaintext()
    });
    b.bound("juliet", "r0m30", "balcony");
    let c = b.authenticated("juliet", "r0m30");
    b.send(c, "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>chamber</resource></bind></iq>");
    assert_eq!(
        b.take(c),
        "<iq type='error' id='b2'><error type='wait'>\
         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    // Still unbound: stanzas are refused.
    b.send(c, "<presence/>");
    assert!(b.take(c).contains("<not-authorized"));
}

#[test]
fn hibernating_sessions_count_against_the_connection_limit() {
    let mut b = Bench::with_config(Config {
        limits: rookery_core::limits::Limits {
            max_connections: 1,
            ..Default::default()
        },
        ..plaintext()
    });
    let (juliet, _) = managed(&mut b);
    b.peer_close(juliet);
    let c = b.connect();
    assert!(b.is_closed(c), "{}", b.take(c));
}

#[test]
fn the_legacy_session_iq_and_a_second_bind_are_counted_stanzas() {
    let mut b = Bench::new();
    let (c, _) = managed(&mut b);
    b.send(
        c,
        "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    );
    b.send(
        c,
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    b.send(c, R);
    let got = b.take(c);
    assert!(got.ends_with(&ack(3)), "{got}");
    // Both answers were counted as sent: acknowledging them is fine.
    b.send(c, &ack(3));
    assert!(!b.is_closed(c));
}

#[test]
fn an_acknowledgement_behind_the_last_is_ignored() {
    let mut b = Bench::new();
    let (c, _) = managed(&mut b);
    b.send(c, &ack(0));
    assert_eq!(b.take(c), "");
    assert!(!b.is_closed(c));
}

#[test]
fn a_resumption_without_a_count_is_a_bad_request() {
    let mut b = Bench::new();
    let (juliet, token) = managed(&mut b);
    b.peer_close(juliet);
    let c = b.authenticated("juliet", "r0m30");
    b.send(c, &format!("<resume xmlns='{SM}' previd='{token}'/>"));
    assert_eq!(
        b.take(c),
        format!("<failed xmlns='{SM}'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
    );
}

#[test]
fn an_offline_page_sent_before_enabling_leaves_storage_once_a_later_stanza_is_acknowledged() {
    let mut b = Bench::new();
    let romeo = romeo(&mut b);
    b.send(romeo, &chat("juliet@localhost", "stored"));
    b.auto_written = false;
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<presence/>");
    assert!(b.take(c).contains("<body>stored</body>"));
    b.send(c, &format!("<enable xmlns='{SM}' resume='true'/>"));
    b.take(c);
    // Its socket write is never reported (the connection breaks); the
    // session is resumed and acknowledges a stanza sent later.
    b.unwritten.clear();
    b.auto_written = true;
    b.send(romeo, &chat("juliet@localhost/balcony", "later"));
    assert_eq!(b.offline["juliet@localhost"].len(), 1);
    b.send(c, &ack(1));
    assert!(!b.offline.contains_key("juliet@localhost"));
}

#[test]
fn a_stored_message_is_never_held_back_for_an_inactive_client() {
    let mut b = Bench::new();
    let romeo = romeo(&mut b);
    b.send(
        romeo,
        "<message to='juliet@localhost'><x xmlns='jabber:x:conference' jid='room@muc.localhost'/></message>",
    );
    let c = b.bound("juliet", "r0m30", "balcony");
    b.send(c, "<inactive xmlns='urn:xmpp:csi:0'/>");
    b.send(c, "<presence/>");
    assert!(b.take(c).contains("jabber:x:conference"));
    assert!(!b.offline.contains_key("juliet@localhost"));
}

mod random_disconnects {
    //! Random kills, resumptions, partial acknowledgements and expiries
    //! while Romeo writes to Juliet: every message reaches her client, the
    //! first copies in the order sent, and a copy comes twice only if her
    //! client had received it and not acknowledged it when her session
    //! expired (XEP-0198 section 4: delivery is at least once across an
    //! expiry, exactly once across resumptions).

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        Send,
        /// Juliet's client reads what has arrived.
        Read,
        /// It acknowledges all it has read, or only part.
        Ack {
            all: bool,
        },
        /// Its TCP connection dies; what it had not read is lost.
        Kill,
        Resume,
        /// Time passes beyond the hibernation.
        Expire,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Send),
            3 => Just(Step::Read),
            2 => any::<bool>().prop_map(|all| Step::Ack { all }),
            1 => Just(Step::Kill),
            2 => Just(Step::Resume),
            1 => Just(Step::Expire),
        ]
    }

    /// Juliet's client.
    struct Client {
        conn: Option<ConnectionId>,
        token: String,
        /// Stanzas it handled on its current session (its `h`).
        handled: u32,
        acked: u32,
        /// Bodies received, in order, with when each came relative to
        /// acknowledgements: (body, acknowledged yet).
        bodies: Vec<(u32, bool)>,
        /// Bodies received but unacknowledged when a session expired.
        may_repeat: std::collections::HashSet<u32>,
    }

    impl Client {
        fn read(&mut self, b: &mut Bench) {
            let Some(c) = self.conn else { return };
            let text = b.take(c);
            self.handle(&text);
        }

        /// Count the stanzas in `text` and note the bodies.
        fn handle(&mut self, text: &str) {
            for piece in text.split('<').skip(1) {
                let name = piece.split([' ', '>', '/']).next().unwrap_or("");
                if matches!(name, "message" | "presence" | "iq") {
                    self.handled = self.handled.wrapping_add(1);
                }
                if let Some(body) = piece.strip_prefix("body>") {
                    if let Some(n) = body.split('<').next().and_then(|n| n.parse::<u32>().ok()) {
                        self.bodies.push((n, false));
                    }
                }
            }
        }

        /// A `<resumed/>` acknowledged all it had handled, and carried
        /// what the server resends.
        fn resumed(&mut self, c: ConnectionId, got: &str) {
            self.conn = Some(c);
            self.acked = self.handled;
            for body in &mut self.bodies {
                body.1 = true;
            }
            self.handle(got);
        }

        fn ack(&mut self, b: &mut Bench, all: bool) {
            let Some(c) = self.conn else { return };
            let h = if all {
                self.handled
            } else {
                (self.acked + self.handled) / 2
            };
            b.send(c, &ack(h));
            self.acked = h;
            if all {
                for body in &mut self.bodies {
                    body.1 = true;
                }
            }
        }

        /// A fresh session: bind, enable, initial presence (which
        /// brings what waited offline).
        fn login(&mut self, b: &mut Bench) {
            let c = b.bound("juliet", "r0m30", "balcony");
            b.send(c, &format!("<enable xmlns='{SM}' resume='true'/>"));
            let enabled = b.take(c);
            self.token = enabled
                .split("id='")
                .nth(1)
                .unwrap()
                .split('\'')
                .next()
                .unwrap()
                .into();
            self.conn = Some(c);
            self.handled = 0;
            self.acked = 0;
            b.send(c, "<presence/>");
            self.read(b);
        }
    }

    fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
        let mut b = Bench::new();
        let mut client = Client {
            conn: None,
            token: String::new(),
            handled: 0,
            acked: 0,
            bodies: Vec::new(),
            may_repeat: Default::default(),
        };
        client.login(&mut b);
        let romeo = romeo(&mut b);
        let mut sent = 0u32;
        for step in steps {
            match step {
                Step::Send => {
                    b.send(romeo, &chat("juliet@localhost/balcony", &sent.to_string()));
                    sent += 1;
                    b.take(romeo);
                }
                Step::Read => client.read(&mut b),
                Step::Ack { all } => client.ack(&mut b, all),
                Step::Kill => {
                    if let Some(c) = client.conn.take() {
                        b.take(c);
                        b.peer_close(c);
                    }
                }
                Step::Resume => {
                    if let Some(old) = client.conn.take() {
                        b.take(old);
                    }
                    let (c, got) = resume(&mut b, &client.token, client.handled);
                    if got.starts_with("<failed") {
                        // Gone: a fresh login, offline messages on presence.
                        b.peer_close(c);
                        client.login(&mut b);
                    } else {
                        client.resumed(c, &got);
                    }
                }
                Step::Expire => {
                    if client.conn.is_none() {
                        for (body, acked) in &client.bodies {
                            if !acked {
                                client.may_repeat.insert(*body);
                            }
                        }
                        // Romeo stays within his idle timeout.
                        b.send(romeo, " ");
                        b.advance(Duration::from_secs(601));
                    }
                }
            }
            b.server.check_invariants().map_err(TestCaseError::fail)?;
        }
        // Settle: whatever state, the client ends up with a session and
        // reads everything.
        if client.conn.is_none() {
            let (c, got) = resume(&mut b, &client.token, client.handled);
            if got.starts_with("<failed") {
                b.peer_close(c);
                for (body, acked) in &client.bodies {
                    if !acked {
                        client.may_repeat.insert(*body);
                    }
                }
                client.login(&mut b);
                // The first page of offline messages came with presence.
            } else {
                client.resumed(c, &got);
            }
        }
        // Offline pages follow one another as each is acknowledged.
        for _ in 0..4 {
            client.read(&mut b);
            client.ack(&mut b, true);
        }
        let mut first = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (body, _) in &client.bodies {
            if !seen.insert(*body) {
                prop_assert!(
                    client.may_repeat.contains(body),
                    "{body} came twice: {:?}",
                    client.bodies
                );
            } else {
                first.push(*body);
            }
        }
        let expected: Vec<u32> = (0..sent).collect();
        prop_assert_eq!(first, expected, "received {:?}", client.bodies);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn random_kills_and_resumptions_lose_and_reorder_nothing(
            steps in prop::collection::vec(step(), 1..40)
        ) {
            run(steps)?;
        }
    }
}
