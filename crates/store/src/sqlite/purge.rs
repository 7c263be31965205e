//! `purge`: deletes finished jobs, ended sessions and expired profiles past their cut-offs, in
//! one transaction, each through its partial age index.

use rusqlite::{TransactionBehavior, params};
use xdm_core::ports::StoreError;

use super::store::SqliteStore;

// `pub(super)` so the unit tests (`tests.rs`) can check the query plans.

pub(super) const SQL_PURGE_JOBS: &str =
    "DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at_ms < ?1";

pub(super) const SQL_PURGE_SESSIONS: &str =
    "DELETE FROM sessions WHERE status = 'ended' AND updated_at_ms < ?1";

pub(super) const SQL_PURGE_PROFILES: &str = "DELETE FROM profiles WHERE expires_at_ms <= ?1";

pub(super) async fn purge(
    store: &SqliteStore,
    jobs_before_ms: i64,
    sessions_before_ms: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    store
        .worker
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
