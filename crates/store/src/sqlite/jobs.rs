//! Jobs (the inbox and the outbox): the `jobs` table. Enqueue with deduplication, claims,
//! leases and their fencing, the holder's and the operator's state changes, and listing. Each is
//! one statement (enqueue: one per job, in one transaction). Claims and the holder's writes are
//! group-committed ([`Worker::write`](super::worker::Worker::write)); enqueues, which come from
//! many webhook calls at once, and recorded claims, which the dispatcher makes from the jobs' own
//! tasks, several lanes at once, may also wait for each other during a burst to share a commit
//! ([`Commit::Grouped`]); the holder's writes (`renew_lease`, `reschedule`, `finish`) and the
//! claims a handler does not need on disk are deferred
//! ([`Worker::write_deferred`](super::worker::Worker::write_deferred)): committed with the next
//! commit, within 50 ms, as the `Store` port allows.

use rusqlite::params;
use xdm_core::jobs::{Backlog, FinalState, Job, JobKey, JobQueue, JobState, NewJob};
use xdm_core::ports::StoreError;

use super::lanes::SQL_HEADS_SUMMARY;
use super::rows::{
    DbError, execute_one, job_columns, job_from_row, query_all, query_one, sql_limit,
};
use super::store::SqliteStore;
use super::worker::Commit;

// `pub(super)` so the unit tests (`tests.rs`) can check the query plans.

pub(super) const SQL_ENQUEUE: &str = "INSERT INTO jobs (queue, key, lane, order_key, payload, state, attempts, accepted_at_ms, \
     not_before_ms, lease_until_ms, updated_at_ms, last_error) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, 0, ?6, NULL) \
     ON CONFLICT (queue, key) DO NOTHING";

/// The compare-and-set: one statement that takes the job only if it is still due and still the
/// head of its lane. SQLite runs it under the write lock, so exactly one caller changes the row.
pub(super) const SQL_CLAIM: &str = "UPDATE jobs SET state = 'processing', attempts = attempts + 1, lease_until_ms = ?4, \
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
pub(super) const SQL_RESCHEDULE: &str = "UPDATE jobs SET state = 'pending', not_before_ms = ?4, lease_until_ms = 0, last_error = ?5, \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`: only the holder of the claim numbered ?3 moves its lease.
pub(super) const SQL_RENEW_LEASE: &str = "UPDATE jobs SET lease_until_ms = ?4, updated_at_ms = ?5 \
     WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`; ?4 is 'done' or 'failed' (a `FinalState`).
pub(super) const SQL_FINISH: &str = "UPDATE jobs SET state = ?4, lease_until_ms = 0, last_error = COALESCE(?5, last_error), \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

pub(super) const SQL_JOB: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND key = ?2"
);

pub(super) const SQL_JOBS_ALL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 ORDER BY accepted_at_ms, key LIMIT ?2"
);

/// Open jobs of one state (?2: 'pending' or 'processing'): the queue's range of
/// `jobs_open_by_lane`, sorted. It reads every open job of the queue — an operator's listing, not a
/// hot path; no index orders open jobs by acceptance, since each acceptance would write it.
pub(super) const SQL_JOBS_OPEN_IN_STATE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND state IN ('pending', 'processing') AND state = ?2 \
     ORDER BY accepted_at_ms, key LIMIT ?3"
);

/// Failed jobs, in the order of `jobs_failed_by_acceptance`: `limit` index entries.
pub(super) const SQL_JOBS_FAILED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND state = 'failed' ORDER BY accepted_at_ms, key LIMIT ?2"
);

/// Done jobs: the queue's jobs read and sorted (done jobs are kept for the retention period, so
/// this reads them all; operators list failed and open jobs, this is for a look at history).
pub(super) const SQL_JOBS_DONE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE queue = ?1 AND state = 'done' ORDER BY accepted_at_ms, key LIMIT ?2"
);

/// Open jobs counted up to ?2, from `jobs_open_by_lane` alone.
pub(super) const SQL_COUNT_OPEN: &str = "SELECT COUNT(*) FROM \
     (SELECT 1 FROM jobs WHERE queue = ?1 AND state IN ('pending', 'processing') LIMIT ?2)";

/// Failed jobs counted up to ?2, from `jobs_failed_by_acceptance` alone.
pub(super) const SQL_COUNT_FAILED: &str = "SELECT COUNT(*) FROM \
     (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 'failed' LIMIT ?2)";

pub(super) const SQL_RETRY_FAILED: &str = "UPDATE jobs SET state = 'pending', attempts = 0, not_before_ms = ?3, updated_at_ms = ?3, \
     first_claimed_at_ms = NULL \
     WHERE queue = ?1 AND key = ?2 AND state = 'failed'";

/// Every claim of the queue given back: its range of `jobs_open_by_lane`.
pub(super) const SQL_RELEASE_CLAIMS: &str = "UPDATE jobs SET state = 'pending', lease_until_ms = 0, not_before_ms = ?2, updated_at_ms = ?2 \
     WHERE queue = ?1 AND state IN ('pending', 'processing') AND state = 'processing'";

