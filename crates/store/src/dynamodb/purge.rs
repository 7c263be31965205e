//! `purge`: deletes what the sparse age indexes list as old (finished jobs, ended sessions,
//! expired profiles), each delete conditioned on the item still being old, so several processes
//! may purge at once. With TTL enabled it mostly finds nothing left to do.

use xdm_core::jobs::JobQueue;
use xdm_core::ports::StoreError;

use super::calls::count_written;
use super::expr::Expr;
use super::items::{
    ENDED_GROUP, ENDED_GROUP_VALUE, EXPIRES_AT_MS, EXPIRY_GROUP, EXPIRY_GROUP_VALUE,
    FINISHED_QUEUE, PK, UPDATED_AT_MS, USER_ID, key_of, keys_of, n, s,
};
use super::store::DynamoStore;
use super::tables::{BY_EXPIRY, ENDED_BY_AGE, FINISHED_BY_AGE};

pub(super) async fn purge(
    store: &DynamoStore,
    jobs_before_ms: i64,
    sessions_before_ms: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    const OP: &str = "purge";
    let mut deleted = 0;

    // Done and failed jobs finished before the cut-off.
    for queue in JobQueue::ALL {
        let mut e = Expr::new();
        let cond = format!(
            "{} AND {} < {}",
            e.eq(FINISHED_QUEUE, "q", s(queue.as_str())),
            e.n(UPDATED_AT_MS),
            e.v("cut", n(jobs_before_ms))
        );
        deleted += purge_index(store, OP, &store.tables.jobs, FINISHED_BY_AGE, PK, e, cond).await?;
    }

    // Ended sessions last updated before the cut-off.
    let mut e = Expr::new();
    let cond = format!(
        "{} AND {} < {}",
        e.eq(ENDED_GROUP, "ended", s(ENDED_GROUP_VALUE)),
        e.n(UPDATED_AT_MS),
        e.v("cut", n(sessions_before_ms))
    );
    deleted += purge_index(store, OP, &store.tables.sessions, ENDED_BY_AGE, PK, e, cond).await?;

    // Profiles expired at `now_ms`.
    let mut e = Expr::new();
    let cond = format!(
        "{} AND {} <= {}",
        e.eq(EXPIRY_GROUP, "group", s(EXPIRY_GROUP_VALUE)),
        e.n(EXPIRES_AT_MS),
        e.v("now", n(now_ms))
    );
    deleted += purge_index(
        store,
        OP,
        &store.tables.profiles,
        BY_EXPIRY,
        USER_ID,
        e,
        cond,
    )
    .await?;
    Ok(deleted)
}

/// Queries the sparse age index `index` of `table` for the items matching `cond` (built in
/// `e`) and deletes them, a few at a time, each delete conditioned on `cond` still holding;
/// returns how many were deleted.
async fn purge_index(
    store: &DynamoStore,
    op: &'static str,
    table: &str,
    index: &str,
    key_attr: &'static str,
    e: Expr,
    cond: String,
) -> Result<u64, StoreError> {
    let items = store
        .calls
        .query(op, table, index, &e, cond.clone(), None)
        .await?;
    let e = &e;
    count_written(keys_of(&items, key_attr).into_iter().map(|k| {
        store
            .calls
            .delete(op, table, key_of(key_attr, k), e, cond.clone())
    }))
    .await
}
