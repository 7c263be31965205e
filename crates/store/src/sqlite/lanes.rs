//! Lanes: which job of each lane runs next. SQLite keeps no lane table: a lane's head is the
//! first of its open jobs in the partial index `jobs_open_by_lane`, and `claim` (`jobs.rs`)
//! re-checks that in its compare-and-set.

use rusqlite::params;
use xdm_core::jobs::{Job, JobKey, JobQueue, Lane, LaneEntry};
use xdm_core::ports::StoreError;

use super::rows::{DbError, job_columns, job_from_row, query_all, query_one, sql_limit};
use super::store::SqliteStore;

// `pub(super)` so the unit tests (`tests.rs`) can check the query plans.

/// The distinct lanes of queue ?1's open jobs, as the recursive table `lanes(name)`: a hop from
/// one lane to the next in `jobs_open_by_lane` (a skip-scan), one index seek per lane rather than
/// one step per open job.
macro_rules! open_lanes {
    () => {
        "WITH RECURSIVE lanes(name) AS ( \
             SELECT min(lane) FROM jobs \
             WHERE queue = ?1 AND state IN ('pending', 'processing') \
           UNION ALL \
             SELECT (SELECT min(n.lane) FROM jobs AS n \
                     WHERE n.queue = ?1 AND n.state IN ('pending', 'processing') \
                       AND n.lane > lanes.name) \
             FROM lanes WHERE lanes.name IS NOT NULL) "
    };
}

/// Joins each lane of [`open_lanes`] to its head `j`: the first entry of its range in
/// `jobs_open_by_lane` (one index seek).
macro_rules! lane_heads_join {
    () => {
        " FROM lanes JOIN jobs AS j ON j.rowid = \
             (SELECT h.rowid FROM jobs AS h \
              WHERE h.queue = ?1 AND h.lane = lanes.name AND h.state IN ('pending', 'processing') \
              ORDER BY h.order_key, h.key LIMIT 1) "
    };
}

/// Heads, one index seek per lane rather than one probe per open job: [`open_lanes`] hops through
/// the distinct lanes, each lane's head is the first entry of its range, then heads under an
/// unexpired lease are dropped and the rest sorted soonest due first. Measured with 10k open jobs
/// beside 200k done ones (release build): 10 lanes 0.25 ms vs 15 ms for a NOT EXISTS probe per
/// open job; 1,000 lanes 2-4 ms vs 10-17 ms; 10,000 one-job lanes 25-31 ms vs 10-18 ms. Backlogs
/// gather in busy lanes, hence this form.
pub(super) const SQL_LANE_HEADS: &str = concat!(
    open_lanes!(),
    "SELECT ",
    job_columns!(),
    lane_heads_join!(),
    "WHERE NOT (j.state = 'processing' AND j.lease_until_ms > ?2) \
     ORDER BY CASE j.state WHEN 'processing' THEN j.lease_until_ms ELSE j.not_before_ms END, j.key \
     LIMIT ?3"
);

/// For the backlog: how many lanes' heads are processing, and the earliest acceptance among the
/// heads (see [`backlog`](super::jobs::backlog) for why that is the oldest open job's). One index
/// seek per lane, whatever the number of open jobs.
pub(super) const SQL_HEADS_SUMMARY: &str = concat!(
    open_lanes!(),
    "SELECT COUNT(*) FILTER (WHERE j.state = 'processing'), MIN(j.accepted_at_ms)",
    lane_heads_join!()
);

/// One lane's head: the first entry of its range in `jobs_open_by_lane` (one index seek), unless
/// it is under an unexpired lease.
pub(super) const SQL_LANE_HEAD: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs AS j WHERE j.rowid = \
         (SELECT h.rowid FROM jobs AS h \
          WHERE h.queue = ?1 AND h.lane = ?2 AND h.state IN ('pending', 'processing') \
          ORDER BY h.order_key, h.key LIMIT 1) \
       AND NOT (j.state = 'processing' AND j.lease_until_ms > ?3)"
);

/// One lane's open jobs in running order: a range of `jobs_open_by_lane`.
pub(super) const SQL_LANE_JOBS: &str = "SELECT order_key, key FROM jobs \
     WHERE queue = ?1 AND lane = ?2 AND state IN ('pending', 'processing') \
     ORDER BY order_key, key LIMIT ?3";

pub(super) async fn lane_heads(
    store: &SqliteStore,
    queue: JobQueue,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    store
        .worker
        .read("lane_heads", move |conn| {
            query_all(
                conn,
                SQL_LANE_HEADS,
                params![queue.as_str(), now_ms, sql_limit(limit)],
                job_from_row,
            )
        })
        .await
}

pub(super) async fn lane_head(
    store: &SqliteStore,
    queue: JobQueue,
    lane: &Lane,
    now_ms: i64,
) -> Result<Option<Job>, StoreError> {
    let lane = lane.to_owned();
    store
        .worker
        .read("lane_head", move |conn| {
            query_one(
                conn,
                SQL_LANE_HEAD,
                params![queue.as_str(), lane.as_str(), now_ms],
                job_from_row,
            )
        })
        .await
}

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
    store
        .worker
        .read("lane_jobs", move |conn| {
            query_all(
                conn,
                SQL_LANE_JOBS,
                params![queue.as_str(), lane.as_str(), sql_limit(limit)],
                |row| {
                    let key: String = row.get(1)?;
                    Ok(LaneEntry {
                        order_key: row.get(0)?,
                        key: JobKey::parse(key.clone())
                            .map_err(|e| DbError::Corrupt(format!("job {key:?}: {e}")))?,
                    })
                },
            )
        })
        .await
}