pub(super) async fn enqueue(store: &SqliteStore, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = jobs.to_vec();
    // Group-committed with the enqueues of concurrent webhook calls.
    store
        .worker
        .write_as("enqueue", Commit::Grouped, move |conn| {
            let mut fresh = Vec::with_capacity(jobs.len());
            {
                let mut insert = conn.prepare_cached(SQL_ENQUEUE)?;
                for j in &jobs {
                    let n = insert.execute(params![
                        j.queue.as_str(),
                        j.key.as_str(),
                        j.lane.as_str(),
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

/// `commit`: [`Commit::Deferred`] for a claim the handler does not need on disk before it runs
/// ([`Store::claim_deferred`](xdm_core::ports::Store::claim_deferred)).
pub(super) async fn claim(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    lease_until_ms: i64,
    now_ms: i64,
    commit: Commit,
) -> Result<bool, StoreError> {
    let key = key.to_owned();
    let claim = move |conn: &rusqlite::Connection| {
        execute_one(
            conn,
            SQL_CLAIM,
            params![queue.as_str(), key.as_str(), now_ms, lease_until_ms],
        )
    };
    store.worker.write_as("claim", commit, claim).await
}

pub(super) async fn renew_lease(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    lease_until_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let key = key.to_owned();
    store
        .worker
        .write_deferred("renew_lease", move |conn| {
            execute_one(
                conn,
                SQL_RENEW_LEASE,
                params![
                    queue.as_str(),
                    key.as_str(),
                    attempt,
                    lease_until_ms,
                    now_ms
                ],
            )
        })
        .await
}

pub(super) async fn reschedule(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    not_before_ms: i64,
    error: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (key, error) = (key.to_owned(), error.to_owned());
    store
        .worker
        .write_deferred("reschedule", move |conn| {
            execute_one(
                conn,
                SQL_RESCHEDULE,
                params![
                    queue.as_str(),
                    key.as_str(),
                    attempt,
                    not_before_ms,
                    error,
                    now_ms
                ],
            )
        })
        .await
}

pub(super) async fn finish(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    state: FinalState,
    error: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (key, error) = (key.to_owned(), error.map(str::to_owned));
    store
        .worker
        .write_deferred("finish", move |conn| {
            execute_one(
                conn,
                SQL_FINISH,
                params![
                    queue.as_str(),
                    key.as_str(),
                    attempt,
                    state.as_str(),
                    error,
                    now_ms
                ],
            )
        })
        .await
}

pub(super) async fn job(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
) -> Result<Option<Job>, StoreError> {
    let key = key.to_owned();
    store
        .worker
        .read("job", move |conn| {
            query_one(
                conn,
                SQL_JOB,
                params![queue.as_str(), key.as_str()],
                job_from_row,
            )
        })
        .await
}

pub(super) async fn jobs(
    store: &SqliteStore,
    queue: JobQueue,
    state: Option<JobState>,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    store
        .worker
        .call("jobs", move |conn| {
            let q = queue.as_str();
            let limit = sql_limit(limit);
            match state {
                None => query_all(conn, SQL_JOBS_ALL, params![q, limit], job_from_row),
                Some(state @ (JobState::Pending | JobState::Processing)) => query_all(
                    conn,
                    SQL_JOBS_OPEN_IN_STATE,
                    params![q, state.as_str(), limit],
                    job_from_row,
                ),
                Some(JobState::Failed) => {
                    query_all(conn, SQL_JOBS_FAILED, params![q, limit], job_from_row)
                }
                Some(JobState::Done) => {
                    query_all(conn, SQL_JOBS_DONE, params![q, limit], job_from_row)
                }
            }
        })
        .await
}

/// As the DynamoDB store counts it: the lanes' heads say how many jobs are processing (a claim is
/// always of its lane's head; a job claimed just before an earlier one joined its lane counts as
/// pending until it finishes) and when the oldest open job was accepted, the open jobs counted up
/// to `limit` beside them are the rest. The heads' earliest acceptance is the oldest open job's
/// but for a job behind its lane's head accepted before it: one X delivered after a later DM of
/// the same customer, by as long as X held it back. No index orders open jobs by acceptance: each
/// acceptance would write one more b-tree page (docs/performance.md, "One index less, a
/// checkpoint per thousand pages").
pub(super) async fn backlog(
    store: &SqliteStore,
    queue: JobQueue,
    limit: usize,
) -> Result<Backlog, StoreError> {
    if limit == 0 {
        return Ok(Backlog::default());
    }
    store
        .worker
        .call("backlog", move |conn| {
            let q = queue.as_str();
            let (processing, oldest) = query_one(conn, SQL_HEADS_SUMMARY, params![q], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
            })?
            .unwrap_or((0, None));
            let processing = usize::try_from(processing).unwrap_or(0);
            let count = |sql: &str, limit: usize| -> Result<usize, DbError> {
                let n = query_one(conn, sql, params![q, sql_limit(limit)], |row| {
                    Ok(row.get::<_, i64>(0)?)
                })?
                .unwrap_or(0);
                Ok(usize::try_from(n).unwrap_or(0))
            };
            let open = count(SQL_COUNT_OPEN, limit.saturating_add(processing))?;
            Ok(Backlog {
                pending: open.saturating_sub(processing).min(limit) as u64,
                processing: processing.min(limit) as u64,
                failed: count(SQL_COUNT_FAILED, limit)? as u64,
                oldest_open_accepted_ms: oldest,
            })
        })
        .await
}

pub(super) async fn retry_failed(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let key = key.to_owned();
    store
        .worker
        .call("retry_failed", move |conn| {
            execute_one(
                conn,
                SQL_RETRY_FAILED,
                params![queue.as_str(), key.as_str(), now_ms],
            )
        })
        .await
}

pub(super) async fn release_claims(
    store: &SqliteStore,
    queue: JobQueue,
    now_ms: i64,
) -> Result<u64, StoreError> {
    store
        .worker
        .call("release_claims", move |conn| {
            let n = conn
                .prepare_cached(SQL_RELEASE_CLAIMS)?
                .execute(params![queue.as_str(), now_ms])?;
            Ok(n as u64)
        })
        .await
}
