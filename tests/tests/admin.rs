//! The account commands (`adduser`, `passwd`, `deluser`) of each binary.

use anyhow::Result;
use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const NOT_AUTHORIZED: &str =
    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>";

fn plain_verdict(server: &TestServer, user: &str, password: &str) -> Result<String> {
    let mut c = RawClient::connect(server.addr)?;
    c.open_stream()?;
    c.plain(user, password)
}

for_both_shims! {
    fn passwd_replaces_the_password(shim) {
        let server = TestServer::start(shim, &[("juliet@localhost", "old")], "")?;
        server.admin(&["passwd", "juliet@localhost"], Some("new"))?;
        assert_eq!(plain_verdict(&server, "juliet", "old")?, NOT_AUTHORIZED);
        assert_eq!(plain_verdict(&server, "juliet", "new")?, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        Ok(())
    }

    fn deluser_removes_the_account(shim) {
        let server = TestServer::start(shim, &[("juliet@localhost", "pw")], "")?;
        server.admin(&["deluser", "juliet@localhost"], None)?;
        assert_eq!(plain_verdict(&server, "juliet", "pw")?, NOT_AUTHORIZED);
        Ok(())
    }

    fn passwd_ends_the_accounts_live_sessions(shim) {
        let server = TestServer::start(shim, &[("juliet@localhost", "old")], "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "old", Some("balcony"))?;
        server.admin(&["passwd", "juliet@localhost"], Some("new"))?;
        assert_eq!(
            juliet.read_to_close()?,
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>password changed</text></stream:error></stream:stream>"
        );
        Ok(())
    }

    fn deluser_ends_the_accounts_live_sessions(shim) {
        let server = TestServer::start(shim, &[("juliet@localhost", "pw"), ("romeo@localhost", "pw")], "")?;
        let (mut juliet, _) = RawClient::login(server.addr, "juliet", "pw", Some("balcony"))?;
        let (mut romeo, _) = RawClient::login(server.addr, "romeo", "pw", Some("orchard"))?;
        server.admin(&["deluser", "juliet@localhost"], None)?;
        assert!(juliet.read_to_close()?.contains("<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>account deleted</text>"));
        // Others stay.
        romeo.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")?;
        romeo.read_until("id='p'")?;
        Ok(())
    }

    fn adduser_refuses_an_existing_account(shim) {
        let server = TestServer::start(shim, &[("juliet@localhost", "pw")], "")?;
        assert!(server.admin(&["adduser", "juliet@localhost"], Some("other")).is_err());
        Ok(())
    }

    fn adduser_batch_creates_every_account_of_stdin(shim) {
        let server = TestServer::start(shim, &[], "")?;
        server.admin_batch("juliet@localhost pw one\nromeo@localhost pw two\n")?;
        assert_eq!(plain_verdict(&server, "juliet", "pw one")?, SUCCESS);
        assert_eq!(plain_verdict(&server, "romeo", "pw two")?, SUCCESS);
        Ok(())
    }

    fn adduser_batch_creates_none_when_one_exists(shim) {
        let server = TestServer::start(shim, &[("romeo@localhost", "pw")], "")?;
        assert!(server.admin_batch("juliet@localhost pw\nromeo@localhost other\n").is_err());
        assert_eq!(plain_verdict(&server, "juliet", "pw")?, NOT_AUTHORIZED);
        assert_eq!(plain_verdict(&server, "romeo", "pw")?, SUCCESS);
        Ok(())
    }

    fn adduser_refuses_an_unserved_domain(shim) {
        let server = TestServer::start(shim, &[], "")?;
        assert!(server.admin(&["adduser", "juliet@example.org"], Some("pw")).is_err());
        Ok(())
    }
}
