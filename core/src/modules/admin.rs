//! Service administration (XEP-0133) over ad-hoc commands (XEP-0050),
//! for the accounts the configuration names in `admins`: add and delete
//! users, change a user's password, list online users, and send an
//! announcement to everyone online.
//!
//! Commands keep no state between steps: `execute` answers with a form,
//! and a submitted form (whatever its `sessionid`) does the work. So a
//! client that starts a command and walks away costs nothing.

use super::{waiting, Addressee, Answer, IqHandler, Module, Request};
use crate::hub::Ctx;
use crate::sasl::Password;
use crate::session::SessionId;
use crate::stanza::StanzaErrorCondition as E;
use crate::storage::{StorageAnswer, StorageRequest};
use crate::stream::{StreamError, StreamErrorCondition};
use crate::xml::Element;
use jid::BareJid;

pub const NS: &str = "http://jabber.org/protocol/commands";
const NS_DATA: &str = "jabber:x:data";
const ADMIN: &str = "http://jabber.org/protocol/admin";

pub(crate) const MODULE: Module = Module {
    name: "admin",
    features: &[NS],
    iqs: &[IqHandler {
        to: Addressee::Server,
        name: "command",
        ns: NS,
        get: None,
        set: Some(command),
    }],
    ..Module::NONE
};

/// A command: its node (after `ADMIN#`), its name, and its form's
/// fields (var, type, label).
struct Command {
    node: &'static str,
    name: &'static str,
    fields: &'static [(&'static str, &'static str, &'static str)],
}

const COMMANDS: &[Command] = &[
    Command {
        node: "add-user",
        name: "Add a user",
        fields: &[
            (
                "accountjid",
                "jid-single",
                "The Jabber ID for the account to be added",
            ),
            ("password", "text-private", "The password for this account"),
            ("password-verify", "text-private", "Retype password"),
        ],
    },
    Command {
        node: "delete-user",
        name: "Delete users",
        fields: &[("accountjids", "jid-multi", "The Jabber ID(s) to delete")],
    },
    Command {
        node: "change-user-password",
        name: "Change a user's password",
        fields: &[
            ("accountjid", "jid-single", "The Jabber ID for this account"),
            ("password", "text-private", "The password for this account"),
        ],
    },
    Command {
        node: "get-online-users-list",
        name: "Get list of online users",
        fields: &[],
    },
    Command {
        node: "announce",
        name: "Send announcement to all online users",
        fields: &[
            ("subject", "text-single", "Subject"),
            ("announcement", "text-multi", "Announcement"),
        ],
    },
];

/// Whether the session's account is one of the configured admins.
fn is_admin(ctx: &Ctx, session: SessionId) -> bool {
    ctx.account_of(session)
        .is_some_and(|user| ctx.config.admins.contains(&user))
}

/// XEP-0050 section 2.2: the commands this session may run, as disco
/// items of the server's `commands` node (none for others).
pub(crate) fn items(ctx: &Ctx, session: SessionId, domain: &str) -> Vec<Element> {
    if !is_admin(ctx, session) {
        return Vec::new();
    }
    COMMANDS
        .iter()
        .map(|c| {
            Element::new("item", crate::modules::disco::NS_ITEMS)
                .attr("jid", domain)
                .attr("node", &format!("{ADMIN}#{}", c.node))
                .attr("name", c.name)
        })
        .collect()
}

fn command(ctx: &mut Ctx, request: &Request) -> Answer {
    let node = request.payload.get_attr("node").unwrap_or_default();
    let Some(command) = node
        .strip_prefix(ADMIN)
        .and_then(|n| n.strip_prefix('#'))
        .and_then(|n| COMMANDS.iter().find(|c| c.node == n))
    else {
        return Answer::Error(E::ItemNotFound);
    };
    if !is_admin(ctx, request.session) {
        return Answer::Error(E::Forbidden);
    }
    let action = request.payload.get_attr("action").unwrap_or("execute");
    let submitted = request
        .payload
        .get_child("x", NS_DATA)
        .filter(|x| x.get_attr("type") == Some("submit"));
    match (action, submitted) {
        ("cancel", _) => Answer::Result(Some(reply(node, "canceled"))),
        // Nothing to ask: done at once.
        ("execute", None) if command.fields.is_empty() => run(ctx, request, command, None),
        ("execute", None) => Answer::Result(Some(reply(node, "executing").child(form(command)))),
        ("execute" | "complete" | "next", Some(form)) => run(ctx, request, command, Some(form)),
        _ => Answer::Error(E::BadRequest),
    }
}

