//! The SQLite store type: opening the database (file or memory) and the connection thread every
//! concern module runs its statements on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::access;
use super::lane_order::LaneOrder;
use super::options::SqliteOptions;
use super::options::Synchronous;
use super::schema::{self, SCHEMA_VERSION, Target};
use super::worker::{Worker, WorkerOptions};
use crate::OpenError;

/// The `Store` on an SQLite database file (or in memory, for tests).
#[derive(Debug)]
pub struct SqliteStore {
    /// The connection thread; the concern modules send their statements to it.
    pub(super) worker: Worker,
    /// Each lane's open jobs in running order, beside the connection (`lane_order.rs`).
    pub(super) lane_order: Arc<LaneOrder>,
    /// What opening noticed about who may change the files (see `access.rs`).
    warnings: Vec<String>,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` with the default options. The
    /// directory must exist: it is not created, and its absence is an error naming the path;
    /// a directory writable by every user is refused (`access.rs`). A damaged file is refused
    /// ([`OpenError::Corrupt`]). Opening takes no lock beyond SQLite's own: see
    /// [`InstanceLock`](super::InstanceLock) for the one a delivering process holds.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options`.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let location = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(OpenError::EmptyPath);
        }
        // Metadata checks are syscalls, not SQLite work: fine on the caller's thread.
        let warnings = access::check_location(&path, &location)?;
        for warning in &warnings {
            tracing::warn!(%location, "{warning}");
        }
        let mut store = Self::start(location, worker_options(&options), move |location| {
            schema::open_connection(Target::File(&path), location, &options)
        })
        .await?;
        store.warnings = warnings;
        tracing::info!(
            location = store.location(),
            synchronous = options.synchronous.as_str(),
            schema_version = SCHEMA_VERSION,
            "SQLite store open"
        );
        Ok(store)
    }

    /// A private database in memory: gone when the store is dropped. For tests.
    pub async fn open_in_memory() -> Result<Self, OpenError> {
        let options = SqliteOptions::default();
        Self::start(
            ":memory:".to_owned(),
            worker_options(&options),
            move |location| schema::open_connection(Target::Memory, location, &options),
        )
        .await
    }

    async fn start<F>(
        location: String,
        worker_options: WorkerOptions,
        open: F,
    ) -> Result<Self, OpenError>
    where
        F: FnOnce(&str) -> Result<rusqlite::Connection, OpenError> + Send + 'static,
    {
        let loc = location.clone();
        let lane_order = Arc::new(LaneOrder::default());
        let rolled_back = lane_order.rollback_flag();
        let worker = Worker::start(location, worker_options, move || {
            let mut conn = open(&loc)?;
            // Whatever a rollback undid, the lane order may still hold: it is read again.
            conn.rollback_hook(Some(move || rolled_back.store(true, Ordering::SeqCst)))
                .map_err(|e| OpenError::Sqlite {
                    location: loc.clone(),
                    source: e,
                })?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            worker,
            lane_order,
            warnings: Vec::new(),
        })
    }

    /// The database file (or `:memory:`), for logs.
    pub fn location(&self) -> &str {
        self.worker.location()
    }

    /// What opening found unsafe but not refused (a group-writable directory, a file of another
    /// owner), each a sentence with its fix; logged at open, shown by `doctor`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Calls run on the caller's thread when the connection is free, unless every commit syncs the
/// disk (`synchronous=FULL`): see `worker.rs`.
fn worker_options(options: &SqliteOptions) -> WorkerOptions {
    WorkerOptions {
        inline: options.synchronous == Synchronous::Normal,
        deferred_commit_within: options.deferred_commit_within,
        group_commit_window: options.group_commit_window,
    }
}
