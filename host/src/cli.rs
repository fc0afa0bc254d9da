//! The command line both binaries share, so that scripts can switch
//! runtimes by changing one word:
//!
//! ```text
//! rookery-smol [--config FILE]                 run the server
//! rookery-smol adduser JID [--config FILE]     create an account
//! rookery-smol passwd JID [--config FILE]      change its password
//! rookery-smol deluser JID [--config FILE]     delete it
//! ```
//!
//! Passwords are never taken from argv (it is visible to every user of the
//! machine): they are read as one line from stdin, or prompted for without
//! echo when stdin is a terminal.

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
    let mut words = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(args.next().context("--config needs a file")?))
            }
            "--help" | "-h" => words.insert(0, "help".to_owned()),
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
        ["adduser", jid] => Command::AddUser(jid.to_string()),
        ["passwd", jid] => Command::Passwd(jid.to_string()),
        ["deluser", jid] => Command::DelUser(jid.to_string()),
        other => bail!("unknown command {:?}; try --help", other.join(" ")),
    };
    Ok(Args { command, config })
}

fn usage(name: &str) -> String {
    format!(
        "usage:\n  {name} [--config FILE]              run the server\n  \
         {name} adduser JID [--config FILE]  create an account (password from stdin)\n  \
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
        Command::Passwd(jid) => {
            let account = served_account(&settings, &jid)?;
            let credentials = new_credentials(&settings, &read_password()?)?;
            SqliteStorage::open(&settings.data_dir)?.set_credentials(&account, &credentials)?;
            eprintln!(
                "{name}: password changed for {}@{}",
                account.username, account.domain
            );
            Ok(())
        }
        Command::DelUser(jid) => {
            let account = served_account(&settings, &jid)?;
            SqliteStorage::open(&settings.data_dir)?.delete_account(&account)?;
            eprintln!("{name}: deleted {}@{}", account.username, account.domain);
            Ok(())
        }
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
        settings.scram_iterations,
    )?)
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
    fn password_on_the_command_line_is_refused() {
        assert!(args("adduser a@b secret").is_err());
    }
}
