//! Lanes: the item per lane in the `lanes` table, whose `open` set lists the lane's open jobs in
//! run order, and the lane heads read from it (see "Lane order across processes" and
//! "lane_heads" in `mod.rs`). `jobs.rs` changes a lane only through the updates made here, and
//! reads whether a job heads its lane through [`is_head`].

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use xdm_core::jobs::{Job, JobKey, JobNameError, JobQueue, JobState, Lane, LaneEntry};
use xdm_core::ports::StoreError;

use super::calls::{Written, tx_update};
use super::expr::Expr;
use super::items::{
    self, EXPIRES_AT, LANE, OPEN, OPEN_QUEUE, PK, QUEUE, Reader, VER, job_from_item, job_pk,
    key_of, lane_pk, member, n, parse_member, s,
};
use super::store::{DynamoStore, RACE_ATTEMPTS};
use super::tables::OPEN_LANES;

/// The transaction item that adds `members` (open jobs) to a lane, creating the lane item if
/// needed and listing it in `open_lanes`.
pub(super) fn lane_add(
    store: &DynamoStore,
    queue: JobQueue,
    lane: &Lane,
    members: Vec<String>,
) -> Result<TransactWriteItem, StoreError> {
    let mut e = Expr::new();
    e.set(QUEUE, s(queue.as_str()))
        .set(LANE, s(lane.as_str()))
        .set(OPEN_QUEUE, s(queue.as_str()))
        .remove(EXPIRES_AT)
        .add(OPEN, AttributeValue::Ss(members))
        .add(VER, n(1));
    tx_update(
        &store.tables.lanes,
        key_of(PK, lane_pk(queue, lane.as_str())),
        &e,
        None,
    )
}

/// Removes a job that is no longer open from its lane: one UpdateItem, made after the job's own
/// update (`finish`). A crash between the two leaves the member of a finished job at the
/// lane's head, which the next read of the lane removes ([`fresh_head`]); a lane item that is
/// missing is not created.
pub(super) async fn lane_remove(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    lane: &Lane,
    member: String,
) -> Result<(), StoreError> {
    let mut e = without_member(member);
    let cond = format!("attribute_exists({})", e.n(PK));
    update_lane(store, op, queue, lane, &e, cond).await?;
    Ok(())
}

/// The clauses that take `member` out of a lane's `open` set, bumping `ver`.
fn without_member(member: String) -> Expr {
    let mut e = Expr::new();
    e.delete(OPEN, AttributeValue::Ss(vec![member]))
        .add(VER, n(1));
    e
}

/// One UpdateItem of the item of `lane`, applied only while `cond` (built in `e`) holds.
async fn update_lane(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    lane: &Lane,
    e: &Expr,
    cond: String,
) -> Result<Written, StoreError> {
    let lane_key = key_of(PK, lane_pk(queue, lane.as_str()));
    store
        .calls
        .update(op, &store.tables.lanes, lane_key, e, cond)
        .await
}

/// Whether `job` is its lane's head, read consistently from the lane item (`false` if the
/// lane item is missing). `claim` asks before and after its update of the job.
pub(super) async fn is_head(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    job: &Job,
) -> Result<bool, StoreError> {
    let lane_key = key_of(PK, lane_pk(queue, job.lane.as_str()));
    let Some(lane) = store.calls.get(op, &store.tables.lanes, lane_key).await? else {
        tracing::warn!(
            queue = queue.as_str(),
            key = job.key.as_str(),
            "an open job has no lane item"
        );
        return Ok(false);
    };
    let r = Reader::new(&lane, "lane");
    Ok(items::lane_head(r.ss(OPEN)?) == Some(member(job.order_key, job.key.as_str()).as_str()))
}

/// Stops listing a lane whose `open` set is empty (and lets TTL delete it later). Safe
/// against a concurrent enqueue: the condition re-checks the set.
async fn retire_lane(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    lane: &Lane,
) -> Result<(), StoreError> {
    let mut e = Expr::new();
    e.remove(OPEN_QUEUE).set(EXPIRES_AT, n(store.job_ttl()));
    let cond = format!(
        "attribute_not_exists({}) AND attribute_exists({})",
        e.n(OPEN),
        e.n(OPEN_QUEUE)
    );
    update_lane(store, op, queue, lane, &e, cond).await?;
    Ok(())
}

/// The key of the job of the lane member `head`.
fn head_key<'a>(lane: &str, head: &'a str) -> Result<&'a str, StoreError> {
    let (_, key) = parse_member(head).ok_or_else(|| {
        StoreError::Corrupt(format!("dynamodb lane {lane:?}: bad member {head:?}"))
    })?;
    Ok(key)
}

fn corrupt_lane(lane: &str, e: &JobNameError) -> StoreError {
    StoreError::Corrupt(format!("dynamodb lane {lane:?}: {e}"))
}

/// True while someone holds the job: a head under an unexpired lease is not offered.
fn leased(job: &Job, now_ms: i64) -> bool {
    job.state == JobState::Processing && job.lease_until_ms > now_ms
}

