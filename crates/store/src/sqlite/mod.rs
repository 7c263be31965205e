//! The embedded SQLite backend.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL` by default. A call returns
//! only after its transaction is committed to the WAL file, so a process crash (panic, OOM kill,
//! `kill -9`) right after the call loses nothing. What NORMAL does not cover is a power loss or
//! an OS crash: the last transactions before it may be rolled back (never half-applied, never
//! corrupting the file). [`Synchronous::Full`] closes that window by syncing the WAL on every
//! commit, at the price of one fsync per write.
//!
//! Concurrency: one connection, owned by one thread (see `worker.rs` for why). The guarantees
//! of the `Store` port do not depend on that: the one-open-session rule is a partial unique
//! index, enqueue is one transaction, `claim` is a single conditional UPDATE, and so are
//! `reschedule` and `finish` (fenced by the claim's `attempts`), so several `SqliteStore`s (or
//! processes) on one file stay correct.
//!
//! Records (`put_record`, `delete_record`) are single conditional statements on `version`. They
//! may hold tokens, so on unix the database file is created with mode 0600 (and an existing one
//! loses its group and other bits at open); SQLite gives its `-wal` and `-shm` files the same mode.

mod rows;
mod schema;
mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{FinalState, Job, JobState, NewJob, Queue};
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::profile::XProfile;
use xdm_core::records::{Expect, Record};
use xdm_core::session::{ConnectionCredentials, Session};

use self::rows::{
    DbError, job_columns, job_from_row, profile_from_json, profile_to_json, record_columns,
    record_from_row, session_columns, session_from_row, sql_limit,
};
use self::schema::Target;
use self::worker::Worker;
use crate::OpenError;

pub use self::schema::SCHEMA_VERSION;

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

/// Tuning of a [`SqliteStore`].
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

