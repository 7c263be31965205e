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

use std::sync::Arc;

use rusqlite::params;
use xdm_core::jobs::{FinalState, Job, JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::ports::StoreError;

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

/// The compare-and-set: takes the job only if it is still due. Run in the transaction that has
/// found the job at the head of its lane (`claim`, `LaneOrder::leads`); SQLite runs it under the
/// write lock, so exactly one caller changes the row.
pub(super) const SQL_CLAIM: &str = "UPDATE jobs SET state = 'processing', attempts = attempts + 1, lease_until_ms = ?4, \
     updated_at_ms = ?3, first_claimed_at_ms = COALESCE(first_claimed_at_ms, ?3) \
     WHERE queue = ?1 AND key = ?2 \
       AND ((state = 'pending' AND not_before_ms <= ?3) \
         OR (state = 'processing' AND lease_until_ms <= ?3))";

/// A job's lane and order key, for the claim's test of its place.
pub(super) const SQL_JOB_PLACE: &str =
    "SELECT lane, order_key FROM jobs WHERE queue = ?1 AND key = ?2";

/// Fenced by the claim: changes the row only while it is processing under claim number ?3 (its
/// `attempts`), so a worker whose lease ran out cannot undo a newer claim. The job stays open:
/// its lane keeps its place (lane order is read from `jobs` itself).
pub(super) const SQL_RESCHEDULE: &str = "UPDATE jobs SET state = 'pending', not_before_ms = ?4, lease_until_ms = 0, last_error = ?5, \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`: only the holder of the claim numbered ?3 moves its lease.
pub(super) const SQL_RENEW_LEASE: &str = "UPDATE jobs SET lease_until_ms = ?4, updated_at_ms = ?5 \
     WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3";

/// Fenced like `SQL_RESCHEDULE`; ?4 is 'done' or 'failed' (a `FinalState`). Returns the job's
/// lane and order key, which the lane order forgets.
pub(super) const SQL_FINISH: &str = "UPDATE jobs SET state = ?4, lease_until_ms = 0, last_error = COALESCE(?5, last_error), \
     updated_at_ms = ?6 WHERE queue = ?1 AND key = ?2 AND state = 'processing' AND attempts = ?3 \
     RETURNING lane, order_key";

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

/// Open jobs of one state (?2: 'pending' or 'processing'): the queue's range of `jobs_open`,
/// sorted. It reads every open job of the queue — an operator's listing, not a hot path.
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

/// Failed jobs counted up to ?2, from `jobs_failed_by_acceptance` alone.
pub(super) const SQL_COUNT_FAILED: &str = "SELECT COUNT(*) FROM \
     (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 'failed' LIMIT ?2)";

/// Returns the job's lane and order key, which the lane order takes back.
pub(super) const SQL_RETRY_FAILED: &str = "UPDATE jobs SET state = 'pending', attempts = 0, not_before_ms = ?3, updated_at_ms = ?3, \
     first_claimed_at_ms = NULL \
     WHERE queue = ?1 AND key = ?2 AND state = 'failed' \
     RETURNING lane, order_key";

/// Every claim of the queue given back: its range of `jobs_open`.
pub(super) const SQL_RELEASE_CLAIMS: &str = "UPDATE jobs SET state = 'pending', lease_until_ms = 0, not_before_ms = ?2, updated_at_ms = ?2 \
     WHERE queue = ?1 AND state IN ('pending', 'processing') AND state = 'processing'";

pub(super) async fn enqueue(store: &SqliteStore, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = jobs.to_vec();
    let order = Arc::clone(&store.lane_order);
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
            // Every statement succeeded: the order takes the new jobs.
            for (j, _) in jobs.into_iter().zip(&fresh).filter(|(_, new)| **new) {
                order.added(j.queue, j.lane, (j.order_key, j.key));
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
    let order = Arc::clone(&store.lane_order);
    let claim = move |conn: &rusqlite::Connection| {
        let Some((lane, order_key)) = query_one(
            conn,
            SQL_JOB_PLACE,
            params![queue.as_str(), key.as_str()],
            lane_and_order_key,
        )?
        else {
            return Ok(false);
        };
        if !order.leads(conn, queue, &lane, &(order_key, key.clone()))? {
            return Ok(false);
        }
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
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .write_deferred("finish", move |conn| {
            let finished = query_one(
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
                lane_and_order_key,
            )?;
            Ok(match finished {
                Some((lane, order_key)) => {
                    order.removed(queue, &lane, &(order_key, key));
                    true
                }
                None => false,
            })
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

pub(super) async fn retry_failed(
    store: &SqliteStore,
    queue: JobQueue,
    key: &JobKey,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let key = key.to_owned();
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .call("retry_failed", move |conn| {
            let retried = query_one(
                conn,
                SQL_RETRY_FAILED,
                params![queue.as_str(), key.as_str(), now_ms],
                lane_and_order_key,
            )?;
            Ok(match retried {
                Some((lane, order_key)) => {
                    order.added(queue, lane, (order_key, key));
                    true
                }
                None => false,
            })
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

/// A row's `lane` and `order_key` (columns 0 and 1).
fn lane_and_order_key(row: &rusqlite::Row<'_>) -> Result<(Lane, i64), DbError> {
    let lane: String = row.get(0)?;
    let lane = Lane::parse(lane).map_err(|e| DbError::Corrupt(format!("job lane: {e}")))?;
    Ok((lane, row.get(1)?))
}
