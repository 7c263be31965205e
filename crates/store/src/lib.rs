//! xdm-store: the backends of the core's [`Store`] port.
//!
//! # Backends
//!
//! [`AnyStore`] is the one type the application holds: an enum over the backends, each variant
//! implementing [`Store`] and `AnyStore` delegating to it (no `dyn`: the port's methods return
//! `impl Future`). [`open`] builds it from a [`StoreUrl`], the parsed `XDM_STORE` setting:
//!
//! | `XDM_STORE` | backend |
//! |---|---|
//! | `sqlite:PATH` (`sqlite:./xdm-connect.db`) | [`SqliteStore`] on that file: the embedded default |
//! | `sqlite::memory:` | [`SqliteStore`] in memory (tests, throw-away demos) |
//! | `dynamodb:TABLE_PREFIX` | parsed, but not part of this build yet (opening it says so) |
//!
//! `AnyStore::Memory` wraps the core's [`MemoryStore`] for tests and benchmarks; it has no URL.
//! Every backend passes the same conformance suite (`tests/it/conformance`).
//!
//! # Durability (SQLite)
//!
//! The bridge acknowledges a webhook only after its events are stored (DESIGN.md §3, "ack fast,
//! lose nothing"), so a returned `Ok` from [`Store::enqueue`] must survive a crash. The SQLite
//! store runs in WAL mode with `synchronous=NORMAL`: every call returns after its transaction
//! is committed to the write-ahead log, which survives any process crash, `kill -9` included
//! (the crash test in the suite aborts a child process right after it enqueues). A power loss
//! or OS crash may roll back the last few commits; where that matters, use
//! `sqlite:PATH?synchronous=full` ([`Synchronous::Full`]): one fsync per commit.
//!
//! SQLite work never runs on the async executor: one dedicated thread owns the connection and
//! runs the calls in order (see `sqlite/worker.rs`). Correctness does not rest on that thread:
//! the one-open-session-per-customer rule is a partial unique index, `enqueue` one transaction,
//! and `claim` a single compare-and-set UPDATE.

mod sqlite;
mod url;

use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{Job, JobState, NewJob, Queue};
pub use xdm_core::memory_store::MemoryStore;
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::profile::XProfile;
use xdm_core::session::{ConnectionCredentials, Session};

pub use crate::sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};
pub use crate::url::{SqliteLocation, StoreUrl, StoreUrlError};

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("XDM_STORE=sqlite: needs a file path")]
    EmptyPath,
    #[error(
        "the directory {directory} of the SQLite store {location} does not exist; create it or point XDM_STORE elsewhere"
    )]
    MissingDirectory { location: String, directory: String },
    #[error("cannot open the SQLite store {location}: {source}")]
    Sqlite {
        location: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the SQLite store {location} has schema version {found}, newer than the {supported} this build knows; run a newer xdm-connect"
    )]
    SchemaTooNew {
        location: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot migrate the SQLite store {location} to schema version {version}: {source}")]
    Migration {
        location: String,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot start the thread of the SQLite store {location}: {source}")]
    Thread {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread of the SQLite store {location} stopped while opening it")]
    ThreadStopped { location: String },
    #[error(
        "XDM_STORE=dynamodb:{table_prefix}: the DynamoDB backend is not part of this build yet (it is coming in a later release); use XDM_STORE=sqlite:PATH for now"
    )]
    DynamoDbNotAvailable { table_prefix: String },
}

/// Opens the backend `url` names.
pub async fn open(url: &StoreUrl) -> Result<AnyStore, OpenError> {
    match url {
        StoreUrl::Sqlite { location, options } => {
            let store = match location {
                SqliteLocation::File(path) => SqliteStore::open_with(path, *options).await?,
                SqliteLocation::Memory => SqliteStore::open_in_memory().await?,
            };
            Ok(AnyStore::Sqlite(store))
        }
        StoreUrl::DynamoDb { table_prefix } => Err(OpenError::DynamoDbNotAvailable {
            table_prefix: table_prefix.clone(),
        }),
    }
}

/// The configured backend.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    /// The core's in-memory reference store: not durable, for tests and benchmarks.
    Memory(MemoryStore),
}

impl AnyStore {
    /// The backend's name, for logs and `/metrics`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Memory(_) => "memory",
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> Self {
        AnyStore::Sqlite(store)
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore::Memory(store)
    }
}

/// Forwards a `Store` call to the variant's backend.
macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Sqlite(s) => s.$method($($arg),*).await,
            AnyStore::Memory(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        delegate!(self.open_session(business, customer))
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        delegate!(self.session_by_initial_contact(id))
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        delegate!(self.insert_session(session))
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        delegate!(self.set_session_connection(id, connection, now_ms))
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        delegate!(self.end_session(id, now_ms))
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        delegate!(self.cached_profile(id, now_ms))
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        delegate!(self.cache_profile(profile, expires_at_ms))
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        delegate!(self.enqueue(jobs))
    }

    async fn lane_heads(
        &self,
        queue: Queue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        delegate!(self.lane_heads(queue, now_ms, limit))
    }

    async fn claim(
        &self,
        queue: Queue,
        key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.claim(queue, key, now_ms, lease_until_ms))
    }

    async fn reschedule(
        &self,
        queue: Queue,
        key: &str,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        delegate!(self.reschedule(queue, key, not_before_ms, error, now_ms))
    }

    async fn finish(
        &self,
        queue: Queue,
        key: &str,
        state: JobState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        delegate!(self.finish(queue, key, state, error, now_ms))
    }

    async fn job(&self, queue: Queue, key: &str) -> Result<Option<Job>, StoreError> {
        delegate!(self.job(queue, key))
    }

    async fn jobs(
        &self,
        queue: Queue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        delegate!(self.jobs(queue, state, limit))
    }

    async fn retry_failed(&self, queue: Queue, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        delegate!(self.retry_failed(queue, key, now_ms))
    }

    async fn release_claims(&self, queue: Queue, now_ms: i64) -> Result<u64, StoreError> {
        delegate!(self.release_claims(queue, now_ms))
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        delegate!(self.purge(jobs_before_ms, sessions_before_ms, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dynamodb_parses_but_does_not_open() {
        let url = StoreUrl::parse("dynamodb:xdm-").unwrap_or_else(|e| panic!("{e}"));
        let e = open(&url)
            .await
            .err()
            .unwrap_or_else(|| panic!("opened dynamodb"));
        assert!(
            matches!(e, OpenError::DynamoDbNotAvailable { ref table_prefix } if table_prefix == "xdm-")
        );
        let msg = e.to_string();
        assert!(msg.contains("XDM_STORE=dynamodb:xdm-"), "{msg}");
        assert!(msg.contains("not part of this build yet"), "{msg}");
        assert!(msg.contains("sqlite:PATH"), "{msg}");
    }

    #[tokio::test]
    async fn sqlite_memory_opens_as_the_sqlite_variant() {
        let store = open(&StoreUrl::sqlite_memory())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.backend(), "sqlite");
        assert!(matches!(&store, AnyStore::Sqlite(s) if s.location() == ":memory:"));
        let empty = store.jobs(Queue::Inbound, None, 10).await;
        assert_eq!(empty, Ok(Vec::new()));
    }
}