/// `<command node sessionid status>`; the session id is the node's:
/// there is nothing to resume.
fn reply(node: &str, status: &str) -> Element {
    Element::new("command", NS)
        .attr("node", node)
        .attr("sessionid", node)
        .attr("status", status)
}

fn form(command: &Command) -> Element {
    let mut form = Element::new("x", NS_DATA)
        .attr("type", "form")
        .child(Element::new("title", NS_DATA).text(command.name))
        .child(hidden());
    for (var, kind, label) in command.fields {
        let field = Element::new("field", NS_DATA)
            .attr("var", var)
            .attr("type", kind)
            .attr("label", label)
            .child(Element::new("required", NS_DATA));
        form.push_child(field);
    }
    form
}

fn hidden() -> Element {
    Element::new("field", NS_DATA)
        .attr("var", "FORM_TYPE")
        .attr("type", "hidden")
        .child(Element::new("value", NS_DATA).text(ADMIN))
}

/// The values of a submitted form's field.
fn values(form: Option<&Element>, var: &str) -> Vec<String> {
    form.into_iter()
        .flat_map(|f| f.children())
        .filter(|f| f.is("field", NS_DATA) && f.get_attr("var") == Some(var))
        .flat_map(|f| f.children())
        .filter(|v| v.is("value", NS_DATA))
        .map(Element::text_content)
        .collect()
}

fn value(form: Option<&Element>, var: &str) -> Option<String> {
    values(form, var)
        .into_iter()
        .next()
        .filter(|v| !v.is_empty())
}

/// A completed command, with a note.
fn completed(node: &str, note: Option<&str>) -> Element {
    let mut done = reply(node, "completed");
    if let Some(note) = note {
        done.push_child(Element::new("note", NS).attr("type", "info").text(note));
    }
    done
}

/// An account of a domain this server serves.
fn local_account(ctx: &Ctx, jid: &str) -> Option<BareJid> {
    let jid = BareJid::new(jid.trim()).ok()?;
    (jid.node().is_some() && ctx.config.serves(jid.domain().as_str())).then_some(jid)
}

fn run(ctx: &mut Ctx, request: &Request, command: &Command, form: Option<&Element>) -> Answer {
    let node = format!("{ADMIN}#{}", command.node);
    match command.node {
        "add-user" => {
            let (Some(jid), Some(password)) = (value(form, "accountjid"), value(form, "password"))
            else {
                return Answer::Error(E::BadRequest);
            };
            if value(form, "password-verify").is_some_and(|v| v != password) {
                return Answer::Error(E::NotAcceptable);
            }
            let Some(account) = local_account(ctx, &jid) else {
                return Answer::Error(E::JidMalformed);
            };
            let create = StorageRequest::CreateAccount {
                username: account
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                domain: account.domain().as_str().to_owned(),
                password: Password(password),
                iterations: ctx.config.scram_iterations,
            };
            waiting::ask(ctx, request, create, None, |_, _, _, answer| match answer {
                StorageAnswer::AccountCreated(true) => {
                    let node = format!("{ADMIN}#add-user");
                    Answer::Result(Some(completed(&node, Some("The account was added."))))
                }
                StorageAnswer::AccountCreated(false) => Answer::Error(E::Conflict),
                _ => Answer::Error(E::NotAcceptable),
            })
        }
        "change-user-password" => {
            let (Some(jid), Some(password)) = (value(form, "accountjid"), value(form, "password"))
            else {
                return Answer::Error(E::BadRequest);
            };
            let Some(user) = local_account(ctx, &jid) else {
                return Answer::Error(E::JidMalformed);
            };
            let set = StorageRequest::SetPassword {
                user,
                password: Password(password),
                iterations: ctx.config.scram_iterations,
            };
            waiting::ask(ctx, request, set, None, |_, _, _, answer| match answer {
                StorageAnswer::Written => {
                    let node = format!("{ADMIN}#change-user-password");
                    Answer::Result(Some(completed(&node, Some("The password was changed."))))
                }
                _ => Answer::Error(E::ItemNotFound),
            })
        }
        "delete-user" => {
            let mut accounts = Vec::new();
            for jid in values(form, "accountjids") {
                let Some(account) = local_account(ctx, &jid) else {
                    return Answer::Error(E::JidMalformed);
                };
                if !accounts.contains(&account) {
                    accounts.push(account);
                }
            }
            delete_next(ctx, request.session, &request.iq.shallow(), accounts)
        }
        "get-online-users-list" => {
            let mut online: Vec<String> = ctx
                .sessions
                .iter()
                .map(|s| s.jid.to_bare().to_string())
                .collect();
            online.sort_unstable();
            online.dedup();
            // As many as fit half the output budget.
            let mut bytes = 0;
            online.retain(|jid| {
                bytes += jid.len() + 16;
                bytes <= ctx.config.output_buffer / 2
            });
            let mut field = Element::new("field", NS_DATA)
                .attr("var", "onlineuserjids")
                .attr("type", "jid-multi")
                .attr("label", "The list of all online users");
            for jid in &online {
                field.push_child(Element::new("value", NS_DATA).text(jid));
            }
            let result = Element::new("x", NS_DATA)
                .attr("type", "result")
                .child(hidden())
                .child(field);
            Answer::Result(Some(completed(&node, None).child(result)))
        }
        "announce" => {
            let Some(body) = value(form, "announcement") else {
                return Answer::Error(E::BadRequest);
            };
            if body.len() > MAX_ANNOUNCEMENT {
                return Answer::Error(E::NotAcceptable);
            }
            announce(ctx, request.session, value(form, "subject"), &body);
            Answer::Result(Some(completed(&node, Some("The announcement was sent."))))
        }
        _ => Answer::Error(E::ItemNotFound),
    }
}

