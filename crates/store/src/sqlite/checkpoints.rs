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
//! second). So once it holds [`RESTART_PAGES`], the checkpointer runs a passive checkpoint and
//! then `RESTART`: that one waits for the writer of the moment, holds new writes back while it
//! copies what came since the passive one and syncs (a few milliseconds), and lets the next commit
//! start the log over. Meanwhile an inline write queues to the store thread, which waits for the
//! lock in steps of 100 µs (`schema::wait_for_locks`: SQLite's own busy handler sleeps 1, 2,
//! 5 ms …, which made a 3 ms stall 8 ms).
//!
//! **How often.** Under sustained writes the log rarely starts over, so a log past
//! [`CHECKPOINT_PAGES`] made a checkpoint due at every commit, and the checkpointer ran one after
//! the other, each syncing the log and the database file: a quarter of the bridge's CPU at 10,000
//! acknowledgements a second. So a passive checkpoint is due only once the log has grown by
//! [`CHECKPOINT_PAGES`] since the last one started (or has started over and reached that size
//! again, as SQLite's own rule has it), and runs at most once per [`PASSIVE_INTERVAL`]: each copies
//! what a thousand frames wrote (mostly the same few pages again) with one pair of syncs. At a few
//! hundred DMs a second that is a checkpoint every few hundred milliseconds rather than every
//! 20 ms; at 10,000 acknowledgements a second about every 30 ms. Once commits pause for
//! [`PASSIVE_INTERVAL`], a log past [`CHECKPOINT_PAGES`] is copied back entirely whatever it grew
//! by since, so that the next commit starts it over. Measured in docs/performance.md,
//! "Checkpoints once per 20 ms" and "One index less, a checkpoint per thousand pages".
//!
//! **The bound holds without the checkpointer.** Its thread can be starved of CPU on a loaded
//! machine while commits go on; then no checkpoint runs and the log would grow. So once the log
//! holds [`BACKSTOP_PAGES`], the committing connection runs the `RESTART` itself, inside the
//! commit's WAL hook (as SQLite's automatic checkpoint does): that one commit's caller waits for
//! the copy. The log thus stays under [`BACKSTOP_PAGES`] plus one commit's pages whatever the
//! scheduler does (tested).
//!
//! A database in memory has no log and no checkpointer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, MAIN_DB, OpenFlags};

use super::schema::wait_for_locks;
use crate::OpenError;

/// Pages of log after which a checkpoint is due: written since the last checkpoint started, or
/// since the log started over (SQLite's `wal_autocheckpoint` default).
const CHECKPOINT_PAGES: i32 = 1000;

/// Pages in the log (32 MB of 4 KiB pages) after which the checkpoint makes the log start over
/// (`RESTART`), holding writes back while it finishes.
const RESTART_PAGES: i32 = 8 * CHECKPOINT_PAGES;

/// Pages in the log (64 MB) at which the committing connection runs the `RESTART` itself: the
/// checkpointer's thread has not (starved of CPU, or its `RESTART` kept failing).
const BACKSTOP_PAGES: i32 = 2 * RESTART_PAGES;

/// The least time between the end of a passive checkpoint and the start of the next.
const PASSIVE_INTERVAL: Duration = Duration::from_millis(20);

/// How long a `RESTART` checkpoint waits for the writer of the moment (then it copies what it
/// can and tries again after the next commits).
const RESTART_WAIT: Duration = Duration::from_secs(1);

/// What the hook tells the checkpointer's thread.
#[derive(Debug, Default)]
struct State {
    /// Pages in the log at the last commit that made a checkpoint due; 0: none due.
    due_pages: i32,
    /// What the thread waits for, if it waits.
    waiting: Waiting,
    stop: bool,
}

/// What the checkpointer's thread waits for. A wake-up is a system call on the committing thread
/// and a context switch, so the hook wakes it only when that changes what it does.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Nothing: it runs a checkpoint (and then looks at what fell due meanwhile).
    #[default]
    Not,
    /// A commit that makes a checkpoint due (or, with a log not copied back entirely, a pause of
    /// the commits for [`PASSIVE_INTERVAL`]).
    Commits,
    /// The end of [`PASSIVE_INTERVAL`] (or the log reaching [`RESTART_PAGES`]).
    Interval,
}

