//! The running server's admin socket, `<data_dir>/admin.sock`: how the
//! command line tells it that an account was deleted or its password
//! changed, so that the account's live sessions end at once instead of
//! outliving the credentials they logged in with. A Unix socket in the
//! owner-only data dir, itself owner-only: only the server's user can
//! reach it.
//!
//! One line per connection: `end-sessions <bare JID> <reason>`; the
//! server answers `ok`.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Why an account's sessions end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Deleted,
    PasswordChanged,
}

impl Reason {
    fn word(self) -> &'static str {
        match self {
            Reason::Deleted => "deleted",
            Reason::PasswordChanged => "password-changed",
        }
    }

    fn parse(word: &str) -> Option<Reason> {
        match word {
            "deleted" => Some(Reason::Deleted),
            "password-changed" => Some(Reason::PasswordChanged),
            _ => None,
        }
    }

    /// The text of the stream error the sessions get.
    pub fn text(self) -> &'static str {
        match self {
            Reason::Deleted => "account deleted",
            Reason::PasswordChanged => "password changed",
        }
    }
}

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Listen on the admin socket; `end_sessions` is called, on a thread of
/// its own, for each account whose sessions must end.
pub fn listen(
    data_dir: &Path,
    end_sessions: impl Fn(jid::BareJid, Reason) + Send + 'static,
) -> Result<()> {
    crate::files::private_dir(data_dir)?;
    let path = socket_path(data_dir);
    // A socket left by a server that did not stop cleanly.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some((jid, reason)) = read_command(&stream) {
                    end_sessions(jid, reason);
                    let _ = (&stream).write_all(b"ok\n");
                }
            }
        })?;
    Ok(())
}

fn read_command(stream: &UnixStream) -> Option<(jid::BareJid, Reason)> {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut line = String::new();
    BufReader::new(stream.take(1024))
        .read_line(&mut line)
        .ok()?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("end-sessions"), Some(jid), Some(reason)) => {
            Some((jid.parse().ok()?, Reason::parse(reason)?))
        }
        _ => None,
    }
}

/// Tell a running server to end `jid`'s sessions; `false` if no server
/// is running on `data_dir`.
pub fn end_sessions(data_dir: &Path, jid: &str, reason: Reason) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket_path(data_dir)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let command = format!("end-sessions {jid} {}\n", reason.word());
    if stream.write_all(command.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).is_ok() && answer == "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_reaches_the_server_and_the_socket_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        listen(dir.path(), move |jid, reason| {
            let _ = tx.lock().unwrap().send((jid, reason));
        })
        .unwrap();
        let mode = std::fs::metadata(dir.path().join("admin.sock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(end_sessions(
            dir.path(),
            "juliet@localhost",
            Reason::Deleted
        ));
        let (jid, reason) = rx.recv().unwrap();
        assert_eq!(jid.as_str(), "juliet@localhost");
        assert_eq!(reason, Reason::Deleted);
    }

    #[test]
    fn without_a_server_nothing_is_told() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!end_sessions(
            dir.path(),
            "juliet@localhost",
            Reason::Deleted
        ));
    }
}
