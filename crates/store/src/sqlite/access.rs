//! Who may read and change the store's files. The database holds OAuth tokens and the jobs that
//! become DMs, so on unix:
//!
//! * the database file is created with mode 0600, and an existing one (with SQLite's `-wal` and
//!   `-shm` next to it) loses its group and other bits ([`owner_only`]);
//! * the directory is checked before anything is opened in it ([`check_location`]): a directory
//!   every user may write to (`o+w`, sticky bit or not) is **refused**, since anyone could put a
//!   database of their own (or a `-wal` file) in place of ours and have the bridge send its jobs
//!   as DMs; a group-writable directory and a database owned by another user are **warnings**
//!   (returned, logged at open, shown by `doctor`), not refusals: a private group (umask 002)
//!   and a container running as root on a volume owned by another uid are ordinary set-ups.
//!
//! Not unix: nothing is checked.

use std::path::{Path, PathBuf};

use crate::OpenError;

/// The directory that holds `path` (`.` for a bare file name).
pub(super) fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks the directory of the database `path` (it must exist; one writable by every user is
/// refused) and who owns the database; returns the warnings, each a sentence with its fix.
/// Only metadata calls: fine on any thread.
pub(super) fn check_location(path: &Path, location: &str) -> Result<Vec<String>, OpenError> {
    let dir = directory_of(path);
    if !dir.is_dir() {
        return Err(OpenError::MissingDirectory {
            location: location.to_owned(),
            directory: dir.display().to_string(),
        });
    }
    #[cfg(unix)]
    {
        unix::check(path, &dir, location)
    }
    #[cfg(not(unix))]
    {
        Ok(Vec::new())
    }
}

#[cfg(unix)]
mod unix {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    use crate::OpenError;

    pub(super) fn check(path: &Path, dir: &Path, location: &str) -> Result<Vec<String>, OpenError> {
        let mut warnings = Vec::new();
        let directory = dir.display().to_string();
        // Unreadable metadata of an existing directory: SQLite will say what is wrong.
        let Ok(meta) = std::fs::metadata(dir) else {
            return Ok(warnings);
        };
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(OpenError::UnsafeDirectory {
                location: location.to_owned(),
                directory,
            });
        }
        if mode & 0o020 != 0 {
            warnings.push(format!(
                "the directory {directory} of the SQLite store is writable by its group, whose \
                 members could replace the database: run `chmod g-w {directory}` or move the store \
                 to a directory of its own"
            ));
        }
        let me = rustix::process::geteuid().as_raw();
        if let Ok(file) = std::fs::metadata(path)
            && file.uid() != me
        {
            warnings.push(format!(
                "the SQLite store {location} is owned by user id {}, not by this process's user \
                 id {me}: run xdm-connect as the file's owner, or `chown` the file (and its \
                 directory) to the user that runs it",
                file.uid()
            ));
        }
        Ok(warnings)
    }
}

/// Makes the database file readable and writable by its owner only (it holds tokens): a new
/// file is created with mode 0600 before SQLite opens it, and an existing one (with its `-wal`
/// and `-shm` files) loses any group and other permission bits. SQLite creates its `-wal` and
/// `-shm` files with the mode of the database file, so they follow. A mode that cannot be
/// changed is a warning, not an error. Not unix: nothing to do.
pub(super) fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::fs::OpenOptions;
        use std::io::ErrorKind;
        use std::os::unix::fs::OpenOptionsExt;

        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            // An empty file is a new database to SQLite.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            tighten(&file)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Removes the group and other bits of an existing `file` (a missing one is fine). Not fatal
/// when the mode cannot be changed: a file of another owner cannot be, and refusing to start
/// would not protect it either.
#[cfg(unix)]
pub(super) fn tighten(file: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    use std::os::unix::fs::PermissionsExt;

    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o7700)) {
        Ok(()) => tracing::info!(file = %file.display(),
            "SQLite store file made readable by its owner only"),
        Err(e) => tracing::warn!(file = %file.display(), error = %e,
            "the SQLite store file is readable by others and its mode cannot be changed"),
    }
    Ok(())
}