/// The `Store` on an SQLite database file (or in memory, for tests).
#[derive(Debug)]
pub struct SqliteStore {
    worker: Worker,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` with the default options. The
    /// directory must exist: it is not created, and its absence is an error naming the path.
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
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // A metadata check is a syscall, not SQLite work: fine on the caller's thread.
        if !dir.is_dir() {
            return Err(OpenError::MissingDirectory {
                location,
                directory: dir.display().to_string(),
            });
        }
        let store = Self::start(location, move |location| {
            schema::open_connection(Target::File(&path), location, &options)
        })
        .await?;
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
        Self::start(":memory:".to_owned(), |location| {
            schema::open_connection(Target::Memory, location, &SqliteOptions::default())
        })
        .await
    }

    async fn start<F>(location: String, open: F) -> Result<Self, OpenError>
    where
        F: FnOnce(&str) -> Result<rusqlite::Connection, OpenError> + Send + 'static,
    {
        let loc = location.clone();
        let worker = Worker::start(location, move || open(&loc)).await?;
        Ok(Self { worker })
    }

    /// The database file (or `:memory:`), for logs.
    pub fn location(&self) -> &str {
        self.worker.location()
    }
}

// -- SQL -------------------------------------------------------------------------------------
// `pub(crate)` so the unit tests can check the query plans.

pub(crate) const SQL_OPEN_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE business = ?1 AND customer = ?2 AND status != 'ended'"
);

pub(crate) const SQL_SESSION_BY_ID: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE initial_contact_id = ?1"
);

/// Refused by the primary key (same contact) or by `sessions_one_open_per_pair`.
pub(crate) const SQL_INSERT_SESSION: &str = "INSERT INTO sessions (initial_contact_id, business, customer, participant_token, \
     opened_by, connection_token, connection_expires_at_ms, status, created_at_ms, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT DO NOTHING";

pub(crate) const SQL_SET_CONNECTION: &str = "UPDATE sessions SET connection_token = ?2, connection_expires_at_ms = ?3, \
     status = CASE status WHEN 'ended' THEN 'ended' ELSE 'live' END, updated_at_ms = ?4 \
     WHERE initial_contact_id = ?1";

pub(crate) const SQL_END_SESSION: &str = "UPDATE sessions SET status = 'ended', updated_at_ms = ?2 \
     WHERE initial_contact_id = ?1 AND status != 'ended'";

pub(crate) const SQL_CACHED_PROFILE: &str =
    "SELECT profile FROM profiles WHERE user_id = ?1 AND expires_at_ms > ?2";

pub(crate) const SQL_CACHE_PROFILE: &str = "INSERT INTO profiles (user_id, profile, expires_at_ms) VALUES (?1, ?2, ?3) \
     ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile, expires_at_ms = excluded.expires_at_ms";

pub(crate) const SQL_ENQUEUE: &str = "INSERT INTO jobs (queue, key, lane, order_key, payload, state, attempts, accepted_at_ms, \
     not_before_ms, lease_until_ms, updated_at_ms, last_error) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, 0, ?6, NULL) \
     ON CONFLICT (queue, key) DO NOTHING";

/// Heads, one index seek per lane rather than one probe per open job: `lanes` hops through the
/// distinct lanes of the queue's open jobs in `jobs_open_by_lane` (a skip-scan), each lane's head
/// is the first entry of its range, then heads under an unexpired lease are dropped and the rest
/// sorted soonest due first. Measured with 10k open jobs beside 200k done ones (release build):
/// 10 lanes 0.25 ms vs 15 ms for a NOT EXISTS probe per open job; 1,000 lanes 2-4 ms vs 10-17 ms;
/// 10,000 one-job lanes 25-31 ms vs 10-18 ms. Backlogs gather in busy lanes, hence this form.
pub(crate) const SQL_LANE_HEADS: &str = concat!(
    "WITH RECURSIVE lanes(name) AS ( \
         SELECT min(lane) FROM jobs \
         WHERE queue = ?1 AND state IN ('pending', 'processing') \
       UNION ALL \
         SELECT (SELECT min(n.lane) FROM jobs AS n \
                 WHERE n.queue = ?1 AND n.state IN ('pending', 'processing') \
                   AND n.lane > lanes.name) \
         FROM lanes WHERE lanes.name IS NOT NULL) \
     SELECT ",
    job_columns!(),
    " FROM lanes JOIN jobs AS j ON j.rowid = \
         (SELECT h.rowid FROM jobs AS h \
          WHERE h.queue = ?1 AND h.lane = lanes.name AND h.state IN ('pending', 'processing') \
          ORDER BY h.order_key, h.key LIMIT 1) \
     WHERE NOT (j.state = 'processing' AND j.lease_until_ms > ?2) \
     ORDER BY CASE j.state WHEN 'processing' THEN j.lease_until_ms ELSE j.not_before_ms END, j.key \
     LIMIT ?3"
);

/// One lane's head: the first entry of its range in `jobs_open_by_lane` (one index seek), unless
/// it is under an unexpired lease.
pub(crate) const SQL_LANE_HEAD: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs AS j WHERE j.rowid = \
         (SELECT h.rowid FROM jobs AS h \
          WHERE h.queue = ?1 AND h.lane = ?2 AND h.state IN ('pending', 'processing') \
          ORDER BY h.order_key, h.key LIMIT 1) \
       AND NOT (j.state = 'processing' AND j.lease_until_ms > ?3)"
);

/// The compare-and-set: one statement that takes the job only if it is still due and still the
/// head of its lane. SQLite runs it under the write lock, so exactly one caller changes the row.
pub(crate) const SQL_CLAIM: &str = "UPDATE jobs SET state = 'processing', attempts = attempts + 1, lease_until_ms = ?4, \
     updated_at_ms = ?3, first_claimed_at_ms = COALESCE(first_claimed_at_ms, ?3) \
     WHERE queue = ?1 AND key = ?2 \
       AND ((state = 'pending' AND not_before_ms <= ?3) \
         OR (state = 'processing' AND lease_until_ms <= ?3)) \
       AND NOT EXISTS (SELECT 1 FROM jobs AS o \
                       WHERE o.queue = jobs.queue AND o.lane = jobs.lane \
                         AND o.state IN ('pending', 'processing') \
                         AND (o.order_key, o.key) < (jobs.order_key, jobs.key))";

/// Fenced by the claim: changes the row only while it is processing under claim number ?3 (its
/// `attempts`), so a worker whose lease ran out cannot undo a newer claim. The job stays open:
/// its lane keeps its place (lane order is read from `jobs` itself).
pub(crate) const SQL_RESCHEDULE: &str = "UPDATE jobs SET state = 'pending', not_before_ms = ?4, lease_until_ms = 0, last_error = ?5, \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`: only the holder of the claim numbered ?3 moves its lease.
pub(crate) const SQL_RENEW_LEASE: &str = "UPDATE jobs SET lease_until_ms = ?4, updated_at_ms = ?5 \
     WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`; ?4 is 'done' or 'failed' (a `FinalState`).
pub(crate) const SQL_FINISH: &str = "UPDATE jobs SET state = ?4, lease_until_ms = 0, last_error = COALESCE(?5, last_error), \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

pub(crate) const SQL_JOB: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND key = ?2"
);

