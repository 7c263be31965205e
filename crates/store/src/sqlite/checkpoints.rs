//! When the write-ahead log is copied back into the database file, and on which connection.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, on the
//! committing connection, and syncs the log and the database file (milliseconds, tens at
//! worst). Since commits may run on the caller's (async) thread ([`Worker`](super::worker::Worker)),
//! and every other store call waits while the one connection is busy, the store replaces it: a
//! WAL hook on the store's connection notes that the log has grown past [`CHECKPOINT_PAGES`]
//! (SQLite's default threshold), and a **second connection on its own thread** (`xdm-sqlite-wal`)
//! runs the checkpoint (`PASSIVE`, as the automatic one). In WAL mode a checkpoint by another
//! connection takes no lock a writer needs, so commits (webhook acceptances) go on appending to
//! the log while the checkpoint copies and syncs: a checkpoint no longer stalls every call
//! behind it (measured in docs/performance.md, "Checkpoints on their own connection").
//!
//! The log starts over from its beginning only when a writer finds it copied back entirely; under
//! sustained writes a passive checkpoint never catches up with the commits made while it runs,
//! and the log would grow without bound (measured: past 1 GB in 15 s of 15,000 acceptances a
//! second). So once it holds [`RESTART_PAGES`], the checkpointer runs `RESTART` instead: it
//! waits for the writer of the moment, holds new writes back while it copies the rest (those of
//! the store's connection queue to the store thread, which waits up to the busy timeout), and
//! lets the next commit start the log over. That stall, the old behaviour, happens only then.
//!
//! A database in memory has no log and no checkpointer.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::OpenError;

/// Pages in the log after which a checkpoint is due (SQLite's `wal_autocheckpoint` default).
const CHECKPOINT_PAGES: i32 = 1000;

/// Pages in the log (16 MB of 4 KiB pages) after which the checkpoint makes the log start over
/// (`RESTART`), holding writes back while it finishes.
const RESTART_PAGES: i32 = 4 * CHECKPOINT_PAGES;

/// How long a `RESTART` checkpoint waits for the writer of the moment (then it copies what it
/// can and tries again after the next commits).
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What the hook tells the checkpointer's thread.
#[derive(Debug, Default)]
struct State {
    /// Pages in the log at the last commit that made a checkpoint due; 0: none due.
    due_pages: i32,
    stop: bool,
}

#[derive(Debug, Default)]
struct Signal {
    state: Mutex<State>,
    wake: Condvar,
}

impl Signal {
    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state);
        self.wake.notify_one();
    }
}

/// The checkpointing connection and its thread. Stopped (and its connection closed) when
/// dropped, before the store's own connection closes: that last close checkpoints what is left
/// and removes the log, as before.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// For a file in WAL mode: opens a second connection to it, starts its thread, and installs
    /// on `conn` (the store's connection) the hook that wakes it. `None` for a database in
    /// memory or not in WAL mode (then SQLite's automatic checkpoint stays, which a rollback
    /// journal does not use anyway).
    pub(crate) fn start(conn: &mut Connection, location: &str) -> Result<Option<Self>, OpenError> {
        let sqlite = |source| OpenError::Sqlite {
            location: location.to_owned(),
            source,
        };
        let Some(path) = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from) else {
            return Ok(None);
        };
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        // The file exists and has been checked and migrated by the store's connection; this
        // one only checkpoints. It must not create anything.
        let own = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        // It reads no tables: a small page cache. The log is truncated to this size after a
        // checkpoint (as the store's connection does).
        own.execute_batch("PRAGMA cache_size = -256; PRAGMA journal_size_limit = 67108864;")
            .map_err(sqlite)?;
        own.busy_timeout(RESTART_WAIT).map_err(sqlite)?;
        let signal = Arc::new(Signal::default());
        let thread_signal = Arc::clone(&signal);
        let thread_location = location.to_owned();
        let thread = std::thread::Builder::new()
            .name("xdm-sqlite-wal".into())
            .spawn(move || checkpoint_when_due(&own, &thread_signal, &thread_location))
            .map_err(|source| OpenError::Thread {
                location: location.to_owned(),
                source,
            })?;
        let hook_signal = Arc::clone(&signal);
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_PAGES {
                hook_signal.update(|s| s.due_pages = s.due_pages.max(pages));
            }
            Ok(())
        }))
        .map_err(sqlite)?;
        Ok(Some(Self {
            signal,
            thread: Some(thread),
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.update(|s| s.stop = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The checkpointer's thread: waits for the hook, checkpoints, until stopped.
fn checkpoint_when_due(conn: &Connection, signal: &Signal, location: &str) {
    loop {
        let mut state = signal.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.due_pages == 0 && !state.stop {
            state = signal
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.stop {
            return;
        }
        let pages = std::mem::take(&mut state.due_pages);
        drop(state);
        run(conn, location, pages >= RESTART_PAGES);
    }
}

/// Copies the log back into the database file as far as readers allow (`PASSIVE`: it never
/// waits for a lock), or all of it with the log started over at the next commit (`RESTART`).
fn run(conn: &Connection, location: &str, restart: bool) {
    let sql = if restart {
        "PRAGMA wal_checkpoint(RESTART)"
    } else {
        "PRAGMA wal_checkpoint(PASSIVE)"
    };
    match conn.query_row(sql, [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    }) {
        Ok((log, copied)) => {
            tracing::debug!(
                location,
                restart,
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
