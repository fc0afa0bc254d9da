//! Model-based test of the session model (shared/session-model.md): many
//! sessions of several users go through random logins, roster gets,
//! subscriptions, presence and disconnects. After every step the server's
//! invariants must hold, and every observer's view of who is available
//! must be right: whoever saw a resource available gets exactly one
//! unavailable when it goes.

mod support;
use proptest::prelude::*;
use rookery_core::{ConnectionId, Output};
use std::collections::HashMap;
use std::time::Duration;
use support::*;

const USERS: [(&str, &str); 3] = [
    ("juliet", "r0m30"),
    ("romeo", "j00l13t"),
    ("nurse", "n0rs3"),
];
const RESOURCES: [&str; 2] = ["a", "b"];
const SUBSCRIPTIONS: [&str; 4] = ["subscribe", "subscribed", "unsubscribe", "unsubscribed"];

#[derive(Clone, Debug)]
enum Step {
    Login {
        user: usize,
        resource: usize,
    },
    RosterGet {
        conn: usize,
    },
    Available {
        conn: usize,
        show: bool,
    },
    Unavailable {
        conn: usize,
    },
    Directed {
        conn: usize,
        user: usize,
        resource: usize,
    },
    Subscription {
        conn: usize,
        user: usize,
        kind: usize,
    },
    RemoveContact {
        conn: usize,
        user: usize,
    },
    PeerClose {
        conn: usize,
    },
    StreamClose {
        conn: usize,
    },
    IdleTimeout,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize, 0..2usize).prop_map(|(user, resource)| Step::Login { user, resource }),
        2 => (0..8usize).prop_map(|conn| Step::RosterGet { conn }),
        3 => (0..8usize, any::<bool>()).prop_map(|(conn, show)| Step::Available { conn, show }),
        1 => (0..8usize).prop_map(|conn| Step::Unavailable { conn }),
        1 => (0..8usize, 0..3usize, 0..2usize).prop_map(|(conn, user, resource)| Step::Directed { conn, user, resource }),
        4 => (0..8usize, 0..3usize, 0..4usize).prop_map(|(conn, user, kind)| Step::Subscription { conn, user, kind }),
        1 => (0..8usize, 0..3usize).prop_map(|(conn, user)| Step::RemoveContact { conn, user }),
        1 => (0..8usize).prop_map(|conn| Step::PeerClose { conn }),
        1 => (0..8usize).prop_map(|conn| Step::StreamClose { conn }),
        1 => Just(Step::IdleTimeout),
    ]
}

/// What each live connection believes about each full JID's availability.
struct Model {
    /// Live connections and the full JID each is bound to.
    live: Vec<(ConnectionId, String)>,
    seen: HashMap<(ConnectionId, String), bool>,
    /// What an observer saw before it went unavailable itself: the server
    /// owes it nothing more for those (broadcasts skip unavailable
    /// resources) but may still retract a directed presence.
    forgotten: std::collections::HashSet<(ConnectionId, String)>,
    read: usize,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}='"))? + name.len() + 3;
    let len = tag[start..].find('\'')?;
    Some(&tag[start..start + len])
}

impl Model {
    fn conn(&self, i: usize) -> Option<(ConnectionId, String)> {
        (!self.live.is_empty()).then(|| self.live[i % self.live.len()].clone())
    }

