//! Opening a connection: pragmas, the integrity check, then forward-only migrations tracked by
//! `PRAGMA user_version`.
//!
//! * **Integrity**: a file's b-trees are checked at every open (`PRAGMA quick_check`) before
//!   anything is written to it, so a damaged page stops `serve` at start (and fails `doctor`'s
//!   store check) instead of surfacing later as failing reads. It reads the whole file, once
//!   (sequentially first, `read_ahead`): about 2 s per GB from a cold cache, 0.5 s from a warm
//!   one; docs/setup.md ("A damaged SQLite store") has the measurement and the recovery.
//! * **Migrations** take the write lock only when one is due: the version is read first, and
//!   only a file older than this build begins an IMMEDIATE transaction, reading the version
//!   again under the lock (two processes opening a new file migrate one after the other). So
//!   opening a current file next to a process that holds the write lock just works, and a
//!   migration that cannot get the lock says that another process holds it
//!   ([`OpenError::Busy`]).

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::access::owner_only;
use super::options::{SqliteOptions, Synchronous};
use crate::OpenError;

/// The most problems `quick_check` reports (it stops looking after that many; a healthy file
/// costs the same whatever the limit).
const INTEGRITY_PROBLEMS: u32 = 10;

/// Embedded migrations; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
/// Forward only: a shipped migration is never edited, the next one is appended.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_first_claimed_at.sql"),
    include_str!("migrations/0003_records.sql"),
    include_str!("migrations/0004_failed_jobs_index.sql"),
    include_str!("migrations/0005_lane_order_in_memory.sql"),
];

/// The schema version (`PRAGMA user_version`) this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a try for a lock held by another connection waits before the next, for the first
/// [`FINE_WAITS_FOR`] of a wait; after that, a millisecond.
const FINE_WAIT: Duration = Duration::from_micros(100);
const FINE_WAITS_FOR: Duration = Duration::from_millis(10);

thread_local! {
    /// Set while a call on this thread must not wait for a lock at all ([`without_waiting`]).
    static NO_WAIT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (SQL on a connection with [`wait_for_locks`]) so that a lock another connection holds
/// fails it at once (busy) instead of waiting: an inline write's `BEGIN` on an async thread, which
/// is queued to the store thread instead (`worker.rs`).
pub(crate) fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            NO_WAIT.with(|no_wait| no_wait.set(false));
        }
    }
    NO_WAIT.with(|no_wait| no_wait.set(true));
    let _reset = Reset;
    f()
}

/// A connection's busy handler: how a call waits for a lock another connection holds — mostly
/// the checkpointer's `RESTART`, which holds writes back for a few milliseconds
/// (`checkpoints.rs`), or a second process. SQLite's own `busy_timeout` sleeps 1, 2, 5, 10, 15 ms
/// … between tries, so a write held up for 3 ms went on after 8 (the acknowledgement's p99 at
/// 10,000/s, docs/performance.md "Checkpoints once per 20 ms"); this one tries again every
/// [`FINE_WAIT`] for the first [`FINE_WAITS_FOR`], then every millisecond, and gives up (busy)
/// after `timeout` in all — at once inside [`without_waiting`].
pub(crate) fn wait_for_locks(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |tries| {
        if NO_WAIT.with(Cell::get) {
            return false;
        }
        if tries == 0 {
            since = Instant::now();
        }
        let waited = since.elapsed();
        let Some(left) = timeout.checked_sub(waited).filter(|left| !left.is_zero()) else {
            return false;
        };
        let pause = if waited < FINE_WAITS_FOR {
            FINE_WAIT
        } else {
            Duration::from_millis(1)
        };
        std::thread::sleep(pause.min(left));
        true
    }
}

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
    let sqlite = |source: rusqlite::Error| sqlite_error(location, source);
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
    let mut conn = match target {
        Target::File(path) => Connection::open_with_flags(path, flags),
        Target::Memory => Connection::open_in_memory_with_flags(flags),
    }
    .map_err(sqlite)?;

    conn.busy_handler(Some(wait_for_locks(options.busy_timeout)))
        .map_err(sqlite)?;
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
    // Temporary b-trees (a lane-head query's sort) and, above all, the journal that undoes a
    // statement or a savepoint inside a transaction stay in memory, in 1 KiB pieces. By default
    // that journal is a 64 KiB buffer allocated afresh for every statement and savepoint that
    // writes (SQLite's statement-journal spill size): three per DM, 70 % of the bytes the bridge
    // allocated (docs/performance.md, "Deferred writes").
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sqlite)?;
    conn.set_prepared_statement_cache_capacity(64);
    // The bundled SQLite is built with STAT4, so a cached statement whose plan could depend on
    // its bound values (the lane-head query) was planned again on every call. The query planner
    // stability guarantee keeps the plan of the first preparation; every statement of the store
    // is an index lookup whose plan does not depend on the values (the query-plan tests pin
    // them). Measured in docs/performance.md, "Store calls".
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sqlite)?;

    if let Target::File(path) = target {
        read_ahead(path);
        check_integrity(&conn, location)?;
    }
    migrate(conn, location)
}

