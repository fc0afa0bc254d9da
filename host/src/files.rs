//! Files only the server's user may read: the data directory, the
//! database, keys and the server secret. They hold SCRAM keys, rosters,
//! messages and private keys, so they are created owner-only, and opened
//! without following a symbolic link (someone who can write the directory
//! must not redirect a key into a file of their choosing).

use anyhow::{Context, Result};
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Create `dir` (and its parents) owner-only if it is missing. An existing
/// directory keeps its mode; a readable one is reported.
pub fn private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        crate::log!(
            "warning: {} is open to other users (mode {:o}); chmod 700 it",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Make sure `path` exists and is owner-only, without following a link
/// and without touching its contents (SQLite's database file: SQLite gives
/// its `-wal` and `-shm` files the database's mode).
///
/// An existing file is changed by path, never opened: closing any
/// descriptor of a file drops every POSIX lock this process holds on it,
/// SQLite's included, and another storage connection may hold them.
pub fn private_file(path: &Path) -> Result<()> {
    match options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict_if_present(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// Restrict an existing file to its owner (a file created by an older
/// version, or by SQLite, with the umask's mode), by path: see
/// [`private_file`]. A symbolic link is refused, not followed.
pub fn restrict_if_present(path: &Path) -> Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if metadata.file_type().is_symlink() {
        anyhow::bail!("{} is a symbolic link; refusing to use it", path.display());
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
    }
    Ok(())
}

fn restrict(file: &File, path: &Path) -> Result<()> {
    file.set_permissions(Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to its owner", path.display()))
}

/// Write `data` to a new or replaced owner-only file.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    restrict(&file, path)?;
    file.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// The server secret in `<data_dir>/secret`: 32 random bytes, made on
/// first start. Stand-in SCRAM salts for missing users derive from it, so
/// it must outlive restarts (a changed salt would show the user is fake).
pub fn server_secret(data_dir: &Path) -> Result<[u8; 32]> {
    private_dir(data_dir)?;
    let path = data_dir.join("secret");
    let mut secret = [0u8; 32];
    match options().read(true).open(&path) {
        Ok(mut file) => {
            file.read_exact(&mut secret)
                .with_context(|| format!("reading {} (32 bytes expected)", path.display()))?;
            restrict(&file, &path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            getrandom::getrandom(&mut secret).context("reading the OS random number generator")?;
            let mut file = options()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&secret)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_data_dir_is_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/data");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn the_secret_is_made_once_owner_only_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = server_secret(dir.path()).unwrap();
        assert_eq!(mode(&dir.path().join("secret")), 0o600);
        assert_eq!(server_secret(dir.path()).unwrap(), first);
        assert_ne!(first, [0; 32]);
    }

    #[test]
    fn private_files_do_not_follow_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "someone else's").unwrap();
        let link = dir.path().join("key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_private(&link, b"secret key").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"someone else's");
        std::os::unix::fs::symlink(&target, dir.path().join("secret")).unwrap();
        assert!(server_secret(dir.path()).is_err());
    }

    #[test]
    fn a_database_behind_a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(private_file(&link).is_err());
    }

    #[test]
    fn an_existing_readable_file_is_restricted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        private_file(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
