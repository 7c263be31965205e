//! The tuning of an SQLite store: how hard a commit is made durable, and how long a write waits
//! for another connection's lock.

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
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
        }
    }
}
