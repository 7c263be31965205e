//! Jobs (the inbox and the outbox): the `jobs` table. Enqueue with deduplication, claims,
//! leases and their fencing, the holder's and the operator's state changes, and listing (see
//! "Deduplication", "Lane order across processes" and "Fencing" in `mod.rs`). A job that moves
//! between open and finished changes its lane in the same transaction (`lanes.rs`).

use xdm_core::jobs::{Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::ports::StoreError;

use super::calls::{Tx, Written, count_written, tx_put, tx_update};
use super::expr::Expr;
use super::items::{
    ACCEPTED_KEY, ATTEMPTS, EXPIRES_AT, FINISHED_QUEUE, FIRST_CLAIMED_AT_MS, LAST_ERROR,
    LEASE_UNTIL_MS, NOT_BEFORE_MS, PK, QUEUE_STATE, Reader, STATE, UPDATED_AT_MS, accepted_at_of,
    is_expired, job_from_item, job_pk, key_of, keys_of, member, n, new_job_item, queue_state, s,
};
use super::lanes::{lane_add, lane_remove, lane_unchanged, version_if_head};
use super::store::{DynamoStore, RACE_ATTEMPTS, absent_or_expired};
use super::tables::BY_STATE;

/// Jobs per enqueue transaction (each may need a lane update too: 2 × 50 = 100 actions).
const ENQUEUE_CHUNK: usize = 50;

const ALL_STATES: [JobState; 4] = [
    JobState::Pending,
    JobState::Processing,
    JobState::Done,
    JobState::Failed,
];

/// A job state change for [`transition`].
#[derive(Debug, Clone, Copy)]
struct Change {
    /// Only from this state (`None`: from any).
    from: Option<JobState>,
    /// Only while the job's `attempts` is this (the claim fence of `finish`; `None`: any).
    attempts: Option<u32>,
    to: JobState,
    at_ms: i64,
}

/// The clauses every state change writes: the state, its index keys and, for finished
/// states, the TTL.
fn state_clauses(store: &DynamoStore, e: &mut Expr, queue: JobQueue, state: JobState, now_ms: i64) {
    e.set(STATE, s(state.as_str()))
        .set(QUEUE_STATE, s(queue_state(queue, state)))
        .set(UPDATED_AT_MS, n(now_ms));
    if state.is_open() {
        e.remove(FINISHED_QUEUE).remove(EXPIRES_AT);
    } else {
        e.set(FINISHED_QUEUE, s(queue.as_str()))
            .set(EXPIRES_AT, n(store.job_ttl()));
    }
}

/// The condition "the job is processing".
fn is_processing(e: &mut Expr) -> String {
    e.eq(STATE, "processing", s(JobState::Processing.as_str()))
}

/// The claim fence: the condition "the job's `attempts` is the claim's `attempt`".
fn claim_fence(e: &mut Expr, attempt: u32) -> String {
    e.eq(ATTEMPTS, "claimed_attempts", n(i64::from(attempt)))
}

/// Moves a job to `change.to`, writing `clauses` (besides the state) — on the condition
/// that it is still in the state read first, that this state is `change.from` and its
/// `attempts` is `change.attempts` (where given). When the job moves between open and
/// finished, its lane's `open` set changes in the same transaction (the lane update is part
/// of the transaction, so a refused job update leaves the lane untouched). `Ok(false)`:
/// unknown job, or not in `change.from` / at `change.attempts`.
async fn transition(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    key: &JobKey,
    change: Change,
    clauses: impl Fn(&mut Expr),
) -> Result<bool, StoreError> {
    let Change {
        from,
        attempts,
        to: target,
        at_ms: now_ms,
    } = change;
    for _ in 0..RACE_ATTEMPTS {
        let Some(job) = store.get_job(op, queue, key).await? else {
            return Ok(false);
        };
        if from.is_some_and(|from| from != job.state) || attempts.is_some_and(|a| a != job.attempts)
        {
            return Ok(false);
        }
        let mut e = Expr::new();
        state_clauses(store, &mut e, queue, target, now_ms);
        clauses(&mut e);
        let mut cond = format!(
            "attribute_exists({}) AND {}",
            e.n(PK),
            e.eq(STATE, "current_state", s(job.state.as_str()))
        );
        if let Some(a) = attempts {
            let fence = format!(" AND {}", claim_fence(&mut e, a));
            cond.push_str(&fence);
        }
        let job_key = key_of(PK, job_pk(queue, key.as_str()));
        if job.state.is_open() == target.is_open() {
            match store
                .calls
                .update(op, &store.tables.jobs, job_key, &e, cond)
                .await?
            {
                Written::Yes => return Ok(true),
                Written::ConditionFailed => continue,
            }
        }
        let member = member(job.order_key, job.key.as_str());
        let lane = if target.is_open() {
            lane_add(store, queue, &job.lane, vec![member])?
        } else {
            lane_remove(store, queue, &job.lane, member)?
        };
        let items = vec![
            tx_update(&store.tables.jobs, job_key, &e, Some(cond))?,
            lane,
        ];
        match store.calls.transact(op, "jobs+lanes", items).await? {
            Tx::Committed => return Ok(true),
            Tx::Cancelled(_) => continue,
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb {op}: job {}/{key} kept changing while it was updated",
        queue.as_str()
    )))
}

