//! Stream management (XEP-0198) through each server binary: a session
//! outlives its killed TCP connection and is resumed on a new one; one
//! left to expire loses nothing.

use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const USERS: &[(&str, &str)] = &[
    ("juliet@localhost", "r0m30"),
    ("romeo@localhost", "j00l13t"),
];

const SM: &str = "urn:xmpp:sm:3";

/// Juliet bound at `balcony` with resumable stream management; returns
/// the client and its resumption token.
fn managed(server: &TestServer) -> anyhow::Result<(RawClient, String)> {
    let (mut c, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
    c.send(&format!("<enable xmlns='{SM}' resume='true'/>"))?;
    let enabled = c.read_until("/>")?;
    let token = enabled
        .split("id='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .ok_or_else(|| anyhow::anyhow!("no token in {enabled:?}"))?
        .to_owned();
    Ok((c, token))
}

fn send_chat(romeo: &mut RawClient, body: &str) -> anyhow::Result<()> {
    romeo.send(&format!(
        "<message to='juliet@localhost/balcony' type='chat' id='{body}'><body>{body}</body></message>"
    ))
}

/// Romeo's messages so far have been handled by the server.
fn sync(romeo: &mut RawClient) -> anyhow::Result<()> {
    romeo.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
    romeo.read_until("id='sync'")?;
    Ok(())
}

for_both_shims! {
    fn a_session_resumes_after_its_connection_is_killed_and_gets_exactly_what_it_had_not_acknowledged(shim) {
        let server = TestServer::start(shim, USERS, "")?;
        let (mut juliet, token) = managed(&server)?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        send_chat(&mut romeo, "one")?;
        juliet.read_until("<body>one</body>")?;
        juliet.send(&format!("<a xmlns='{SM}' h='1'/>"))?;
        send_chat(&mut romeo, "two")?;
        send_chat(&mut romeo, "three")?;
        juliet.read_until("<body>three</body>")?;
        // Killed mid-conversation, "two" and "three" unacknowledged.
        drop(juliet);
        send_chat(&mut romeo, "four")?;
        sync(&mut romeo)?;

        let mut c = RawClient::connect(server.addr)?;
        c.open_stream()?;
        assert!(c.plain("juliet", "r0m30")?.starts_with("<success"));
        c.open_stream()?;
        c.send(&format!("<resume xmlns='{SM}' previd='{token}' h='1'/>"))?;
        let resumed = c.read_until("/>")?;
        assert_eq!(resumed, format!("<resumed xmlns='{SM}' previd='{token}' h='0'/>"));
        send_chat(&mut romeo, "five")?;
        let got = c.read_until("<body>five</body>")?;
        for body in ["two", "three", "four", "five"] {
            assert_eq!(got.matches(&format!("<body>{body}</body>")).count(), 1, "{body}: {got}");
        }
        assert!(!got.contains("<body>one</body>"), "{got}");
        let order: Vec<_> = ["two", "three", "four", "five"].iter().map(|b| got.find(b)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{got}");
        // The resumed session answers for what it handled.
        c.send(&format!("<r xmlns='{SM}'/>"))?;
        c.read_until(&format!("<a xmlns='{SM}' h='0'/>"))?;
        Ok(())
    }

    fn an_expired_session_leaves_its_unacknowledged_messages_in_offline_storage(shim) {
        let server = TestServer::start(
            shim,
            USERS,
            "\n[stream_management]\nhibernation_secs = 1\n",
        )?;
        let (mut juliet, _) = managed(&server)?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "j00l13t", Some("orchard"))?;
        send_chat(&mut romeo, "unacknowledged")?;
        juliet.read_until("<body>unacknowledged</body>")?;
        drop(juliet);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        sync(&mut romeo)?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "r0m30", Some("balcony"))?;
        juliet.send("<presence/>")?;
        juliet.read_until("<body>unacknowledged</body>")?;
        let got = juliet.read_until("</message>")?;
        assert!(got.contains("<delay xmlns='urn:xmpp:delay' from='localhost'"), "{got}");
        Ok(())
    }
}
