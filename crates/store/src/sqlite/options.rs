//! The tuning of an SQLite store: how hard a commit is made durable, how long a write waits
//! for another connection's lock, how long a deferred write waits for its commit, and how long
//! a burst of webhook acceptances may wait for each other to share one.

use std::time::Duration;

/// How hard SQLite works to make a commit survive (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// Survives process crashes (including `kill -9`); a power loss or OS crash may roll back
    /// the last commits. No fsync per commit. The default.
    #[default]
    Normal,
    /// Also survives power loss: the WAL is synced on every commit.
    Full,
}

impl Synchronous {
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
        }
    }
}

/// Tuning of a [`SqliteStore`](super::SqliteStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a write waits for another connection's write lock before failing with
    /// `StoreError::Unavailable`.
    pub busy_timeout: Duration,
    /// The longest a deferred write (a job's outcome, a lease renewal, a claim the handler does
    /// not need on disk: see the `Store` port) waits for its commit when no other write commits
    /// it first. Zero commits every write on its own, as before deferral. Default 50 ms.
    pub deferred_commit_within: Duration,
    /// During a burst of webhook acceptances (enqueues), how long the first may wait for the ones
    /// that follow to share its commit; acceptances wait only when at least two are expected in
    /// this window (more than 2,000 a second with the default 1 ms), and never longer than 2 ms.
    /// Zero commits each on its own.
    pub group_commit_window: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            deferred_commit_within: Duration::from_millis(50),
            group_commit_window: Duration::from_millis(1),
        }
    }
}
