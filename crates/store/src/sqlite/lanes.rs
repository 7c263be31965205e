//! Lanes: which job of each lane runs next. The order within each lane is kept in memory
//! (`lane_order.rs`); the jobs themselves are read from `jobs` by their key, and `claim`
//! (`jobs.rs`) re-checks the order in the transaction that takes the job.

use std::sync::Arc;

use rusqlite::{Connection, params};
use xdm_core::jobs::{Backlog, Job, JobQueue, JobState, Lane, LaneEntry};
use xdm_core::ports::StoreError;

use super::jobs::{SQL_COUNT_FAILED, SQL_JOB};
use super::lane_order::{LaneOrder, Place};
use super::rows::{DbError, job_from_row, query_one, sql_limit};
use super::store::SqliteStore;

/// True for a head under an unexpired lease: nobody may run it now, so it is not returned.
fn leased(job: &Job, now_ms: i64) -> bool {
    job.state == JobState::Processing && job.lease_until_ms > now_ms
}

/// The open job at `place` of `queue`. A job the order holds but the file has not open (which
/// only a change the order missed could cause) makes the order be read again, and `None`.
fn open_job(
    conn: &Connection,
    order: &LaneOrder,
    queue: JobQueue,
    place: &Place,
) -> Result<Option<Job>, DbError> {
    let job = query_one(
        conn,
        SQL_JOB,
        params![queue.as_str(), place.1.as_str()],
        job_from_row,
    )?;
    match job {
        Some(job) if matches!(job.state, JobState::Pending | JobState::Processing) => Ok(Some(job)),
        _ => {
            tracing::warn!(job = %place.1, "the lane order held a job that is not open: read again");
            order.forget();
            Ok(None)
        }
    }
}

/// The first open job of `lane` as this connection's writes left it ([`LaneOrder::own`]: its
/// claim tests it against other connections' commits too), read again once if the order turned
/// out stale.
fn head(
    conn: &Connection,
    order: &LaneOrder,
    queue: JobQueue,
    lane: &Lane,
) -> Result<Option<Job>, DbError> {
    for _ in 0..2 {
        let Some(place) = order.own(conn)?.head(queue, lane) else {
            return Ok(None);
        };
        if let Some(job) = open_job(conn, order, queue, &place)? {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Heads due soonest first: a processing head when its lease runs out, a pending one when it may
/// run; then by key. Heads under an unexpired lease are left out.
pub(super) async fn lane_heads(
    store: &SqliteStore,
    queue: JobQueue,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .read("lane_heads", move |conn| {
            let places = order.current(conn)?.heads(queue);
            let mut heads = Vec::with_capacity(places.len());
            for place in &places {
                if let Some(job) = open_job(conn, &order, queue, place)?
                    && !leased(&job, now_ms)
                {
                    heads.push(job);
                }
            }
            heads.sort_by(|a, b| {
                let due = |j: &Job| match j.state {
                    JobState::Processing => j.lease_until_ms,
                    _ => j.not_before_ms,
                };
                due(a).cmp(&due(b)).then_with(|| a.key.cmp(&b.key))
            });
            heads.truncate(limit);
            Ok(heads)
        })
        .await
}

/// One lane's head, unless it is under an unexpired lease.
pub(super) async fn lane_head(
    store: &SqliteStore,
    queue: JobQueue,
    lane: &Lane,
    now_ms: i64,
) -> Result<Option<Job>, StoreError> {
    let lane = lane.to_owned();
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .read("lane_head", move |conn| {
            Ok(head(conn, &order, queue, &lane)?.filter(|job| !leased(job, now_ms)))
        })
        .await
}

/// One lane's open jobs in running order, as this connection's writes left them (for merging a
/// lane's waiting messages: a job another connection added since is delivered on its own).
pub(super) async fn lane_jobs(
    store: &SqliteStore,
    queue: JobQueue,
    lane: &Lane,
    limit: usize,
) -> Result<Vec<LaneEntry>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let lane = lane.to_owned();
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .read("lane_jobs", move |conn| {
            Ok(order
                .own(conn)?
                .jobs(queue, &lane, limit)
                .into_iter()
                .map(|(order_key, key)| LaneEntry { order_key, key })
                .collect())
        })
        .await
}

/// For the backlog: how many lanes' heads are processing, and the earliest acceptance among the
/// heads (see [`backlog`]), with the number of open jobs.
fn heads_summary(
    conn: &Connection,
    order: &LaneOrder,
    queue: JobQueue,
) -> Result<(usize, Option<i64>, usize), DbError> {
    let (places, open) = {
        let current = order.current(conn)?;
        (current.heads(queue), current.open_jobs(queue))
    };
    let mut processing = 0;
    let mut oldest: Option<i64> = None;
    for place in &places {
        if let Some(job) = open_job(conn, order, queue, place)? {
            if job.state == JobState::Processing {
                processing += 1;
            }
            oldest = Some(oldest.map_or(job.accepted_at_ms, |o| o.min(job.accepted_at_ms)));
        }
    }
    Ok((processing, oldest, open))
}

/// As the DynamoDB store counts it: the lanes' heads say how many jobs are processing (a claim is
/// always of its lane's head; a job claimed just before an earlier one joined its lane counts as
/// pending until it finishes) and when the oldest open job was accepted, the open jobs counted up
/// to `limit` beside them are the rest. The heads' earliest acceptance is the oldest open job's
/// but for a job behind its lane's head accepted before it: one X delivered after a later DM of
/// the same customer, by as long as X held it back. The open jobs are counted in the lane order
/// (memory), the heads read by their key.
pub(super) async fn backlog(
    store: &SqliteStore,
    queue: JobQueue,
    limit: usize,
) -> Result<Backlog, StoreError> {
    if limit == 0 {
        return Ok(Backlog::default());
    }
    let order = Arc::clone(&store.lane_order);
    store
        .worker
        .call("backlog", move |conn| {
            let q = queue.as_str();
            let (processing, oldest, open) = heads_summary(conn, &order, queue)?;
            let failed = query_one(
                conn,
                SQL_COUNT_FAILED,
                params![q, sql_limit(limit)],
                |row| Ok(row.get::<_, i64>(0)?),
            )?
            .unwrap_or(0);
            Ok(Backlog {
                pending: open.saturating_sub(processing).min(limit) as u64,
                processing: processing.min(limit) as u64,
                failed: usize::try_from(failed).unwrap_or(0) as u64,
                oldest_open_accepted_ms: oldest,
            })
        })
        .await
}