pub(crate) const SQL_JOBS_ALL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 ORDER BY accepted_at_ms, key LIMIT ?2"
);

pub(crate) const SQL_JOBS_IN_STATE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND state = ?2 ORDER BY accepted_at_ms, key LIMIT ?3"
);

pub(crate) const SQL_RETRY_FAILED: &str = "UPDATE jobs SET state = 'pending', attempts = 0, not_before_ms = ?3, updated_at_ms = ?3, \
     first_claimed_at_ms = NULL \
     WHERE queue = ?1 AND key = ?2 AND state = 'failed'";

pub(crate) const SQL_RELEASE_CLAIMS: &str = "UPDATE jobs SET state = 'pending', lease_until_ms = 0, not_before_ms = ?2, updated_at_ms = ?2 \
     WHERE queue = ?1 AND state = 'processing'";

pub(crate) const SQL_PURGE_JOBS: &str =
    "DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at_ms < ?1";

pub(crate) const SQL_PURGE_SESSIONS: &str =
    "DELETE FROM sessions WHERE status = 'ended' AND updated_at_ms < ?1";

pub(crate) const SQL_PURGE_PROFILES: &str = "DELETE FROM profiles WHERE expires_at_ms <= ?1";

pub(crate) const SQL_RECORD: &str =
    concat!("SELECT ", record_columns!(), " FROM records WHERE key = ?1");

/// `Expect::Absent`: refused by the primary key when the record exists.
pub(crate) const SQL_PUT_RECORD_ABSENT: &str = "INSERT INTO records (key, value, version, updated_at_ms) VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (key) DO NOTHING RETURNING version";

/// `Expect::Version(?4)`: the compare-and-set, one conditional UPDATE.
pub(crate) const SQL_PUT_RECORD_VERSION: &str = "UPDATE records SET value = ?2, version = version + 1, updated_at_ms = ?3 \
     WHERE key = ?1 AND version = ?4 RETURNING version";

/// `Expect::Any`: insert or bump the version.
pub(crate) const SQL_PUT_RECORD_ANY: &str = "INSERT INTO records (key, value, version, updated_at_ms) VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = records.version + 1, \
     updated_at_ms = excluded.updated_at_ms RETURNING version";

pub(crate) const SQL_DELETE_RECORD_VERSION: &str =
    "DELETE FROM records WHERE key = ?1 AND version = ?2";

pub(crate) const SQL_DELETE_RECORD_ANY: &str = "DELETE FROM records WHERE key = ?1";

/// Keys starting with ?1: a range seek from ?1 in the primary key, compared by characters
/// (`substr`/`length` count characters of TEXT alike), so no LIKE escaping is needed.
pub(crate) const SQL_RECORDS_BY_PREFIX: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM records WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1 ORDER BY key"
);

