//! Jobs (the inbox and the outbox): the `jobs` table. Enqueue with deduplication, claims,
//! leases and their fencing, the holder's and the operator's state changes, and listing (see
//! "Deduplication", "Lane order across processes" and "Fencing" in `mod.rs`). A job that becomes
//! open joins its lane in the same transaction; a job that finishes leaves it right after its
//! own update (`lanes.rs`).

use aws_sdk_dynamodb::types::ReturnValue;
use xdm_core::jobs::{Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::ports::StoreError;

use super::calls::{BATCH_GET_MAX, Tx, Written, count_written, tx_put, tx_update};
use super::expr::Expr;
use super::items::{
    ACCEPTED_KEY, ATTEMPTS, EXPIRES_AT, FINISHED_QUEUE, FIRST_CLAIMED_AT_MS, Item, LAST_ERROR,
    LEASE_UNTIL_MS, NOT_BEFORE_MS, PK, QUEUE_STATE, Reader, STATE, UPDATED_AT_MS, accepted_at_of,
    former_queue_state, is_expired, job_from_item, job_pk, key_of, keys_of, member, n,
    new_job_item, queue_state, s,
};
use super::lanes::{self, is_head, lane_add, lane_remove};
use super::store::{DynamoStore, RACE_ATTEMPTS, absent_or_expired};
use super::tables::BY_STATE;

/// Jobs per enqueue transaction (each may need a lane update too: 2 × 50 = 100 actions).
const ENQUEUE_CHUNK: usize = 50;

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

/// Two GetItems (the job, its lane: is the job due, and its lane's head?), one UpdateItem of the
/// job under the compare-and-set condition "pending and due, or processing with an expired
/// lease", then one more GetItem of the lane: if a job that runs before this one joined the lane
/// in the meantime, the claim is given back ([`give_back`]) and `false` returned. A transaction
/// checking the lane's `ver` would decide the same at twice the write cost (a transaction's
/// items are billed double) and still let a job that joins just after the commit be claimed
/// beside this one; the read after the update does not.
pub(super) async fn claim(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    lease_until_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "claim";
    let Some(job) = store.get_job(OP, queue, key).await? else {
        return Ok(false);
    };
    let due = match job.state {
        JobState::Pending => job.not_before_ms <= now_ms,
        JobState::Processing => job.lease_until_ms <= now_ms,
        JobState::Done | JobState::Failed => false,
    };
    if !due || !is_head(store, OP, queue, &job).await? {
        return Ok(false);
    }
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
    // Taken by someone else, or no longer due.
    if store
        .calls
        .update(OP, &store.tables.jobs, job_key, &e, cond)
        .await?
        == Written::ConditionFailed
    {
        return Ok(false);
    }
    if is_head(store, OP, queue, &job).await? {
        return Ok(true);
    }
    give_back(store, queue, &job, now_ms).await?;
    Ok(false)
}

/// Undoes the claim `claim` has just made of `job` (read before it): pending again, with the
/// `attempts` and first-claim time it had, under the claim's fence (the claim was never used,
/// so its number may be handed out again). Should this write not happen, the lease runs out
/// and the job is claimed again, one attempt later.
async fn give_back(
    store: &DynamoStore,
    queue: JobQueue,
    job: &Job,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut e = Expr::new();
    state_clauses(store, &mut e, queue, JobState::Pending, now_ms);
    e.increment(ATTEMPTS, -1).set(LEASE_UNTIL_MS, n(0));
    if job.first_claimed_at_ms.is_none() {
        e.remove(FIRST_CLAIMED_AT_MS);
    }
    tracing::debug!(
        queue = queue.as_str(),
        key = job.key.as_str(),
        "a job that runs first joined the lane during the claim; claim given back"
    );
    update_claimed(store, "claim", queue, &job.key, job.attempts + 1, e).await?;
    Ok(())
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

/// One UpdateItem of the job under the claim fence (returning the job, for its lane and
/// order), then one UpdateItem of its lane that removes the job's member. Two writes instead of
/// a transaction, which is billed double: a process that stops between them leaves a finished
/// job at its lane's head, which the next read of the lane removes (`lanes.rs`, `fresh_head`),
/// and until then the lane waits — nothing runs twice or out of order.
pub(super) async fn finish(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    attempt: u32,
    state: FinalState,
    error: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "finish";
    let mut e = Expr::new();
    state_clauses(store, &mut e, queue, state.state(), now_ms);
    e.set(LEASE_UNTIL_MS, n(0));
    if let Some(error) = error {
        e.set(LAST_ERROR, s(error));
    }
    let cond = format!(
        "{} AND {}",
        is_processing(&mut e),
        claim_fence(&mut e, attempt)
    );
    let job_key = key_of(PK, job_pk(queue, key.as_str()));
    let Some(item) = store
        .calls
        .update_returning(
            OP,
            &store.tables.jobs,
            job_key,
            &e,
            Some(cond),
            ReturnValue::AllNew,
        )
        .await?
    else {
        return Ok(false);
    };
    let job = job_from_item(&item)?;
    let member = member(job.order_key, job.key.as_str());
    if let Err(e) = lane_remove(store, OP, queue, &job.lane, member).await {
        // The job is finished; its lane is mended by the next read of it.
        tracing::warn!(queue = queue.as_str(), key = key.as_str(), error = %e,
            "a finished job is still listed in its lane");
    }
    Ok(true)
}

pub(super) async fn job(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
) -> Result<Option<Job>, StoreError> {
    store.get_job("job", queue, key).await
}

/// The `by_state` entries (keys only) of the open jobs, oldest accepted first, at most `max`:
/// the `open` partition and the former ones of pending and processing jobs
/// ([`former_queue_state`]).
async fn open_entries(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    max: Option<usize>,
) -> Result<Vec<Item>, StoreError> {
    let partitions = std::iter::once(queue_state(queue, JobState::Pending)).chain(
        [JobState::Pending, JobState::Processing]
            .into_iter()
            .filter_map(|state| former_queue_state(queue, state)),
    );
    let mut entries = Vec::new();
    for partition in partitions {
        entries.extend(index_entries(store, op, partition, max).await?);
    }
    let mut keyed = entries
        .into_iter()
        .map(|item| {
            Ok((
                Reader::new(&item, "job index entry")
                    .s(ACCEPTED_KEY)?
                    .to_owned(),
                item,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut entries: Vec<Item> = keyed.into_iter().map(|(_, item)| item).collect();
    if let Some(max) = max {
        entries.truncate(max);
    }
    Ok(entries)
}

/// The `by_state` entries of one partition (`queue_state`), in index order, at most `max`.
async fn index_entries(
    store: &DynamoStore,
    op: &'static str,
    partition: String,
    max: Option<usize>,
) -> Result<Vec<Item>, StoreError> {
    let mut e = Expr::new();
    let cond = e.eq(QUEUE_STATE, "qs", s(partition));
    store
        .calls
        .query(op, &store.tables.jobs, BY_STATE, &e, cond, max)
        .await
}

/// The open jobs counted in `by_state` (keys only, at most `limit`; the first is the oldest),
/// the failed ones likewise, and the processing ones among the lanes' heads (a claim is
/// always made of a head; a job claimed just before an earlier one joined its lane counts as
/// pending until it finishes). Reading the heads costs one item per open lane, not one per open
/// job: an outage's backlog of thousands is counted without reading them.
pub(super) async fn backlog(
    store: &DynamoStore,
    queue: JobQueue,
    limit: usize,
) -> Result<Backlog, StoreError> {
    const OP: &str = "backlog";
    if limit == 0 {
        return Ok(Backlog::default());
    }
    let processing = lanes::heads(store, OP, queue)
        .await?
        .iter()
        .filter(|j| j.state == JobState::Processing)
        .count();
    // Enough entries to count `limit` pending jobs beside the processing ones.
    let open = open_entries(store, OP, queue, Some(limit + processing)).await?;
    let failed =
        index_entries(store, OP, queue_state(queue, JobState::Failed), Some(limit)).await?;
    let oldest_open_accepted_ms = match open.first() {
        Some(first) => Some(
            accepted_at_of(Reader::new(first, "job index entry").s(ACCEPTED_KEY)?).ok_or_else(
                || StoreError::Corrupt(format!("{OP}: an unreadable {ACCEPTED_KEY} in the index")),
            )?,
        ),
        None => None,
    };
    let processing = (processing as u64).min(limit as u64);
    Ok(Backlog {
        pending: (open.len() as u64)
            .saturating_sub(processing)
            .min(limit as u64),
        processing,
        failed: failed.len().min(limit) as u64,
        oldest_open_accepted_ms,
    })
}

/// Queries of `by_state` (the partitions of the states listed), then the jobs by strongly
/// consistent BatchGetItems in index order, until `limit` of them are in the state asked for:
/// the table, not the index, has the last word (and tells pending from processing, which share
/// a partition).
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
    let mut entries = Vec::new();
    if state.is_none_or(JobState::is_open) {
        // Pending and processing jobs share a partition: listing one of them may have to read
        // past `limit` entries of the other.
        let max = state.is_none().then_some(limit);
        entries.extend(open_entries(store, OP, queue, max).await?);
    }
    for finished in [JobState::Done, JobState::Failed] {
        if state.is_none_or(|s| s == finished) {
            let partition = queue_state(queue, finished);
            entries.extend(index_entries(store, OP, partition, Some(limit)).await?);
        }
    }
    // (accepted_key, pk): the index order is (accepted_at_ms, key) within each partition.
    let mut keys: Vec<(String, String)> = entries
        .iter()
        .map(|item| {
            let r = Reader::new(item, "job index entry");
            Ok((r.s(ACCEPTED_KEY)?.to_owned(), r.s(PK)?.to_owned()))
        })
        .collect::<Result<_, StoreError>>()?;
    keys.sort();
    keys.dedup();
    let now_s = store.now_s();
    let mut jobs = Vec::new();
    for chunk in keys.chunks(BATCH_GET_MAX) {
        let found = store
            .calls
            .batch_get(
                OP,
                &store.tables.jobs,
                PK,
                chunk.iter().map(|(_, pk)| pk.clone()),
            )
            .await?;
        for (_, pk) in chunk {
            if let Some(item) = found.get(pk).filter(|item| !is_expired(item, now_s)) {
                let job = job_from_item(item)?;
                // The index may be a moment behind the table.
                if job.queue == queue && state.is_none_or(|s| job.state == s) {
                    jobs.push(job);
                }
            }
        }
        if jobs.len() >= limit {
            break;
        }
    }
    jobs.sort_by(|a, b| (a.accepted_at_ms, &a.key).cmp(&(b.accepted_at_ms, &b.key)));
    jobs.truncate(limit);
    Ok(jobs)
}

/// A GetItem (for the job's lane and order) and one transaction: the job back to pending under
/// the condition that it is still failed, and its member added to its lane.
pub(super) async fn retry_failed(
    store: &DynamoStore,
    queue: JobQueue,
    key: &JobKey,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "retry_failed";
    for _ in 0..RACE_ATTEMPTS {
        let Some(job) = store.get_job(OP, queue, key).await? else {
            return Ok(false);
        };
        if job.state != JobState::Failed {
            return Ok(false);
        }
        let mut e = Expr::new();
        state_clauses(store, &mut e, queue, JobState::Pending, now_ms);
        // A new start (see `Store::retry_failed`): the next claim sets a new first-claim time.
        e.set(ATTEMPTS, n(0))
            .set(NOT_BEFORE_MS, n(now_ms))
            .remove(FIRST_CLAIMED_AT_MS);
        let cond = format!(
            "attribute_exists({}) AND {}",
            e.n(PK),
            e.eq(STATE, "failed", s(JobState::Failed.as_str()))
        );
        let job_key = key_of(PK, job_pk(queue, key.as_str()));
        let items = vec![
            tx_update(&store.tables.jobs, job_key, &e, Some(cond))?,
            lane_add(
                store,
                queue,
                &job.lane,
                vec![member(job.order_key, job.key.as_str())],
            )?,
        ];
        match store.calls.transact(OP, "jobs+lanes", items).await? {
            Tx::Committed => return Ok(true),
            Tx::Cancelled(_) => {}
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb {OP}: job {}/{key} kept changing while it was updated",
        queue.as_str()
    )))
}

/// The open jobs' `by_state` entries, the jobs by strongly consistent BatchGetItems, then one
/// conditional UpdateItem per processing job (it stays open: its lane is untouched).
pub(super) async fn release_claims(
    store: &DynamoStore,
    queue: JobQueue,
    now_ms: i64,
) -> Result<u64, StoreError> {
    const OP: &str = "release_claims";
    let table = store.tables.jobs.as_str();
    let entries = open_entries(store, OP, queue, None).await?;
    let found = store
        .calls
        .batch_get(OP, table, PK, keys_of(&entries, PK))
        .await?;
    let mut processing = Vec::new();
    for (pk, item) in &found {
        if job_from_item(item)?.state == JobState::Processing {
            processing.push(pk.clone());
        }
    }

    let mut e = Expr::new();
    state_clauses(store, &mut e, queue, JobState::Pending, now_ms);
    e.set(LEASE_UNTIL_MS, n(0)).set(NOT_BEFORE_MS, n(now_ms));
    let cond = is_processing(&mut e);
    let e = &e;
    count_written(processing.into_iter().map(|k| {
        store
            .calls
            .update(OP, table, key_of(PK, k), e, cond.clone())
    }))
    .await
}
