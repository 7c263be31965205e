//! The embedded SQLite backend.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL` by default. A call returns
//! only after its transaction is committed to the WAL file, so a process crash (panic, OOM kill,
//! `kill -9`) right after the call loses nothing — except the writes the `Store` port lets a
//! backend defer (a job's outcome, a lease renewal, [`Store::claim_deferred`]): those are
//! committed with the next commit, at the latest 50 ms later (`worker.rs`), and a crash in
//! between makes their jobs run again, as a crash just before them would. What NORMAL does not cover is a power loss or
//! an OS crash: the last transactions before it may be rolled back (never half-applied, never
//! corrupting the file). [`Synchronous::Full`] closes that window by syncing the WAL on every
//! commit, at the price of one fsync per write.
//!
//! Concurrency: one connection, owned by one thread (see `worker.rs` for why). What holds with
//! several connections or processes on one file:
//!
//! * **Every statement** is correct beside the others: the one-open-session rule is a partial
//!   unique index, enqueue is one transaction, `claim` tests its lane's order and takes the job
//!   with a conditional UPDATE in one transaction (the order, kept in memory, is read again after
//!   another connection's commit: `lane_order.rs`), and `renew_lease`, `reschedule` and `finish`
//!   are single conditional UPDATEs (fenced by the claim's `attempts`), as are `retry_failed` and
//!   the records' writes (conditional on `version`). So the operator's commands (`inbox list` /
//!   `retry`, `doctor`, `x …`) may run next to a `serve` on the same file.
//! * **One delivering process per file**: `release_claims` is not fenced — it hands back every
//!   claim it finds, which is right only when the process that made them is dead. A process that
//!   delivers from a file (`serve`, `demo`) therefore holds its [`InstanceLock`] first, and a
//!   second one is refused at start with the holder's pid (`instance_lock.rs`). Two delivering
//!   processes on one file are not supported; for several, use DynamoDB (leases expire instead).
//! * **Opening** takes the write lock only when a migration is due, so a current file opens next
//!   to a process that holds it (`schema.rs`).
//!
//! Files: on unix the database is created with mode 0600 (an existing one loses its group and
//! other bits at open; SQLite gives its `-wal` and `-shm` files the same mode), a directory every
//! user may write to is refused, and one its group may write to, or a file of another owner, is a
//! warning (`access.rs`). A file whose pages are damaged is refused at open (`PRAGMA quick_check`,
//! `schema.rs`), before anything is written to it.
//!
//! Layout: this file holds the [`Store`] implementation, whose every method calls the function
//! of the same name in the module of its concern, as in the DynamoDB backend: `sessions.rs`,
//! `profiles.rs`, `jobs.rs` (enqueue, claims, leases and fencing, state changes, listing),
//! `lanes.rs` (lane heads) over `lane_order.rs` (each lane's order, in memory), `records.rs`
//! and `purge.rs`, each with its SQL. Below them:
//! `store.rs` (the store type, opening it), `worker.rs` (the connection thread, group commit),
//! `inline_groups.rs` (writes on the callers' threads sharing a commit during a burst),
//! `rows.rs` (rows ⇄ core types, running a statement, errors), `schema.rs` (pragmas, integrity
//! check and migrations), `access.rs` (file modes, the directory check), `instance_lock.rs`
//! ([`InstanceLock`]) and `options.rs` ([`SqliteOptions`], [`Synchronous`]).

mod access;
mod checkpoints;
mod inline_groups;
mod instance_lock;
mod jobs;
mod lane_order;
mod lanes;
mod options;
mod profiles;
mod purge;
mod records;
mod rows;
mod schema;
mod sessions;
mod store;
mod worker;

use worker::Commit;

use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{
    Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, LaneEntry, NewJob,
};
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::profile::XProfile;
use xdm_core::records::{Expect, Record};
use xdm_core::session::{ConnectionCredentials, Session};

pub use self::instance_lock::{InstanceLock, LockHolder, LockState};
pub use self::options::{SqliteOptions, Synchronous};
pub use self::schema::SCHEMA_VERSION;
pub use self::store::SqliteStore;

impl Store for SqliteStore {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        sessions::open_session(self, business, customer).await
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        sessions::session_by_initial_contact(self, id).await
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        sessions::insert_session(self, session).await
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sessions::set_session_connection(self, id, connection, now_ms).await
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        sessions::end_session(self, id, now_ms).await
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        profiles::cached_profile(self, id, now_ms).await
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        profiles::cache_profile(self, profile, expires_at_ms).await
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        jobs::enqueue(self, jobs).await
    }

    async fn lane_heads(
        &self,
        queue: JobQueue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        lanes::lane_heads(self, queue, now_ms, limit).await
    }

    async fn lane_head(
        &self,
        queue: JobQueue,
        lane: &Lane,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        lanes::lane_head(self, queue, lane, now_ms).await
    }

    async fn lane_jobs(
        &self,
        queue: JobQueue,
        lane: &Lane,
        limit: usize,
    ) -> Result<Vec<LaneEntry>, StoreError> {
        lanes::lane_jobs(self, queue, lane, limit).await
    }

    async fn claim(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // Grouped: the dispatcher claims from the jobs' own tasks, several lanes at once, and at
        // saturation these commits share one with each other and the acceptances arriving.
        jobs::claim(self, queue, key, lease_until_ms, now_ms, Commit::Grouped).await
    }

    async fn claim_deferred(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        jobs::claim(self, queue, key, lease_until_ms, now_ms, Commit::Deferred).await
    }

    async fn renew_lease(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        jobs::renew_lease(self, queue, key, attempt, lease_until_ms, now_ms).await
    }

    async fn reschedule(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        jobs::reschedule(self, queue, key, attempt, not_before_ms, error, now_ms).await
    }

    async fn finish(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        state: FinalState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        jobs::finish(self, queue, key, attempt, state, error, now_ms).await
    }

    async fn job(&self, queue: JobQueue, key: &JobKey) -> Result<Option<Job>, StoreError> {
        jobs::job(self, queue, key).await
    }

    async fn jobs(
        &self,
        queue: JobQueue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        jobs::jobs(self, queue, state, limit).await
    }

    async fn backlog(&self, queue: JobQueue, limit: usize) -> Result<Backlog, StoreError> {
        lanes::backlog(self, queue, limit).await
    }

    async fn retry_failed(
        &self,
        queue: JobQueue,
        key: &JobKey,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        jobs::retry_failed(self, queue, key, now_ms).await
    }

    async fn release_claims(&self, queue: JobQueue, now_ms: i64) -> Result<u64, StoreError> {
        jobs::release_claims(self, queue, now_ms).await
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        purge::purge(self, jobs_before_ms, sessions_before_ms, now_ms).await
    }

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        records::record(self, key).await
    }

    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        records::put_record(self, key, value, expect, now_ms, Commit::Now).await
    }

    async fn put_record_deferred(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        records::put_record(self, key, value, expect, now_ms, Commit::Deferred).await
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        records::delete_record(self, key, expect).await
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        records::records(self, prefix).await
    }
}

#[cfg(test)]
mod tests;