/// An error of opening: a damaged file (SQLITE_CORRUPT, whatever step meets it) is
/// [`OpenError::Corrupt`], with the recovery in its message; anything else (not a database at
/// all, I/O, permissions) is [`OpenError::Sqlite`].
fn sqlite_error(location: &str, source: rusqlite::Error) -> OpenError {
    if source.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) {
        OpenError::Corrupt {
            location: location.to_owned(),
            problems: source.to_string(),
        }
    } else {
        OpenError::Sqlite {
            location: location.to_owned(),
            source,
        }
    }
}

/// Reads the file once, front to back, into the OS page cache. `quick_check` visits pages in
/// b-tree order, which on a cold cache is a random read per page: measured on a 1.1 GB file,
/// 15.9 s cold, against 1.5 s for this sequential read plus 0.5 s for the check (docs/setup.md).
/// Errors are ignored: the check that follows meets them.
fn read_ahead(path: &Path) {
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = std::io::copy(&mut file, &mut std::io::sink());
    }
}

/// `PRAGMA quick_check`: the structure of every b-tree page (not that indexes match their
/// tables; `integrity_check` does that too, at about three times the cost). Anything but `ok`, or
/// an error reading the file, is [`OpenError::Corrupt`]; nothing has been written by then.
fn check_integrity(conn: &Connection, location: &str) -> Result<(), OpenError> {
    let corrupt = |problems: String| OpenError::Corrupt {
        location: location.to_owned(),
        problems,
    };
    let started = Instant::now();
    let rows = conn
        .prepare(&format!("PRAGMA quick_check({INTEGRITY_PROBLEMS})"))
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<String>, _>>()
        });
    let rows = rows.map_err(|source| sqlite_error(location, source))?;
    if rows.len() != 1 || rows[0] != "ok" {
        return Err(corrupt(summary(&rows)));
    }
    tracing::debug!(%location, elapsed_ms = started.elapsed().as_millis() as u64, "SQLite store integrity checked");
    Ok(())
}

/// The first problems `quick_check` reported, on one line (a row may hold several lines).
fn summary(rows: &[String]) -> String {
    const SHOWN: usize = 3;
    let problems: Vec<&str> = rows
        .iter()
        .flat_map(|row| row.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("*** in database"))
        .collect();
    let mut text = problems
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    text
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per migration; takes the write
/// lock only when a migration is due.
fn migrate(mut conn: Connection, location: &str) -> Result<Connection, OpenError> {
    let sqlite = |source: rusqlite::Error| sqlite_error(location, source);
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
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let migration = |source: rusqlite::Error| {
            if matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) {
                OpenError::Busy {
                    location: location.to_owned(),
                    version,
                }
            } else {
                OpenError::Migration {
                    location: location.to_owned(),
                    version,
                    source,
                }
            }
        };
        // IMMEDIATE takes the write lock first, so two processes opening an old file migrate
        // one after the other; the version is read again under that lock.
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