/// One UpdateItem of a job writing `e`, under the claim fence: only while it is processing
/// with `attempts == attempt`. A missing item fails the condition too (and is not created).
async fn update_claimed(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    mut e: Expr,
) -> Result<bool, StoreError> {
    let cond = format!(
        "{} AND {}",
        is_processing(&mut e),
        claim_fence(&mut e, attempt)
    );
    let job_key = key_of(PK, job_pk(queue, key.as_str()));
    let written = store
        .calls
        .update(op, &store.tables.jobs, job_key, &e, cond)
        .await?;
    Ok(written == Written::Yes)
}

pub(super) async fn enqueue(store: &DynamoStore, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
    // Within the call, the first job of a (queue, key) wins.
    let mut fresh = vec![false; jobs.len()];
    let mut firsts: Vec<usize> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if !firsts
            .iter()
            .any(|&f| jobs[f].queue == job.queue && jobs[f].key == job.key)
        {
            firsts.push(i);
        }
    }
    for chunk in firsts.chunks(ENQUEUE_CHUNK) {
        let batch: Vec<&NewJob> = chunk.iter().map(|&i| &jobs[i]).collect();
        let stored = enqueue_chunk(store, &batch).await?;
        for (&i, new) in chunk.iter().zip(stored) {
            fresh[i] = new;
        }
    }
    Ok(fresh)
}

/// Enqueues `jobs` (distinct keys, at most [`ENQUEUE_CHUNK`]) in one transaction; returns
/// which were new. Duplicates found by the transaction are dropped and the rest retried.
async fn enqueue_chunk(store: &DynamoStore, jobs: &[&NewJob]) -> Result<Vec<bool>, StoreError> {
    const OP: &str = "enqueue";
    let mut fresh = vec![false; jobs.len()];
    // Indexes (into `jobs`) still to insert.
    let mut todo: Vec<usize> = (0..jobs.len()).collect();
    let mut last_codes = Vec::new();
    for _ in 0..=jobs.len() + RACE_ATTEMPTS {
        if todo.is_empty() {
            return Ok(fresh);
        }
        let now_s = store.now_s();
        let mut items = Vec::with_capacity(todo.len() * 2);
        let mut lanes: Vec<(JobQueue, &Lane, Vec<String>)> = Vec::new();
        for &i in &todo {
            let job = jobs[i];
            let mut e = Expr::new();
            let cond = absent_or_expired(&mut e, now_s);
            items.push(tx_put(&store.tables.jobs, new_job_item(job), &e, cond)?);
            let m = member(job.order_key, job.key.as_str());
            match lanes
                .iter_mut()
                .find(|(q, l, _)| *q == job.queue && **l == job.lane)
            {
                Some((_, _, members)) => members.push(m),
                None => lanes.push((job.queue, &job.lane, vec![m])),
            }
        }
        for (queue, lane, members) in lanes {
            items.push(lane_add(store, queue, lane, members)?);
        }
        match store.calls.transact(OP, "jobs+lanes", items).await? {
            Tx::Committed => {
                for &i in &todo {
                    fresh[i] = true;
                }
                return Ok(fresh);
            }
            Tx::Cancelled(codes) => {
                // The job Puts come first, in `todo` order.
                let mut duplicates: Vec<usize> = todo
                    .iter()
                    .enumerate()
                    .filter(|(pos, _)| Tx::failed(&codes, *pos))
                    .map(|(_, &i)| i)
                    .collect();
                if duplicates.is_empty() {
                    // No per-item reasons: look the keys up.
                    let found = store
                        .calls
                        .batch_get(
                            OP,
                            &store.tables.jobs,
                            PK,
                            todo.iter()
                                .map(|&i| job_pk(jobs[i].queue, jobs[i].key.as_str())),
                        )
                        .await?;
                    let now_s = store.now_s();
                    duplicates = todo
                        .iter()
                        .copied()
                        .filter(|&i| {
                            found
                                .get(&job_pk(jobs[i].queue, jobs[i].key.as_str()))
                                .is_some_and(|item| !is_expired(item, now_s))
                        })
                        .collect();
                }
                if duplicates.is_empty() {
                    tracing::debug!(?codes, "enqueue transaction cancelled; retrying");
                }
                todo.retain(|i| !duplicates.contains(i));
                last_codes = codes;
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb enqueue: the transaction kept being cancelled (reasons {last_codes:?})"
    )))
}

