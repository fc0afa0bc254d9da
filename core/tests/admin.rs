//! Service administration (XEP-0133) over ad-hoc commands (XEP-0050):
//! only for the configured admins.

mod support;
use rookery_core::{Config, ConnectionId};
use support::*;

const ADMIN: &str = "http://jabber.org/protocol/admin";

fn juliet_admin() -> Config {
    let mut config = plaintext();
    config.admins = vec!["juliet@localhost".parse().unwrap()];
    config
}

fn execute(node: &str) -> String {
    format!(
        "<iq type='set' id='e' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         node='{ADMIN}#{node}' action='execute'/></iq>"
    )
}

fn submit(node: &str, fields: &[(&str, &str)]) -> String {
    let fields: String = fields
        .iter()
        .map(|(var, value)| format!("<field var='{var}'><value>{value}</value></field>"))
        .collect();
    format!(
        "<iq type='set' id='s' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         node='{ADMIN}#{node}' sessionid='{ADMIN}#{node}'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>{ADMIN}</value></field>{fields}</x></command></iq>"
    )
}

fn completed(node: &str, note: &str) -> String {
    format!(
        "<iq type='result' id='s' to='juliet@localhost/balcony' from='localhost'>\
         <command xmlns='http://jabber.org/protocol/commands' node='{ADMIN}#{node}' \
         sessionid='{ADMIN}#{node}' status='completed'><note type='info'>{note}</note></command></iq>"
    )
}

fn admin(b: &mut Bench) -> ConnectionId {
    b.bound("juliet", "r0m30", "balcony")
}

fn logs_in(b: &mut Bench, user: &str, password: &str) -> bool {
    let c = b.connect();
    b.send(c, HEADER);
    b.send(c, &plain(user, password));
    b.take(c).contains("<success")
}

#[test]
fn an_admin_sees_the_commands_and_others_see_none() {
    let mut b = Bench::with_config(juliet_admin());
    let list = "<iq type='get' id='c' to='localhost'><query \
        xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>";
    let juliet = admin(&mut b);
    b.send(juliet, list);
    let got = b.take(juliet);
    for node in [
        "add-user",
        "delete-user",
        "change-user-password",
        "get-online-users-list",
        "announce",
    ] {
        assert!(
            got.contains(&format!("<item jid='localhost' node='{ADMIN}#{node}'")),
            "{node}: {got}"
        );
    }
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, list);
    assert_eq!(
        b.take(romeo),
        "<iq type='result' id='c' to='romeo@localhost/orchard' from='localhost'>\
         <query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"
    );
    b.send(romeo, &execute("add-user"));
    assert!(b.take(romeo).contains("<forbidden"));
}

#[test]
fn executing_a_command_answers_with_its_form() {
    let mut b = Bench::with_config(juliet_admin());
    let juliet = admin(&mut b);
    b.send(juliet, &execute("change-user-password"));
    assert_eq!(
        b.take(juliet),
        format!(
            "<iq type='result' id='e' to='juliet@localhost/balcony' from='localhost'>\
             <command xmlns='http://jabber.org/protocol/commands' node='{ADMIN}#change-user-password' \
             sessionid='{ADMIN}#change-user-password' status='executing'>\
             <x xmlns='jabber:x:data' type='form'><title>Change a user's password</title>\
             <field var='FORM_TYPE' type='hidden'><value>{ADMIN}</value></field>\
             <field var='accountjid' type='jid-single' label='The Jabber ID for this account'><required/></field>\
             <field var='password' type='text-private' label='The password for this account'><required/></field>\
             </x></command></iq>"
        )
    );
}

#[test]
fn an_admin_adds_a_user_who_then_logs_in() {
    let mut b = Bench::with_config(juliet_admin());
    let juliet = admin(&mut b);
    let fields = [
        ("accountjid", "nurse@localhost"),
        ("password", "s3cret"),
        ("password-verify", "s3cret"),
    ];
    b.send(juliet, &submit("add-user", &fields));
    assert_eq!(
        b.take(juliet),
        completed("add-user", "The account was added.")
    );
    assert!(logs_in(&mut b, "nurse", "s3cret"));
    b.send(juliet, &submit("add-user", &fields));
    assert!(b.take(juliet).contains("<conflict"));
}

#[test]
fn an_admin_changes_a_users_password() {
    let mut b = Bench::with_config(juliet_admin());
    let juliet = admin(&mut b);
    let fields = [("accountjid", "romeo@localhost"), ("password", "n3w")];
    b.send(juliet, &submit("change-user-password", &fields));
    assert_eq!(
        b.take(juliet),
        completed("change-user-password", "The password was changed.")
    );
    assert!(!logs_in(&mut b, "romeo", "j00l13t"));
    assert!(logs_in(&mut b, "romeo", "n3w"));
}

#[test]
fn a_deleted_user_is_disconnected_and_cannot_log_in() {
    let mut b = Bench::with_config(juliet_admin());
    b.add_user("nurse", "pw", 64);
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    let juliet = admin(&mut b);
    let accounts = "romeo@localhost</value><value>nurse@localhost";
    b.send(juliet, &submit("delete-user", &[("accountjids", accounts)]));
    assert_eq!(
        b.take(juliet),
        completed("delete-user", "The accounts were deleted.")
    );
    assert!(b.take(romeo).contains("<not-authorized"));
    assert!(!logs_in(&mut b, "romeo", "j00l13t"));
    assert!(!logs_in(&mut b, "nurse", "pw"));
}

#[test]
fn an_admin_lists_online_users() {
    let mut b = Bench::with_config(juliet_admin());
    b.bound("romeo", "j00l13t", "orchard");
    let juliet = admin(&mut b);
    b.send(juliet, &execute("get-online-users-list"));
    assert!(b.take(juliet).contains(
        "<field var='onlineuserjids' type='jid-multi' label='The list of all online users'>\
         <value>juliet@localhost</value><value>romeo@localhost</value></field>"
    ));
}

#[test]
fn an_announcement_reaches_every_available_resource() {
    let mut b = Bench::with_config(juliet_admin());
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, "<presence/>");
    b.take(romeo);
    let juliet = admin(&mut b);
    let fields = [("subject", "Maintenance"), ("announcement", "Back soon")];
    b.send(juliet, &submit("announce", &fields));
    assert_eq!(
        b.take(juliet),
        completed("announce", "The announcement was sent.")
    );
    assert_eq!(
        b.take(romeo),
        "<message from='localhost' to='romeo@localhost/orchard' type='headline'>\
         <subject>Maintenance</subject><body>Back soon</body></message>"
    );
}