/// The lane's current head, read from the lane item itself (consistently). A member whose
/// job is not open is removed: `finish` leaves one behind when its process stops between the
/// job's update and the lane's, and one bad member must not block a customer's lane forever.
async fn fresh_head(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
    lane: &Lane,
) -> Result<Option<Job>, StoreError> {
    for _ in 0..RACE_ATTEMPTS {
        let Some(item) = store
            .calls
            .get(
                op,
                &store.tables.lanes,
                key_of(PK, lane_pk(queue, lane.as_str())),
            )
            .await?
        else {
            return Ok(None);
        };
        let r = Reader::new(&item, "lane");
        let Some(head) = items::lane_head(r.ss(OPEN)?) else {
            return Ok(None);
        };
        let ver = r.n(VER)?;
        let key = JobKey::parse(head_key(lane.as_str(), head)?)
            .map_err(|e| corrupt_lane(lane.as_str(), &e))?;
        if let Some(job) = store.get_job(op, queue, &key).await?
            && job.state.is_open()
            && job.lane == *lane
        {
            return Ok(Some(job));
        }
        let mut e = without_member(head.to_owned());
        let cond = e.eq(VER, "ver", n(ver));
        if update_lane(store, op, queue, lane, &e, cond).await? == Written::Yes {
            tracing::warn!(
                queue = queue.as_str(),
                lane = lane.as_str(),
                key = key.as_str(),
                "removed a lane entry whose job is not open"
            );
        }
    }
    Ok(None)
}

/// The head job of every lane of the queue that has open jobs, leased or not: one Query of
/// `open_lanes` (paged), then the heads by strongly consistent BatchGetItems; a lane whose index
/// image was behind is read itself.
pub(super) async fn heads(
    store: &DynamoStore,
    op: &'static str,
    queue: JobQueue,
) -> Result<Vec<Job>, StoreError> {
    let mut e = Expr::new();
    let cond = e.eq(OPEN_QUEUE, "q", s(queue.as_str()));
    let lanes = store
        .calls
        .query(op, &store.tables.lanes, OPEN_LANES, &e, cond, None)
        .await?;

    // (lane, key of its head) from the index image.
    let mut candidates: Vec<(Lane, String)> = Vec::with_capacity(lanes.len());
    for item in &lanes {
        let r = Reader::new(item, "lane");
        let name = r.s(LANE)?;
        let lane = Lane::parse(name).map_err(|e| corrupt_lane(name, &e))?;
        match items::lane_head(r.ss(OPEN)?) {
            Some(head) => candidates.push((lane, head_key(name, head)?.to_owned())),
            None => retire_lane(store, op, queue, &lane).await?,
        }
    }
    let found = store
        .calls
        .batch_get(
            op,
            &store.tables.jobs,
            PK,
            candidates.iter().map(|(_, key)| job_pk(queue, key)),
        )
        .await?;
    let mut heads = Vec::with_capacity(candidates.len());
    for (lane, key) in candidates {
        let job = found
            .get(&job_pk(queue, &key))
            .map(job_from_item)
            .transpose()?;
        match job {
            Some(job) if job.state.is_open() && job.lane == lane => heads.push(job),
            // The index image was behind: ask the lane itself.
            _ => heads.extend(fresh_head(store, op, queue, &lane).await?),
        }
    }
    Ok(heads)
}

/// The heads of [`heads`] that nobody holds, soonest due first.
pub(super) async fn lane_heads(
    store: &DynamoStore,
    queue: JobQueue,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut heads = heads(store, "lane_heads", queue).await?;
    heads.retain(|j| !leased(j, now_ms));
    heads.sort_by(|a, b| (a.due_at_ms(), &a.key).cmp(&(b.due_at_ms(), &b.key)));
    heads.truncate(limit);
    Ok(heads)
}

/// Read from the lane item and the job (two strongly consistent GetItems), never from the
/// index: a process that has just enqueued into a lane (a Lambda invocation) finds its job.
pub(super) async fn lane_head(
    store: &DynamoStore,
    queue: JobQueue,
    lane: &Lane,
    now_ms: i64,
) -> Result<Option<Job>, StoreError> {
    let head = fresh_head(store, "lane_head", queue, lane).await?;
    Ok(head.filter(|j| !leased(j, now_ms)))
}

/// One lane's open jobs from its `open` set (one strongly consistent GetItem): members whose
/// job has finished but not left the set yet (a process stopped between the two writes) are
/// listed too; they sort before every job still open.
pub(super) async fn lane_jobs(
    store: &DynamoStore,
    queue: JobQueue,
    lane: &Lane,
    limit: usize,
) -> Result<Vec<LaneEntry>, StoreError> {
    let Some(item) = store
        .calls
        .get(
            "lane_jobs",
            &store.tables.lanes,
            key_of(PK, lane_pk(queue, lane.as_str())),
        )
        .await?
    else {
        return Ok(Vec::new());
    };
    let r = Reader::new(&item, "lane");
    let mut members: Vec<&String> = r.ss(OPEN)?.iter().collect();
    members.sort();
    members
        .into_iter()
        .take(limit)
        .map(|m| {
            let (order_key, key) = parse_member(m).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "dynamodb lane {:?}: unreadable member {m:?}",
                    lane.as_str()
                ))
            })?;
            let key = JobKey::parse(key.to_owned()).map_err(|e| corrupt_lane(lane.as_str(), &e))?;
            Ok(LaneEntry { order_key, key })
        })
        .collect()
}