fn open_session_in(
    conn: &rusqlite::Connection,
    business: &str,
    customer: &str,
) -> Result<Option<Session>, DbError> {
    let mut stmt = conn.prepare_cached(SQL_OPEN_SESSION)?;
    let mut rows = stmt.query(params![business, customer])?;
    match rows.next()? {
        Some(row) => Ok(Some(session_from_row(row)?)),
        None => Ok(None),
    }
}

fn session_by_id_in(conn: &rusqlite::Connection, id: &str) -> Result<Option<Session>, DbError> {
    let mut stmt = conn.prepare_cached(SQL_SESSION_BY_ID)?;
    let mut rows = stmt.query(params![id])?;
    match rows.next()? {
        Some(row) => Ok(Some(session_from_row(row)?)),
        None => Ok(None),
    }
}

fn collect_jobs(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Job>, DbError> {
    let mut jobs = Vec::new();
    while let Some(row) = rows.next()? {
        jobs.push(job_from_row(row)?);
    }
    Ok(jobs)
}

impl Store for SqliteStore {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        let (business, customer) = (business.clone(), customer.clone());
        self.worker
            .call("open_session", move |conn| {
                open_session_in(conn, business.as_str(), customer.as_str())
            })
            .await
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        let id = id.clone();
        self.worker
            .call("session_by_initial_contact", move |conn| {
                session_by_id_in(conn, id.as_str())
            })
            .await
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        let s = session.clone();
        self.worker
            .call("insert_session", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (business, customer) = (s.business.as_str(), s.customer.as_str());
                // An ended session does not touch the unique index: check the pair by hand.
                if !s.status.is_open()
                    && let Some(open) = open_session_in(&tx, business, customer)?
                {
                    return Ok(SessionInsert::OpenExists(open));
                }
                let inserted = tx.prepare_cached(SQL_INSERT_SESSION)?.execute(params![
                    s.initial_contact_id.as_str(),
                    business,
                    customer,
                    s.participant_token.expose(),
                    s.opened_by,
                    s.connection.as_ref().map(|c| c.token.expose()),
                    s.connection.as_ref().and_then(|c| c.expires_at_ms),
                    s.status.as_str(),
                    s.created_at_ms,
                    s.updated_at_ms,
                ])?;
                if inserted == 1 {
                    tx.commit()?;
                    return Ok(SessionInsert::Inserted);
                }
                // Refused: by the open session of the pair, or by the same contact id.
                if let Some(open) = open_session_in(&tx, business, customer)? {
                    return Ok(SessionInsert::OpenExists(open));
                }
                match session_by_id_in(&tx, s.initial_contact_id.as_str())? {
                    Some(same) => Err(DbError::Corrupt(format!(
                        "session {} exists with status {}",
                        same.initial_contact_id,
                        same.status.as_str()
                    ))),
                    None => Err(DbError::Corrupt(format!(
                        "session {} was refused but no conflicting row was found",
                        s.initial_contact_id
                    ))),
                }
            })
            .await
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (id, connection) = (id.clone(), connection.clone());
        self.worker
            .call("set_session_connection", move |conn| {
                conn.prepare_cached(SQL_SET_CONNECTION)?.execute(params![
                    id.as_str(),
                    connection.token.expose(),
                    connection.expires_at_ms,
                    now_ms
                ])?;
                Ok(())
            })
            .await
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        let id = id.clone();
        self.worker
            .call("end_session", move |conn| {
                let n = conn
                    .prepare_cached(SQL_END_SESSION)?
                    .execute(params![id.as_str(), now_ms])?;
                Ok(n == 1)
            })
            .await
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        let id = id.clone();
        self.worker
            .call("cached_profile", move |conn| {
                let json: Option<String> = conn
                    .prepare_cached(SQL_CACHED_PROFILE)?
                    .query_row(params![id.as_str(), now_ms], |row| row.get(0))
                    .optional()?;
                json.map(|json| profile_from_json(&id, &json)).transpose()
            })
            .await
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let profile = profile.clone();
        self.worker
            .call("cache_profile", move |conn| {
                let json = profile_to_json(&profile)?;
                conn.prepare_cached(SQL_CACHE_PROFILE)?.execute(params![
                    profile.id.as_str(),
                    json,
                    expires_at_ms
                ])?;
                Ok(())
            })
            .await
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let jobs = jobs.to_vec();
        // Group-committed with the enqueues of concurrent webhook calls.
        self.worker
            .write("enqueue", move |conn| {
                let mut fresh = Vec::with_capacity(jobs.len());
                {
                    let mut insert = conn.prepare_cached(SQL_ENQUEUE)?;
                    for j in &jobs {
                        let n = insert.execute(params![
                            j.queue.as_str(),
                            j.key,
                            j.lane,
                            j.order_key,
                            j.payload,
                            j.accepted_at_ms,
                            j.not_before_ms,
                        ])?;
                        fresh.push(n == 1);
                    }
                }
                Ok(fresh)
            })
            .await
    }

    async fn lane_heads(
        &self,
        queue: Queue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.worker
            .call("lane_heads", move |conn| {
                let mut stmt = conn.prepare_cached(SQL_LANE_HEADS)?;
                collect_jobs(stmt.query(params![queue.as_str(), now_ms, sql_limit(limit)])?)
            })
            .await
    }

    async fn lane_head(
        &self,
        queue: Queue,
        lane: &str,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        let lane = lane.to_owned();
        self.worker
            .call("lane_head", move |conn| {
                let mut stmt = conn.prepare_cached(SQL_LANE_HEAD)?;
                let mut rows = stmt.query(params![queue.as_str(), lane, now_ms])?;
                match rows.next()? {
                    Some(row) => Ok(Some(job_from_row(row)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn claim(
        &self,
        queue: Queue,
        key: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.worker
            .write("claim", move |conn| {
                let n = conn.prepare_cached(SQL_CLAIM)?.execute(params![
                    queue.as_str(),
                    key,
                    now_ms,
                    lease_until_ms
                ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn renew_lease(
        &self,
        queue: Queue,
        key: &str,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.worker
            .write("renew_lease", move |conn| {
                let n = conn.prepare_cached(SQL_RENEW_LEASE)?.execute(params![
                    queue.as_str(),
                    key,
                    attempt,
                    lease_until_ms,
                    now_ms
                ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn reschedule(
        &self,
        queue: Queue,
        key: &str,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (key, error) = (key.to_owned(), error.to_owned());
        self.worker
            .write("reschedule", move |conn| {
                let n = conn.prepare_cached(SQL_RESCHEDULE)?.execute(params![
                    queue.as_str(),
                    key,
                    attempt,
                    not_before_ms,
                    error,
                    now_ms
                ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn finish(
        &self,
        queue: Queue,
        key: &str,
        attempt: u32,
        state: FinalState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (key, error) = (key.to_owned(), error.map(str::to_owned));
        self.worker
            .write("finish", move |conn| {
                let n = conn.prepare_cached(SQL_FINISH)?.execute(params![
                    queue.as_str(),
                    key,
                    attempt,
                    state.as_str(),
                    error,
                    now_ms
                ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn job(&self, queue: Queue, key: &str) -> Result<Option<Job>, StoreError> {
        let key = key.to_owned();
        self.worker
            .call("job", move |conn| {
                let mut stmt = conn.prepare_cached(SQL_JOB)?;
                let mut rows = stmt.query(params![queue.as_str(), key])?;
                match rows.next()? {
                    Some(row) => Ok(Some(job_from_row(row)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn jobs(
        &self,
        queue: Queue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.worker
            .call("jobs", move |conn| match state {
                None => {
                    let mut stmt = conn.prepare_cached(SQL_JOBS_ALL)?;
                    collect_jobs(stmt.query(params![queue.as_str(), sql_limit(limit)])?)
                }
                Some(state) => {
                    let mut stmt = conn.prepare_cached(SQL_JOBS_IN_STATE)?;
                    collect_jobs(stmt.query(params![
                        queue.as_str(),
                        state.as_str(),
                        sql_limit(limit)
                    ])?)
                }
            })
            .await
    }

    async fn retry_failed(&self, queue: Queue, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.worker
            .call("retry_failed", move |conn| {
                let n = conn.prepare_cached(SQL_RETRY_FAILED)?.execute(params![
                    queue.as_str(),
                    key,
                    now_ms
                ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn release_claims(&self, queue: Queue, now_ms: i64) -> Result<u64, StoreError> {
        self.worker
            .call("release_claims", move |conn| {
                let n = conn
                    .prepare_cached(SQL_RELEASE_CLAIMS)?
                    .execute(params![queue.as_str(), now_ms])?;
                Ok(n as u64)
            })
            .await
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.worker
            .call("purge", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut n = tx
                    .prepare_cached(SQL_PURGE_JOBS)?
                    .execute(params![jobs_before_ms])?;
                n += tx
                    .prepare_cached(SQL_PURGE_SESSIONS)?
                    .execute(params![sessions_before_ms])?;
                n += tx
                    .prepare_cached(SQL_PURGE_PROFILES)?
                    .execute(params![now_ms])?;
                tx.commit()?;
                Ok(n as u64)
            })
            .await
    }

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let key = key.to_owned();
        self.worker
            .call("record", move |conn| {
                let mut stmt = conn.prepare_cached(SQL_RECORD)?;
                let mut rows = stmt.query(params![key])?;
                match rows.next()? {
                    Some(row) => Ok(Some(record_from_row(row)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.worker
            .write("put_record", move |conn| {
                let version: Option<i64> = match expect {
                    Expect::Absent => conn
                        .prepare_cached(SQL_PUT_RECORD_ABSENT)?
                        .query_row(params![key, value, now_ms], |row| row.get(0))
                        .optional()?,
                    Expect::Version(v) => {
                        // No stored version is above i64::MAX: the condition cannot hold.
                        let Ok(v) = i64::try_from(v) else {
                            return Ok(None);
                        };
                        conn.prepare_cached(SQL_PUT_RECORD_VERSION)?
                            .query_row(params![key, value, now_ms, v], |row| row.get(0))
                            .optional()?
                    }
                    Expect::Any => conn
                        .prepare_cached(SQL_PUT_RECORD_ANY)?
                        .query_row(params![key, value, now_ms], |row| row.get(0))
                        .optional()?,
                };
                version
                    .map(|v| {
                        u64::try_from(v).map_err(|_| {
                            DbError::Corrupt(format!("record {key:?}: version out of range: {v}"))
                        })
                    })
                    .transpose()
            })
            .await
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        let key = key.to_owned();
        let version = match expect {
            Expect::Absent => return Ok(false),
            Expect::Version(v) => match i64::try_from(v) {
                Ok(v) => Some(v),
                Err(_) => return Ok(false),
            },
            Expect::Any => None,
        };
        self.worker
            .write("delete_record", move |conn| {
                let n = match version {
                    Some(v) => conn
                        .prepare_cached(SQL_DELETE_RECORD_VERSION)?
                        .execute(params![key, v])?,
                    None => conn
                        .prepare_cached(SQL_DELETE_RECORD_ANY)?
                        .execute(params![key])?,
                };
                Ok(n == 1)
            })
            .await
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        let prefix = prefix.to_owned();
        self.worker
            .call("records", move |conn| {
                let mut stmt = conn.prepare_cached(SQL_RECORDS_BY_PREFIX)?;
                let mut rows = stmt.query(params![prefix])?;
                let mut records = Vec::new();
                while let Some(row) = rows.next()? {
                    records.push(record_from_row(row)?);
                }
                Ok(records)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
