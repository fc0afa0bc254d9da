//! The command line both binaries share, so that scripts can switch
//! runtimes by changing one word:
//!
//! ```text
//! rookery-smol [--config FILE]                 run the server
//! rookery-smol adduser JID [--config FILE]     create an account
//! rookery-smol adduser --batch [--config FILE] create accounts from stdin
//! rookery-smol passwd JID [--config FILE]      change its password
//! rookery-smol deluser JID [--config FILE]     delete it
//! ```
//!
//! Passwords are never taken from argv (it is visible to every user of the
//! machine): they are read as one line from stdin, or prompted for without
//! echo when stdin is a terminal.

use crate::admin::Reason;
use crate::config::Settings;
use crate::storage::{Account, SqliteStorage, Storage};
use anyhow::{bail, Context, Result};
use rookery_core::sasl::StoredCredentials;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    AddUser(String),
    /// `JID PASSWORD` lines on stdin, all created in one transaction.
    AddUsers,
    Passwd(String),
    DelUser(String),
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: Option<PathBuf>,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args> {
    let mut config = None;
    let mut batch = false;
    let mut words = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(args.next().context("--config needs a file")?))
            }
            "--help" | "-h" => words.insert(0, "help".to_owned()),
            "--batch" => batch = true,
            a if a.starts_with('-') => bail!("unknown option {a}"),
            _ => words.push(arg),
        }
    }
    let command = match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => Command::Serve,
        ["help", ..] => Command::Help,
        ["adduser"] if batch => Command::AddUsers,
        ["adduser", jid] => Command::AddUser(jid.to_string()),
        ["passwd", jid] => Command::Passwd(jid.to_string()),
        ["deluser", jid] => Command::DelUser(jid.to_string()),
        other => bail!("unknown command {:?}; try --help", other.join(" ")),
    };
    if batch && command != Command::AddUsers {
        bail!("--batch goes with adduser only, without a JID");
    }
    Ok(Args { command, config })
}

fn usage(name: &str) -> String {
    format!(
        "usage:\n  {name} [--config FILE]              run the server\n  \
         {name} adduser JID [--config FILE]  create an account (password from stdin)\n  \
         {name} adduser --batch [--config FILE]\n      \
         create the accounts of `JID PASSWORD` lines on stdin, all or none\n  \
         {name} passwd JID [--config FILE]   change an account's password\n  \
         {name} deluser JID [--config FILE]  delete an account\n"
    )
}

/// The whole `main` of a server binary: `serve` runs the server itself.
pub fn main(name: &str, serve: fn(Settings) -> Result<()>) -> Result<()> {
    let args = parse(std::env::args().skip(1))?;
    let settings = Settings::load(args.config.as_deref())?;
    match args.command {
        Command::Help => {
            print!("{}", usage(name));
            Ok(())
        }
        Command::Serve => serve(settings),
        Command::AddUser(jid) => {
            let account = served_account(&settings, &jid)?;
            let credentials = new_credentials(&settings, &read_password()?)?;
            SqliteStorage::open(&settings.data_dir)?.create_account(&account, &credentials)?;
            eprintln!("{name}: created {}@{}", account.username, account.domain);
            Ok(())
        }
        Command::AddUsers => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input)?;
            let accounts = batch_accounts(&settings, &input)?;
            SqliteStorage::open(&settings.data_dir)?.create_accounts(&accounts)?;
            eprintln!("{name}: created {} accounts", accounts.len());
            Ok(())
        }
        Command::Passwd(jid) => {
            let account = served_account(&settings, &jid)?;
            let credentials = new_credentials(&settings, &read_password()?)?;
            SqliteStorage::open(&settings.data_dir)?.set_credentials(&account, &credentials)?;
            eprintln!(
                "{name}: password changed for {}@{}",
                account.username, account.domain
            );
            end_live_sessions(name, &settings, &account, Reason::PasswordChanged);
            Ok(())
        }
        Command::DelUser(jid) => {
            let account = served_account(&settings, &jid)?;
            SqliteStorage::open(&settings.data_dir)?.delete_account(&account)?;
            eprintln!("{name}: deleted {}@{}", account.username, account.domain);
            end_live_sessions(name, &settings, &account, Reason::Deleted);
            Ok(())
        }
    }
}

/// A running server ends the account's sessions (see [`crate::admin`]).
fn end_live_sessions(name: &str, settings: &Settings, account: &Account, reason: Reason) {
    let jid = format!("{}@{}", account.username, account.domain);
    if crate::admin::end_sessions(&settings.data_dir, &jid, reason) {
        eprintln!("{name}: the running server ended {jid}'s sessions");
    }
}