/// Delete the accounts one after another, each once the one before is
/// gone; the command completes after the last.
fn delete_next(
    ctx: &mut Ctx,
    session: SessionId,
    head: &Element,
    mut accounts: Vec<BareJid>,
) -> Answer {
    let Some(user) = accounts.pop() else {
        let node = format!("{ADMIN}#delete-user");
        return Answer::Result(Some(completed(&node, Some("The accounts were deleted."))));
    };
    // What is left, and the reply's head, ride with the request.
    let mut kept = Element::new("pending", NS).child(head.clone());
    for rest in &accounts {
        kept.push_child(Element::new("jid", NS).text(rest.as_str()));
    }
    let request = Request {
        session,
        iq: head,
        payload: head,
    };
    let delete = StorageRequest::DeleteAccount { user: user.clone() };
    // The account's sessions end once it is gone: see `deleted`.
    kept.set_attr("deleting", user.as_str());
    waiting::ask(ctx, &request, delete, Some(kept), deleted)
}

fn deleted(
    ctx: &mut Ctx,
    session: SessionId,
    kept: Option<&Element>,
    answer: StorageAnswer,
) -> Answer {
    let Some(kept) = kept else {
        return Answer::Error(E::InternalServerError);
    };
    if answer != StorageAnswer::Written {
        return Answer::Error(E::ItemNotFound);
    }
    if let Some(user) = kept.get_attr("deleting").and_then(|j| BareJid::new(j).ok()) {
        let sessions: Vec<_> = ctx.sessions.resources_of(&user).map(|s| s.id).collect();
        for s in sessions {
            let error =
                StreamError::with_text(StreamErrorCondition::NotAuthorized, "account deleted");
            ctx.evict(s, error);
        }
    }
    let Some(head) = kept.children().find(|c| c.name() == "iq").cloned() else {
        return Answer::Error(E::InternalServerError);
    };
    let rest: Vec<BareJid> = kept
        .children()
        .filter(|c| c.is("jid", NS))
        .filter_map(|j| BareJid::new(&j.text_content()).ok())
        .collect();
    match delete_next(ctx, session, &head, rest) {
        Answer::Later => Answer::Later,
        done => {
            // The reply goes to the asker here: `waiting` answers the
            // first request's head, which this one shares.
            if let Some(reply) = done.reply(&head) {
                ctx.deliver(session, &reply);
            }
            Answer::Later
        }
    }
}

/// Bytes of an announcement's text: one message to every user.
const MAX_ANNOUNCEMENT: usize = 16 * 1024;

/// XEP-0133 section 4.23: a message from the server to every available
/// resource of the admin's domain, but clients far behind in reading.
fn announce(ctx: &mut Ctx, session: SessionId, subject: Option<String>, body: &str) {
    let domain = ctx
        .sessions
        .get(session)
        .map(|s| s.jid.domain().as_str().to_owned())
        .unwrap_or_default();
    let recipients: Vec<(SessionId, String)> = ctx
        .sessions
        .iter()
        .filter(|s| s.is_available() && s.jid.domain().as_str() == domain)
        .map(|s| (s.id, s.jid.to_string()))
        .collect();
    for (id, jid) in recipients {
        if !ctx.accepts(id) {
            continue;
        }
        let mut message = Element::new("message", crate::ns::CLIENT)
            .attr("from", &domain)
            .attr("to", &jid)
            .attr("type", "headline");
        if let Some(subject) = &subject {
            message.push_child(Element::new("subject", crate::ns::CLIENT).text(subject));
        }
        message.push_child(Element::new("body", crate::ns::CLIENT).text(body));
        ctx.deliver(id, &message);
    }
}