    /// Read new outputs and check each presence against the observer's
    /// view.
    fn observe(&mut self, b: &Bench) -> Result<(), String> {
        for output in &b.log[self.read..] {
            match output {
                Output::Transmit { connection, data } => {
                    let text = String::from_utf8_lossy(data);
                    for piece in text.split("<presence").skip(1) {
                        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
                        let Some(from) = attr(tag, "from") else {
                            continue;
                        };
                        if !from.contains('/') {
                            continue; // subscription stanzas come from bare JIDs
                        }
                        let key = (*connection, from.to_owned());
                        match attr(tag, "type") {
                            None => {
                                self.forgotten.remove(&key);
                                self.seen.insert(key, true);
                            }
                            Some("unavailable") => {
                                if self.forgotten.remove(&key) {
                                    continue;
                                }
                                if self.seen.get(&key) != Some(&true) {
                                    return Err(format!("{connection:?} got an unavailable from {from} it never saw available"));
                                }
                                self.seen.insert(key, false);
                                let own =
                                    self.live.iter().any(|(c, j)| c == connection && j == from);
                                if own {
                                    // A resource that went unavailable is told
                                    // nothing more: it forgets what it saw.
                                    let mine: Vec<_> = self
                                        .seen
                                        .keys()
                                        .filter(|(c, _)| c == connection)
                                        .cloned()
                                        .collect();
                                    for k in mine {
                                        if self.seen.remove(&k) == Some(true) {
                                            self.forgotten.insert(k);
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Output::Close { connection } => {
                    self.live.retain(|(c, _)| c != connection);
                    self.seen.retain(|(c, _), _| c != connection);
                    self.forgotten.retain(|(c, _)| c != connection);
                }
                Output::Storage { .. }
                | Output::StartTls { .. }
                | Output::NotifyWritten { .. }
                | Output::Abort { .. } => {}
            }
        }
        self.read = b.log.len();
        // Nobody may believe a gone resource is still available.
        for ((observer, jid), available) in &self.seen {
            let gone = !self.live.iter().any(|(_, j)| j == jid);
            if *available && gone {
                return Err(format!(
                    "{observer:?} still sees {jid} available after it went"
                ));
            }
        }
        Ok(())
    }
}

fn run(steps: Vec<Step>) -> Result<(), String> {
    let mut b = Bench::new();
    b.add_user("nurse", "n0rs3", 64);
    let mut m = Model {
        live: Vec::new(),
        seen: HashMap::new(),
        forgotten: Default::default(),
        read: 0,
    };
    for step in steps {
        match step {
            Step::Login { user, resource } => {
                let (name, password) = USERS[user];
                let c = b.bound(name, password, RESOURCES[resource]);
                m.observe(&b)?;
                m.live
                    .push((c, format!("{name}@localhost/{}", RESOURCES[resource])));
            }
            Step::RosterGet { conn } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(
                        c,
                        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
                    );
                }
            }
            Step::Available { conn, show } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(
                        c,
                        if show {
                            "<presence><show>away</show></presence>"
                        } else {
                            "<presence/>"
                        },
                    );
                }
            }
            Step::Unavailable { conn } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(c, "<presence type='unavailable'/>");
                }
            }
            Step::Directed {
                conn,
                user,
                resource,
            } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(
                        c,
                        &format!(
                            "<presence to='{}@localhost/{}'/>",
                            USERS[user].0, RESOURCES[resource]
                        ),
                    );
                }
            }
            Step::Subscription { conn, user, kind } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(
                        c,
                        &format!(
                            "<presence to='{}@localhost' type='{}'/>",
                            USERS[user].0, SUBSCRIPTIONS[kind]
                        ),
                    );
                }
            }
            Step::RemoveContact { conn, user } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(
                        c,
                        &format!(
                            "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>\
                             <item jid='{}@localhost' subscription='remove'/></query></iq>",
                            USERS[user].0
                        ),
                    );
                }
            }
            Step::PeerClose { conn } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.peer_close(c);
                }
            }
            Step::StreamClose { conn } => {
                if let Some((c, _)) = m.conn(conn) {
                    b.send(c, "</stream:stream>");
                }
            }
            Step::IdleTimeout => b.advance(Duration::from_secs(901)),
        }
        // `Bench` checks the server's own invariants after every input.
        m.observe(&b)?;
        for (c, _) in &m.live {
            b.take(*c);
        }
    }
    // Everyone leaves: every view must end empty.
    for (c, _) in m.live.clone() {
        b.peer_close(c);
    }
    m.observe(&b)?;
    if !b.server.sessions().is_empty() || b.server.rosters_held() != 0 {
        return Err("sessions or rosters outlive their connections".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn session_model_holds_under_random_steps(steps in prop::collection::vec(step(), 1..60)) {
        if let Err(broken) = run(steps) {
            return Err(TestCaseError::fail(broken));
        }
    }
}