#[derive(Debug, Default)]
struct Signal {
    state: Mutex<State>,
    wake: Condvar,
    /// Pages in the log at the last commit (written by the hook, without taking the lock).
    last_commit: AtomicI32,
    /// [`last_commit`](Self::last_commit) as the last checkpoint started: the next is due
    /// [`CHECKPOINT_PAGES`] later, and once commits pause, the log past it is copied.
    checkpointed_at: AtomicI32,
    /// Passive checkpoints the thread has run (read by the tests).
    passive_runs: AtomicU64,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// A commit left `pages` in the log. A checkpoint is due once the log holds
    /// [`CHECKPOINT_PAGES`] written since the last checkpoint started, or that many since it
    /// started over (fewer pages than that checkpoint saw).
    fn committed(&self, pages: i32) {
        self.last_commit.store(pages, Ordering::Relaxed);
        let checkpointed = self.checkpointed_at.load(Ordering::Relaxed);
        let since = if pages < checkpointed {
            pages
        } else {
            pages - checkpointed
        };
        if since >= CHECKPOINT_PAGES || pages >= RESTART_PAGES {
            self.due(pages);
        }
    }

    /// A checkpoint is due with `pages` in the log. The thread is woken if it waits for commits,
    /// or waits out [`PASSIVE_INTERVAL`] and the log has reached [`RESTART_PAGES`].
    fn due(&self, pages: i32) {
        let mut state = self.lock();
        state.due_pages = state.due_pages.max(pages);
        let wake = match state.waiting {
            Waiting::Commits => true,
            Waiting::Interval => pages >= RESTART_PAGES,
            Waiting::Not => false,
        };
        drop(state);
        if wake {
            self.wake.notify_one();
        }
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
        let mut own = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        // It reads no tables: a small page cache. The log is truncated to this size after a
        // checkpoint (as the store's connection does).
        own.execute_batch("PRAGMA cache_size = -256; PRAGMA journal_size_limit = 67108864;")
            .map_err(sqlite)?;
        own.busy_handler(Some(wait_for_locks(RESTART_WAIT)))
            .map_err(sqlite)?;
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
        install_hook(conn, Arc::clone(&signal), location).map_err(sqlite)?;
        Ok(Some(Self {
            signal,
            thread: Some(thread),
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Installs on the store's connection the WAL hook that runs after each commit: it tells the
/// checkpointer's thread when a checkpoint is due, and past [`BACKSTOP_PAGES`] runs the `RESTART`
/// on the committing connection itself.
fn install_hook(
    conn: &mut Connection,
    signal: Arc<Signal>,
    location: &str,
) -> rusqlite::Result<()> {
    let location = location.to_owned();
    conn.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        if pages >= BACKSTOP_PAGES && backstop(wal, pages, &location) {
            return Ok(());
        }
        signal.committed(pages);
        // An error here would fail the statement whose commit has already happened.
        Ok(())
    }))
}

/// The log has reached [`BACKSTOP_PAGES`]: copy it back and start it over from this connection.
/// Whether that was done.
fn backstop(wal: &mut Wal, pages: i32, location: &str) -> bool {
    match wal.checkpoint_v2(CheckpointMode::RESTART) {
        Ok((log, copied)) => {
            tracing::info!(
                location,
                log_pages = log,
                copied_pages = copied,
                "WAL checkpoint run by the committing connection: the checkpointer fell behind"
            );
            true
        }
        // Busy: the checkpointer is running one now, or a reader holds the log; the next commit
        // tries again.
        Err(e) => {
            tracing::debug!(location, pages, error = %e, "WAL checkpoint by the committing connection did not run");
            false
        }
    }
}

/// The checkpointer's thread: waits until a checkpoint is due (a passive one also until
/// [`PASSIVE_INTERVAL`] has passed since the last), runs it, until stopped.
fn checkpoint_when_due(conn: &Connection, signal: &Signal, location: &str) {
    let mut last_passive: Option<Instant> = None;
    loop {
        let mut state = signal.lock();
        loop {
            if state.stop {
                return;
            }
            if state.due_pages >= RESTART_PAGES {
                break;
            }
            if state.due_pages == 0 {
                state = wait_for_commits(signal, state);
                continue;
            }
            let wait = last_passive.map_or(Duration::ZERO, |at| {
                (at + PASSIVE_INTERVAL).saturating_duration_since(Instant::now())
            });
            if wait.is_zero() {
                break;
            }
            state.waiting = Waiting::Interval;
            state = signal
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.waiting = Waiting::Not;
        let pages = std::mem::take(&mut state.due_pages);
        drop(state);
        // The next is due a thousand pages on, even if this one cannot copy everything (a
        // reader holds an old snapshot).
        signal.checkpointed_at.store(
            signal.last_commit.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        // A passive checkpoint first in either case: before a `RESTART` it copies most of the
        // log without holding writes back, so that the `RESTART`, which does, copies only what
        // came since.
        run(conn, location, CheckpointMode::PASSIVE);
        signal.passive_runs.fetch_add(1, Ordering::Relaxed);
        if pages >= RESTART_PAGES && run(conn, location, CheckpointMode::RESTART) {
            // The commits that noted a checkpoint due meanwhile are copied: the `RESTART` held
            // writes back while it copied. The next commit starts the log over.
            signal.lock().due_pages = 0;
        }
        last_passive = Some(Instant::now());
    }
}

/// Nothing is due: waits until a commit makes a checkpoint due. A log past [`CHECKPOINT_PAGES`]
/// holding commits made since the last checkpoint started (too few to make the next one due) is
/// made due once the commits pause for [`PASSIVE_INTERVAL`], so that it is copied back entirely
/// and the next commit starts it over.
fn wait_for_commits<'a>(
    signal: &'a Signal,
    mut state: MutexGuard<'a, State>,
) -> MutexGuard<'a, State> {
    state.waiting = Waiting::Commits;
    let last = signal.last_commit.load(Ordering::Relaxed);
    if last < CHECKPOINT_PAGES || last == signal.checkpointed_at.load(Ordering::Relaxed) {
        return signal
            .wake
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
    let (mut state, waited) = signal
        .wake
        .wait_timeout(state, PASSIVE_INTERVAL)
        .unwrap_or_else(PoisonError::into_inner);
    if waited.timed_out()
        && state.due_pages == 0
        && signal.last_commit.load(Ordering::Relaxed) == last
    {
        state.due_pages = last;
    }
    state
}

/// Copies the log back into the database file as far as `mode` asks: `PASSIVE`, as far as
/// readers allow without waiting for a lock; `RESTART`, all of it, waiting for the writer of the
/// moment and holding new writes back meanwhile, so that the next commit starts the log over.
/// Whether it did all that.
fn run(conn: &Connection, location: &str, mode: CheckpointMode) -> bool {
    let restart = matches!(mode, CheckpointMode::RESTART);
    match conn.wal_checkpoint_v2(Some(MAIN_DB), mode) {
        Ok((log, copied)) => {
            tracing::debug!(
                location,
                restart,
                log_pages = log,
                copied_pages = copied,
                "WAL checkpoint"
            );
            true
        }
        // A `RESTART` that could not take the locks in time copied what it could.
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
            tracing::debug!(location, restart, "WAL checkpoint did not finish: busy");
            false
        }
        Err(e) => {
            tracing::warn!(location, error = %e, "WAL checkpoint failed; tried again after the next commits");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A connection to a new file in WAL mode, syncing as the store's does.
    fn wal_file(dir: &std::path::Path) -> Connection {
        let conn = Connection::open(dir.join("wal.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             CREATE TABLE pad (x INTEGER PRIMARY KEY, v BLOB);",
        )
        .unwrap();
        conn
    }

    /// A commit of ~10 pages (a row with overflow pages).
    fn commit_ten_pages(conn: &Connection, i: i64) {
        conn.execute("INSERT INTO pad (x, v) VALUES (?1, zeroblob(40000))", [i])
            .unwrap();
    }

    /// Bytes of a frame in the log: a page and its 24-byte header.
    fn frame_bytes(conn: &Connection) -> u64 {
        let page: u32 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        u64::from(page) + 24
    }

    /// The most bytes the log may hold: [`BACKSTOP_PAGES`] and one commit's pages (fewer than
    /// 20 here), after the log's 32-byte header.
    fn log_bound(conn: &Connection) -> u64 {
        (u64::try_from(BACKSTOP_PAGES).unwrap() + 20) * frame_bytes(conn) + 32
    }

    /// Waits (up to 10 s) until the checkpointer has run a passive checkpoint; how many it ran.
    fn passive_runs_after_the_first(checkpointer: &Checkpointer) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let runs = checkpointer.signal.passive_runs.load(Ordering::Relaxed);
            if runs > 0 || Instant::now() >= deadline {
                return runs;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_bytes(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("wal.db-wal")).unwrap().len()
    }

    /// With no checkpointer running at all (its thread starved), the committing connection
    /// itself keeps the log under the backstop: commits of ~20,000 pages in all leave a log of
    /// at most [`BACKSTOP_PAGES`] and one commit's pages.
    #[test]
    fn the_log_stays_bounded_when_the_checkpointer_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = wal_file(dir.path());
        install_hook(&mut conn, Arc::new(Signal::default()), "test").unwrap();
        for i in 0..2000_i64 {
            commit_ten_pages(&conn, i);
        }
        let bound = log_bound(&conn);
        let log = log_bytes(dir.path());
        assert!(
            log <= bound,
            "the log grew to {log} bytes, past the backstop's {bound}"
        );
    }

    /// While the log cannot start over (a reader holds an old snapshot), a passive checkpoint is
    /// due once per [`CHECKPOINT_PAGES`] written, not after every commit past that size: ~3,000
    /// pages in 300 commits spaced a millisecond apart make at most five, where a checkpoint after
    /// every commit once per [`PASSIVE_INTERVAL`] made fifteen or more.
    #[test]
    fn a_passive_checkpoint_is_due_once_per_thousand_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = wal_file(dir.path());
        let checkpointer = Checkpointer::start(&mut conn, "test").unwrap().unwrap();
        commit_ten_pages(&conn, 0);
        let reader = Connection::open(dir.path().join("wal.db")).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM pad;")
            .unwrap();
        for i in 1..=300_i64 {
            commit_ten_pages(&conn, i);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(PASSIVE_INTERVAL * 2);
        // The log cannot have started over: its file holds every frame since the first.
        let pages = i32::try_from((log_bytes(dir.path()) - 32) / frame_bytes(&conn)).unwrap();
        let runs = checkpointer.signal.passive_runs.load(Ordering::Relaxed);
        drop(checkpointer);
        reader.execute_batch("COMMIT").unwrap();
        assert!(
            pages >= 2 * CHECKPOINT_PAGES,
            "the log reached only {pages} pages"
        );
        let allowed = u64::try_from(pages / CHECKPOINT_PAGES).unwrap() + 2;
        assert!(
            (1..=allowed).contains(&runs),
            "{runs} passive checkpoints for a log of {pages} pages"
        );
    }

    /// Once commits pause for [`PASSIVE_INTERVAL`], a log past [`CHECKPOINT_PAGES`] is copied
    /// back entirely, though the commits since the last checkpoint are too few to make the next
    /// one due: the next commit starts the log over rather than leaving it to grow until a
    /// thousand more pages come.
    #[test]
    fn the_log_is_copied_once_commits_pause() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = wal_file(dir.path());
        let checkpointer = Checkpointer::start(&mut conn, "test").unwrap().unwrap();
        // ~1,100 pages: a checkpoint falls due at 1,000 and runs while the last commits go on.
        for i in 0..110 {
            commit_ten_pages(&conn, i);
        }
        assert!(
            passive_runs_after_the_first(&checkpointer) > 0,
            "no checkpoint ran"
        );
        std::thread::sleep(PASSIVE_INTERVAL * 5);
        commit_ten_pages(&conn, 110);
        let log: i32 = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap();
        drop(checkpointer);
        assert!(
            log < CHECKPOINT_PAGES,
            "the log holds {log} pages: what came after the last checkpoint was not copied"
        );
    }

    /// Under commits one after the other, passive checkpoints run at most once per
    /// [`PASSIVE_INTERVAL`] (not after every commit), and the log stays bounded.
    #[test]
    fn passive_checkpoints_are_spaced_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = wal_file(dir.path());
        let checkpointer = Checkpointer::start(&mut conn, "test").unwrap().unwrap();
        // A page or more per commit: past CHECKPOINT_PAGES after the first thousand or so, then
        // every commit finds a checkpoint due.
        let started = Instant::now();
        for i in 0..3000_i64 {
            conn.execute("INSERT INTO pad (x, v) VALUES (?1, zeroblob(3000))", [i])
                .unwrap();
        }
        // The checkpoint due at the end runs once the thread gets the CPU.
        let runs = passive_runs_after_the_first(&checkpointer);
        let elapsed = started.elapsed();
        drop(checkpointer);
        let allowed = elapsed.as_millis() / PASSIVE_INTERVAL.as_millis() + 2;
        assert!(
            u128::from(runs) <= allowed,
            "{runs} passive checkpoints in {elapsed:?}: more than one per {PASSIVE_INTERVAL:?}"
        );
        assert!(runs >= 1, "no passive checkpoint ran");
        assert!(log_bytes(dir.path()) <= log_bound(&conn));
    }
}