/// Two GetItems (the job, its lane) and one transaction: a check that the lane is unchanged
/// since it was read (so the job is still its head), and the job update under the
/// compare-and-set condition "pending and due, or processing with an expired lease".
pub(super) async fn claim(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    lease_until_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "claim";
    for _ in 0..RACE_ATTEMPTS {
        let Some(job) = store.get_job(OP, queue, key).await? else {
            return Ok(false);
        };
        let due = match job.state {
            JobState::Pending => job.not_before_ms <= now_ms,
            JobState::Processing => job.lease_until_ms <= now_ms,
            JobState::Done | JobState::Failed => false,
        };
        if !due {
            return Ok(false);
        }
        let Some(ver) = version_if_head(store, OP, queue, &job).await? else {
            return Ok(false);
        };
        let check = lane_unchanged(store, queue, &job.lane, ver)?;

        let mut e = Expr::new();
        state_clauses(store, &mut e, queue, JobState::Processing, now_ms);
        e.increment(ATTEMPTS, 1)
            .set(LEASE_UNTIL_MS, n(lease_until_ms))
            .set_if_absent(FIRST_CLAIMED_AT_MS, n(now_ms));
        let now = e.v("now", n(now_ms));
        let cond = format!(
            "({st} = {pending} AND {nb} <= {now}) OR ({st} = {processing} AND {lu} <= {now})",
            st = e.n(STATE),
            pending = e.v("pending", s(JobState::Pending.as_str())),
            processing = e.v("processing", s(JobState::Processing.as_str())),
            nb = e.n(NOT_BEFORE_MS),
            lu = e.n(LEASE_UNTIL_MS),
        );
        let job_key = key_of(PK, job_pk(queue, key.as_str()));
        let update = tx_update(&store.tables.jobs, job_key, &e, Some(cond))?;
        match store
            .calls
            .transact(OP, "jobs+lanes", vec![check, update])
            .await?
        {
            Tx::Committed => return Ok(true),
            // Taken by someone else, or no longer due.
            Tx::Cancelled(codes) if Tx::failed(&codes, 1) => return Ok(false),
            // The lane changed since it was read: look again.
            Tx::Cancelled(_) => {}
        }
    }
    Ok(false)
}

/// One conditional UpdateItem under the claim fence; the job stays processing (its index
/// keys and its lane item are untouched).
pub(super) async fn renew_lease(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    lease_until_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "renew_lease";
    let mut e = Expr::new();
    e.set(LEASE_UNTIL_MS, n(lease_until_ms))
        .set(UPDATED_AT_MS, n(now_ms));
    update_claimed(store, OP, queue, key, attempt, e).await
}

/// One conditional UpdateItem: processing → pending keeps the job open, so its lane item
/// (`open` holds it either way) is not touched.
pub(super) async fn reschedule(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    not_before_ms: i64,
    error: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "reschedule";
    let mut e = Expr::new();
    state_clauses(store, &mut e, queue, JobState::Pending, now_ms);
    e.set(NOT_BEFORE_MS, n(not_before_ms))
        .set(LEASE_UNTIL_MS, n(0))
        .set(LAST_ERROR, s(error));
    update_claimed(store, OP, queue, key, attempt, e).await
}

/// A GetItem (for the job's lane and order) and one transaction: the job update under the
/// claim fence, and the removal of its member from the lane's `open` set.
pub(super) async fn finish(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    state: FinalState,
    error: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let change = Change {
        from: Some(JobState::Processing),
        attempts: Some(attempt),
        to: state.state(),
        at_ms: now_ms,
    };
    transition(store, "finish", queue, key, change, |e| {
        e.set(LEASE_UNTIL_MS, n(0));
        if let Some(error) = error {
            e.set(LAST_ERROR, s(error));
        }
    })
    .await
}

pub(super) async fn job(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
) -> Result<Option<Job>, StoreError> {
    store.get_job("job", queue, key).await
}

