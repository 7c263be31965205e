//! When the write-ahead log is copied back into the database file, and on which thread.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, on the
//! committing thread, and syncs the log and the database file (milliseconds, tens at worst).
//! Since commits may run on the caller's (async) thread ([`Worker`](super::worker::Worker)),
//! the store replaces it: a WAL hook notes that the log has grown past [`CHECKPOINT_PAGES`]
//! (SQLite's default threshold), and the store thread runs the checkpoint (`PASSIVE`, as the
//! automatic one) — never a caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

/// Pages in the log after which a checkpoint is due (SQLite's `wal_autocheckpoint` default).
const CHECKPOINT_PAGES: i32 = 1000;

/// Shared between the connection's WAL hook (which raises it) and the store thread (which runs
/// the checkpoint and lowers it).
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckpointDue(Arc<AtomicBool>);

impl CheckpointDue {
    /// Installs the hook on `conn`, replacing SQLite's automatic checkpoint.
    pub(crate) fn watch(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let due = Arc::clone(&self.0);
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_PAGES {
                due.store(true, Ordering::Relaxed);
            }
            Ok(())
        }))
    }

    /// True once, when a checkpoint has become due since the last `take`.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }

    /// Marks it due again (the request to the store thread could not be queued).
    pub(crate) fn restore(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Copies the log back into the database file as far as readers allow (`PASSIVE`: it never
/// waits for a lock). Runs on the store thread.
pub(crate) fn run(conn: &Connection, location: &str) {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    }) {
        Ok((log, copied)) => {
            tracing::debug!(
                location,
                log_pages = log,
                copied_pages = copied,
                "WAL checkpoint"
            );
        }
        Err(e) => {
            tracing::warn!(location, error = %e, "WAL checkpoint failed; tried again after the next commits")
        }
    }
}
