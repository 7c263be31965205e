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
//! | `dynamodb:TABLE_PREFIX` | [`DynamoStore`] on the tables `TABLE_PREFIXsessions`, `…profiles`, `…jobs`, `…lanes`, `…records` |
//!
//! `AnyStore::Memory` wraps the core's [`MemoryStore`] for tests and benchmarks; it has no URL.
//! Every backend passes the same conformance suite (`tests/it/conformance`); the DynamoDB run
//! talks to a local emulator (moto) over real sockets with the real AWS SDK client.
//!
//! Opening `dynamodb:PREFIX` needs an AWS configuration (credentials, region, optional
//! `AWS_ENDPOINT_URL_DYNAMODB`): [`open`] loads it from the environment, [`open_with`] takes
//! the one the application already built. Either way the tables are checked (DescribeTable)
//! before the store is returned, so a missing table or region is a start-up error that names
//! it, not a failure of the first webhook. The table design is in the `dynamodb` module and in
//! `docs/aws-tables.md`; [`DynamoStore::create_tables`] creates them for tests and development.
//!
//! # Durability (SQLite)
//!
//! The bridge acknowledges a webhook only after its events are stored (docs/delivery.md, "ack fast,
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
//! and `claim` a single compare-and-set UPDATE. One process delivers from a file at a time: it
//! holds the file's [`InstanceLock`], since its start-up `release_claims` assumes that every
//! claim it finds is a dead process's (see the `sqlite` module).
//!
//! # Durability (DynamoDB)
//!
//! A DynamoDB write is acknowledged once it is stored durably across availability zones, so an
//! `Ok` from [`Store::enqueue`] survives the loss of the process (or of the Lambda instance)
//! that made it. Every state change is one transaction or one conditional write, so a process
//! that dies mid-call leaves nothing half-done (an enqueue of more than 50 jobs is several
//! transactions, committed in order); a job it had claimed becomes claimable again when its
//! lease ends.

mod dynamodb;
mod sqlite;
mod url;

use aws_config::{BehaviorVersion, SdkConfig};

use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{
    Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, LaneEntry, NewJob,
};
pub use xdm_core::memory_store::MemoryStore;
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::profile::XProfile;
use xdm_core::records::{Expect, Record};
use xdm_core::session::{ConnectionCredentials, Session};

pub use crate::dynamodb::{DynamoOptions, DynamoStore, TableError, TableNames};
pub use crate::sqlite::{
    InstanceLock, LockHolder, LockState, SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous,
};
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
    #[error(
        "the directory {directory} of the SQLite store {location} is writable by every user, who could replace the database; run `chmod o-w {directory}` or point XDM_STORE at a directory of its own"
    )]
    UnsafeDirectory { location: String, directory: String },
    #[error(
        "another xdm-connect ({}) is serving {location}; stop it or use another XDM_STORE",
        holder.as_ref().map_or_else(|| "its lock file does not say which".to_owned(), ToString::to_string)
    )]
    Locked {
        location: String,
        holder: Option<LockHolder>,
    },
    #[error("cannot take the instance lock {lock_file} of the SQLite store {location}: {source}")]
    Lock {
        location: String,
        lock_file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the SQLite store {location} is damaged ({problems}); nothing was written to it. Stop every xdm-connect using it, keep the file, and recover what it holds into a new one: `sqlite3 {location} .recover | sqlite3 {location}.recovered`, then point XDM_STORE at the new file (docs/setup.md, \"A damaged SQLite store\")"
    )]
    Corrupt { location: String, problems: String },
    #[error(
        "another process holds the write lock of the SQLite store {location}, which needs a schema migration (to version {version}): stop the other process (another xdm-connect, or a sqlite3 session) and start again"
    )]
    Busy { location: String, version: i64 },
    #[error("cannot make the SQLite store {location} readable by its owner only: {source}")]
    Permissions {
        location: String,
        #[source]
        source: std::io::Error,
    },
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
        "XDM_STORE=dynamodb:{table_prefix}: no AWS region is configured; set AWS_REGION (or a region in the AWS profile)"
    )]
    DynamoDbNoRegion { table_prefix: String },
    #[error("XDM_STORE=dynamodb:{table_prefix}: {source}")]
    DynamoDb {
        table_prefix: String,
        #[source]
        source: TableError,
    },
}