/// Counts the `by_state` index entries of each state (keys only, at most `limit` per state);
/// the first one of an open state is its oldest (the index is ordered by `accepted_key`).
pub(super) async fn backlog(
    store: &DynamoStore,
    queue: JobQueue,
    limit: usize,
) -> Result<Backlog, StoreError> {
    const OP: &str = "backlog";
    let mut backlog = Backlog::default();
    if limit == 0 {
        return Ok(backlog);
    }
    for state in [JobState::Pending, JobState::Processing, JobState::Failed] {
        let mut e = Expr::new();
        let cond = e.eq(QUEUE_STATE, "qs", s(queue_state(queue, state)));
        let items = store
            .calls
            .query(OP, &store.tables.jobs, BY_STATE, &e, cond, Some(limit))
            .await?;
        let count = items.len().min(limit) as u64;
        match state {
            JobState::Pending => backlog.pending = count,
            JobState::Processing => backlog.processing = count,
            _ => backlog.failed = count,
        }
        if state != JobState::Failed
            && let Some(first) = items.first()
        {
            let at = accepted_at_of(Reader::new(first, "job index entry").s(ACCEPTED_KEY)?)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("{OP}: an unreadable {ACCEPTED_KEY} in the index"))
                })?;
            backlog.oldest_open_accepted_ms =
                Some(backlog.oldest_open_accepted_ms.map_or(at, |o| o.min(at)));
        }
    }
    Ok(backlog)
}

/// One Query of `by_state` per state listed, then the jobs by strongly consistent
/// BatchGetItems: the table, not the index, has the last word.
pub(super) async fn jobs(
    store: &DynamoStore,
    queue: JobQueue,
    state: Option<JobState>,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    const OP: &str = "jobs";
    if limit == 0 {
        return Ok(Vec::new());
    }
    let states = match state {
        Some(state) => vec![state],
        None => ALL_STATES.to_vec(),
    };
    // (accepted_key, pk): the index order is (accepted_at_ms, key) within each state.
    let mut keys: Vec<(String, String)> = Vec::new();
    for st in states {
        let mut e = Expr::new();
        let cond = e.eq(QUEUE_STATE, "qs", s(queue_state(queue, st)));
        let items = store
            .calls
            .query(OP, &store.tables.jobs, BY_STATE, &e, cond, Some(limit))
            .await?;
        for item in items.iter().take(limit) {
            let r = Reader::new(item, "job index entry");
            keys.push((r.s(ACCEPTED_KEY)?.to_owned(), r.s(PK)?.to_owned()));
        }
    }
    keys.sort();
    keys.truncate(limit);
    let found = store
        .calls
        .batch_get(
            OP,
            &store.tables.jobs,
            PK,
            keys.into_iter().map(|(_, pk)| pk),
        )
        .await?;
    let now_s = store.now_s();
    let mut jobs = found
        .values()
        .filter(|item| !is_expired(item, now_s))
        .map(job_from_item)
        .collect::<Result<Vec<_>, _>>()?;
    // The index may be a moment behind the table: the table has the last word.
    jobs.retain(|j| j.queue == queue && state.is_none_or(|s| j.state == s));
    jobs.sort_by(|a, b| (a.accepted_at_ms, &a.key).cmp(&(b.accepted_at_ms, &b.key)));
    jobs.truncate(limit);
    Ok(jobs)
}

/// A GetItem and one transaction (job + lane), like `finish`, but not fenced by a claim.
pub(super) async fn retry_failed(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let change = Change {
        from: Some(JobState::Failed),
        attempts: None,
        to: JobState::Pending,
        at_ms: now_ms,
    };
    // A new start (see `Store::retry_failed`): the next claim sets a new first-claim time.
    transition(store, "retry_failed", queue, key, change, |e| {
        e.set(ATTEMPTS, n(0))
            .set(NOT_BEFORE_MS, n(now_ms))
            .remove(FIRST_CLAIMED_AT_MS);
    })
    .await
}

/// One Query of `by_state` for the processing jobs, then one conditional UpdateItem each (the
/// job stays open: its lane is untouched).
pub(super) async fn release_claims(
    store: &DynamoStore,
    queue: JobQueue,
    now_ms: i64,
) -> Result<u64, StoreError> {
    const OP: &str = "release_claims";
    let table = store.tables.jobs.as_str();
    let mut e = Expr::new();
    let cond = e.eq(
        QUEUE_STATE,
        "qs",
        s(queue_state(queue, JobState::Processing)),
    );
    let items = store
        .calls
        .query(OP, table, BY_STATE, &e, cond, None)
        .await?;

    let mut e = Expr::new();
    state_clauses(store, &mut e, queue, JobState::Pending, now_ms);
    e.set(LEASE_UNTIL_MS, n(0)).set(NOT_BEFORE_MS, n(now_ms));
    let cond = is_processing(&mut e);
    let e = &e;
    count_written(keys_of(&items, PK).into_iter().map(|k| {
        store
            .calls
            .update(OP, table, key_of(PK, k), e, cond.clone())
    }))
    .await
}
