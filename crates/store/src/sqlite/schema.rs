//! Opening a connection: pragmas, then forward-only migrations tracked by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::options::{SqliteOptions, Synchronous};
use crate::OpenError;

/// Embedded migrations; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
/// Forward only: a shipped migration is never edited, the next one is appended.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_first_claimed_at.sql"),
    include_str!("migrations/0003_records.sql"),
];

/// The schema version (`PRAGMA user_version`) this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Target<'a> {
    File(&'a Path),
    Memory,
}

/// Opens, configures and migrates a connection. Runs on the store thread.
pub(crate) fn open_connection(
    target: Target<'_>,
    location: &str,
    options: &SqliteOptions,
) -> Result<Connection, OpenError> {
    let sqlite = |source: rusqlite::Error| OpenError::Sqlite {
        location: location.to_owned(),
        source,
    };
    // No SQLITE_OPEN_URI: the path is a file name, never a `file:` URI with options.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if let Target::File(path) = target {
        owner_only(path).map_err(|source| OpenError::Permissions {
            location: location.to_owned(),
            source,
        })?;
    }
    let conn = match target {
        Target::File(path) => Connection::open_with_flags(path, flags),
        Target::Memory => Connection::open_in_memory_with_flags(flags),
    }
    .map_err(sqlite)?;

    conn.busy_timeout(options.busy_timeout).map_err(sqlite)?;
    // WAL: readers never block the writer, and a commit is one append to the log.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite)?;
    if matches!(target, Target::File(_)) && !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%location, journal_mode = %mode,
            "the SQLite store could not switch to WAL (unsupported file system?); commits stay durable but slower");
    }
    let synchronous = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(sqlite)?;
    // Nothing references another table: no foreign keys (and none of their per-write cost).
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(sqlite)?;
    // Keep the WAL file from staying large after a burst (it is truncated at checkpoints).
    conn.pragma_update(None, "journal_size_limit", 64_i64 * 1024 * 1024)
        .map_err(sqlite)?;
    conn.set_prepared_statement_cache_capacity(64);

    migrate(conn, location)
}

/// Makes the database file readable and writable by its owner only (it holds tokens): a new
/// file is created with mode 0600 before SQLite opens it, and an existing one (with its `-wal`
/// and `-shm` files) loses any group and other permission bits. SQLite creates its `-wal` and
/// `-shm` files with the mode of the database file, so they follow. A mode that cannot be
/// changed is a warning, not an error. Not unix: nothing to do.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::fs::OpenOptions;
        use std::io::ErrorKind;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

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
            let meta = match std::fs::metadata(&file) {
                Ok(meta) => meta,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 == 0 {
                continue;
            }
            // Not fatal: a file of another owner cannot be changed, and refusing to start
            // would not protect it either.
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o7700)) {
                Ok(()) => tracing::info!(file = %file.display(),
                    "SQLite store file made readable by its owner only"),
                Err(e) => tracing::warn!(file = %file.display(), error = %e,
                    "the SQLite store file is readable by others and its mode cannot be changed"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per migration.
fn migrate(mut conn: Connection, location: &str) -> Result<Connection, OpenError> {
    let sqlite = |source: rusqlite::Error| OpenError::Sqlite {
        location: location.to_owned(),
        source,
    };
    // Reading the header is also the first real access: a file that is not a database fails here.
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let migration = |source: rusqlite::Error| OpenError::Migration {
            location: location.to_owned(),
            version,
            source,
        };
        // IMMEDIATE takes the write lock first, so two processes opening a new file at once
        // migrate one after the other; the version is read again under that lock.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migration)?;
        let current: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(migration)?;
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(migration)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migration)?;
        tx.commit().map_err(migration)?;
        tracing::info!(%location, version, "SQLite store schema migrated");
    }
    Ok(conn)
}
