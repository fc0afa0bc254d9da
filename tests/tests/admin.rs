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