/// Opens the backend `url` names. For `dynamodb:` the AWS configuration is loaded from the
/// environment (`aws_config::defaults(BehaviorVersion::latest())`); use [`open_with`] to pass the
/// one the application already has.
pub async fn open(url: &StoreUrl) -> Result<AnyStore, OpenError> {
    open_with(url, None).await
}

/// Opens the backend `url` names; a `dynamodb:` store uses `sdk` when given (credentials,
/// region, endpoint), else the configuration loaded from the environment. Other backends ignore
/// `sdk`.
pub async fn open_with(url: &StoreUrl, sdk: Option<SdkConfig>) -> Result<AnyStore, OpenError> {
    match url {
        StoreUrl::Sqlite { location, options } => {
            let store = match location {
                SqliteLocation::File(path) => SqliteStore::open_with(path, *options).await?,
                SqliteLocation::Memory => SqliteStore::open_in_memory().await?,
            };
            Ok(AnyStore::Sqlite(store))
        }
        StoreUrl::DynamoDb { table_prefix } => {
            let sdk = match sdk {
                Some(sdk) => sdk,
                None => aws_config::defaults(BehaviorVersion::latest()).load().await,
            };
            if sdk.region().is_none() {
                return Err(OpenError::DynamoDbNoRegion {
                    table_prefix: table_prefix.clone(),
                });
            }
            let store = DynamoStore::new(&sdk, table_prefix);
            store
                .check_tables()
                .await
                .map_err(|source| OpenError::DynamoDb {
                    table_prefix: table_prefix.clone(),
                    source,
                })?;
            tracing::info!(
                table_prefix = %table_prefix,
                region = sdk.region().map(|r| r.as_ref()).unwrap_or_default(),
                "DynamoDB store open"
            );
            Ok(AnyStore::DynamoDb(store))
        }
    }
}

/// The configured backend.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    /// Shared by every process and Lambda instance that uses the same tables.
    DynamoDb(DynamoStore),
    /// The core's in-memory reference store: not durable, for tests and benchmarks.
    Memory(MemoryStore),
}

impl AnyStore {
    /// The backend's name, for logs and `/metrics`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::DynamoDb(_) => "dynamodb",
            AnyStore::Memory(_) => "memory",
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> Self {
        AnyStore::Sqlite(store)
    }
}

impl From<DynamoStore> for AnyStore {
    fn from(store: DynamoStore) -> Self {
        AnyStore::DynamoDb(store)
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore::Memory(store)
    }
}