fn served_account(settings: &Settings, jid: &str) -> Result<Account> {
    let account = Account::parse(jid)?;
    if !settings.core.serves(&account.domain) {
        bail!(
            "{} is not a served domain (domains = {:?})",
            account.domain,
            settings.core.domains
        );
    }
    Ok(account)
}

/// Derive credentials with a fresh random salt.
pub fn new_credentials(settings: &Settings, password: &str) -> Result<StoredCredentials> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).context("reading the OS random number generator")?;
    Ok(StoredCredentials::derive(
        password,
        &salt,
        settings.core.scram_iterations,
    )?)
}

/// Parse `JID PASSWORD` lines (blank lines and `#` comments skipped; the
/// password is the rest of the line, so it may hold spaces) and derive each
/// account's credentials with its own salt. Every line is checked before
/// anything is written, so a typo on line 19,999 costs nothing.
///
/// PBKDF2 dominates (two hashes per account), so it runs on every core.
fn batch_accounts(settings: &Settings, input: &str) -> Result<Vec<(Account, StoredCredentials)>> {
    let mut seen = std::collections::HashSet::new();
    let mut lines = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let context = || format!("stdin line {}", number + 1);
        let (jid, password) = line
            .trim_start()
            .split_once([' ', '\t'])
            .with_context(|| format!("{}: expected `JID PASSWORD`", context()))?;
        let password = password.trim_start_matches([' ', '\t']);
        if password.is_empty() {
            bail!("{}: no password for {jid}", context());
        }
        let account = served_account(settings, jid).with_context(context)?;
        if !seen.insert((account.domain.clone(), account.username.clone())) {
            bail!("{}: {jid} appears twice", context());
        }
        lines.push((account, password));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = lines.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(account, password)| {
                            Ok((account.clone(), new_credentials(settings, password)?))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut accounts = Vec::with_capacity(lines.len());
        for worker in workers {
            accounts.extend(
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a key derivation thread panicked"))??,
            );
        }
        Ok(accounts)
    })
}

fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn no_arguments_serves_with_defaults() {
        assert_eq!(
            args("").unwrap(),
            Args {
                command: Command::Serve,
                config: None
            }
        );
    }

    #[test]
    fn config_may_come_before_or_after_the_command() {
        let expected = Args {
            command: Command::AddUser("a@b".into()),
            config: Some("x.toml".into()),
        };
        assert_eq!(args("adduser a@b --config x.toml").unwrap(), expected);
        assert_eq!(args("--config x.toml adduser a@b").unwrap(), expected);
    }

    #[test]
    fn batch_adduser_takes_no_jid() {
        assert_eq!(args("adduser --batch").unwrap().command, Command::AddUsers);
        assert!(args("adduser --batch a@b").is_err());
        assert!(args("passwd --batch").is_err());
    }

    fn settings() -> Settings {
        let mut settings = Settings::load(None).unwrap();
        settings.core.scram_iterations = 1;
        settings
    }

    #[test]
    fn batch_lines_give_prepared_accounts_with_their_own_salts() {
        let accounts = batch_accounts(
            &settings(),
            "# users\nJuliet@LocalHost  two words\n\nromeo@localhost\tpw\r\n",
        )
        .unwrap();
        let names: Vec<_> = accounts.iter().map(|(a, _)| a.username.as_str()).collect();
        assert_eq!(names, ["juliet", "romeo"]);
        assert_ne!(accounts[0].1.salt, accounts[1].1.salt);
        let expected = StoredCredentials::derive("two words", &accounts[0].1.salt, 1).unwrap();
        assert_eq!(accounts[0].1, expected);
    }

    #[test]
    fn batch_refuses_a_line_without_password_naming_it() {
        let error = batch_accounts(&settings(), "a@localhost pw\nb@localhost\n").unwrap_err();
        assert!(format!("{error:#}").contains("stdin line 2"), "{error:#}");
    }

    #[test]
    fn batch_refuses_a_duplicate_and_an_unserved_domain() {
        assert!(batch_accounts(&settings(), "a@localhost x\nA@localhost y\n").is_err());
        assert!(batch_accounts(&settings(), "a@example.org x\n").is_err());
    }

    #[test]
    fn password_on_the_command_line_is_refused() {
        assert!(args("adduser a@b secret").is_err());
    }
}
