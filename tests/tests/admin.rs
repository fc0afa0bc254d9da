//! The account commands (`adduser`, `passwd`, `deluser`) of each binary.

use anyhow::Result;
use rookery_tests::client::RawClient;
use rookery_tests::for_both_shims;
use rookery_tests::server::TestServer;

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

    fn adduser_refuses_an_unserved_domain(shim) {
        let server = TestServer::start(shim, &[], "")?;
        assert!(server.admin(&["adduser", "juliet@example.org"], Some("pw")).is_err());
        Ok(())
    }
}