/// Forwards a `Store` call to the variant's backend.
///
/// A DynamoDB call's future is boxed: the AWS SDK's futures are kilobytes (an `AnyStore` call
/// measured 6–9 KB with it inline, against ~0.5 KB for SQLite's), and an enum's future is as large
/// as its largest variant's, so every SQLite call, and every future that awaits one (a webhook's
/// handler, a job's task), would carry and copy them. One allocation per network round trip is
/// nothing beside it. `AnyStore`'s futures stay small (test `a_store_calls_future_is_small`).
macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Sqlite(s) => s.$method($($arg),*).await,
            AnyStore::DynamoDb(s) => Box::pin(s.$method($($arg),*)).await,
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
        queue: JobQueue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        delegate!(self.lane_heads(queue, now_ms, limit))
    }

    async fn lane_head(
        &self,
        queue: JobQueue,
        lane: &Lane,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        delegate!(self.lane_head(queue, lane, now_ms))
    }

    async fn lane_jobs(
        &self,
        queue: JobQueue,
        lane: &Lane,
        limit: usize,
    ) -> Result<Vec<LaneEntry>, StoreError> {
        delegate!(self.lane_jobs(queue, lane, limit))
    }

    async fn claim(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.claim(queue, key, lease_until_ms, now_ms))
    }

    async fn claim_deferred(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.claim_deferred(queue, key, lease_until_ms, now_ms))
    }

    async fn renew_lease(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.renew_lease(queue, key, attempt, lease_until_ms, now_ms))
    }

    async fn reschedule(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.reschedule(queue, key, attempt, not_before_ms, error, now_ms))
    }

    async fn finish(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        state: FinalState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.finish(queue, key, attempt, state, error, now_ms))
    }

    async fn job(&self, queue: JobQueue, key: &JobKey) -> Result<Option<Job>, StoreError> {
        delegate!(self.job(queue, key))
    }

    async fn jobs(
        &self,
        queue: JobQueue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        delegate!(self.jobs(queue, state, limit))
    }

    async fn backlog(&self, queue: JobQueue, limit: usize) -> Result<Backlog, StoreError> {
        delegate!(self.backlog(queue, limit))
    }

    async fn retry_failed(
        &self,
        queue: JobQueue,
        key: &JobKey,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        delegate!(self.retry_failed(queue, key, now_ms))
    }

    async fn release_claims(&self, queue: JobQueue, now_ms: i64) -> Result<u64, StoreError> {
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

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        delegate!(self.record(key))
    }

    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        delegate!(self.put_record(key, value, expect, now_ms))
    }

    async fn put_record_deferred(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        delegate!(self.put_record_deferred(key, value, expect, now_ms))
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        delegate!(self.delete_record(key, expect))
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        delegate!(self.records(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dynamodb_without_a_region_names_the_setting() {
        let url = StoreUrl::parse("dynamodb:xdm-").unwrap_or_else(|e| panic!("{e}"));
        // An explicit configuration without a region: nothing is read from the environment.
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let e = open_with(&url, Some(sdk))
            .await
            .err()
            .unwrap_or_else(|| panic!("opened dynamodb without a region"));
        assert!(
            matches!(e, OpenError::DynamoDbNoRegion { ref table_prefix } if table_prefix == "xdm-")
        );
        let msg = e.to_string();
        assert!(msg.contains("XDM_STORE=dynamodb:xdm-"), "{msg}");
        assert!(msg.contains("AWS_REGION"), "{msg}");
    }

    #[tokio::test]
    async fn sqlite_memory_opens_as_the_sqlite_variant() {
        let store = open(&StoreUrl::sqlite_memory())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.backend(), "sqlite");
        assert!(matches!(&store, AnyStore::Sqlite(s) if s.location() == ":memory:"));
        let empty = store.jobs(JobQueue::Inbound, None, 10).await;
        assert_eq!(empty, Ok(Vec::new()));
    }

    /// An `AnyStore` call's future is as large as its largest backend's, whichever backend the
    /// value holds, and every future awaiting it carries that much (and copies it when it moves).
    /// DynamoDB's are boxed (`delegate!`): unboxed, they made these 6–9 KB.
    #[test]
    fn a_store_calls_future_is_small() {
        use xdm_core::ids::XEventId;

        let store = AnyStore::Memory(MemoryStore::new());
        let user = |id: &str| XUserId::parse(id).unwrap_or_else(|e| panic!("{e}"));
        let event = XEventId::parse("2").unwrap_or_else(|e| panic!("{e}"));
        let key = JobKey::inbound_dm(&user("1"), &event);
        let lane = Lane::customer(&user("1"), &user("3"));
        let queue = JobQueue::Inbound;
        let sizes = [
            ("enqueue", size_of_val(&store.enqueue(&[]))),
            ("lane_heads", size_of_val(&store.lane_heads(queue, 0, 1))),
            ("lane_head", size_of_val(&store.lane_head(queue, &lane, 0))),
            ("claim", size_of_val(&store.claim(queue, &key, 1, 0))),
            (
                "claim_deferred",
                size_of_val(&store.claim_deferred(queue, &key, 1, 0)),
            ),
            (
                "renew_lease",
                size_of_val(&store.renew_lease(queue, &key, 1, 1, 0)),
            ),
            (
                "finish",
                size_of_val(&store.finish(queue, &key, 1, FinalState::Done, None, 0)),
            ),
            ("record", size_of_val(&store.record("k"))),
        ];
        for (call, bytes) in sizes {
            assert!(bytes <= 1024, "AnyStore::{call}'s future is {bytes} bytes");
        }
    }
}
