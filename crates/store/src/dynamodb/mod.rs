//! The DynamoDB backend: the state of every Lambda instance and `serve` replica that share one
//! `XDM_STORE=dynamodb:PREFIX`.
//!
//! Every guarantee of the [`Store`] port holds across processes, because each one is decided by
//! DynamoDB itself — a conditional write or a transaction — never by a lock in this process.
//! Reads are strongly consistent wherever a decision rests on them; the only eventually
//! consistent reads are index queries, and those only *find candidates* that are then read again
//! (consistently) or that a conditional write re-checks.
//!
//! # Tables
//!
//! Five tables, `{prefix}sessions`, `{prefix}profiles`, `{prefix}jobs`, `{prefix}lanes`,
//! `{prefix}records`, each with a string partition key and no sort key, on-demand billing, TTL on `expires_at` (epoch seconds).
//! `docs/aws-tables.md` (repository root) gives the exact definitions for the deploy template.
//!
//! | table | item | key | notes |
//! |---|---|---|---|
//! | sessions | session | `pk = "contact#" + InitialContactId` | `session_by_initial_contact` is one GetItem |
//! | sessions | open-pair guard | `pk = "open#" + business + "#" + customer` | exists exactly while the pair has an open session; holds its `initial_contact_id` |
//! | profiles | cached profile | `user_id` | `profile` (JSON), `expires_at_ms` |
//! | jobs | job | `pk = queue + "#" + key` | the dedup key is the primary key |
//! | lanes | lane | `pk = queue + "#" + lane` | `open`: string set of the lane's open jobs; `ver`: bumped on every change of `open` |
//! | records | record | `key` | `value` (may hold secrets), `version`, `updated_at_ms`; never expires |
//!
//! Indexes (all sparse: an item is in an index only while it carries the index's hash key):
//!
//! | table | index | hash / range | projection | holds | used by |
//! |---|---|---|---|---|---|
//! | sessions | `ended_by_age` | `ended_group` ("ended") / `updated_at_ms` | keys | ended sessions | `purge` |
//! | profiles | `by_expiry` | `expiry_group` ("profile") / `expires_at_ms` | keys | profiles | `purge` |
//! | jobs | `by_state` | `queue_state` ("inbound#open", "…#done", "…#failed") / `accepted_key` | keys | jobs | `jobs`, `backlog`, `release_claims` |
//! | jobs | `finished_by_age` | `finished_queue` / `updated_at_ms` | keys | done and failed jobs | `purge` |
//! | lanes | `open_lanes` | `open_queue` / — | all | lanes with open jobs | `lane_heads` |
//!
//! # Why this design
//!
//! * **One open session per (business, customer).** DynamoDB has no unique secondary index, so
//!   uniqueness is a key: the guard item of the pair. `insert_session` writes the guard and the
//!   session in one transaction, both conditioned on not existing; `end_session` marks the session
//!   ended and deletes the guard (conditioned on still pointing at it) in one transaction. Workers
//!   in any number of processes racing for a customer's first chat: one transaction commits,
//!   the others are cancelled and read the winner. `open_session` is two strongly consistent GetItems (guard,
//!   then session), never an index query, so a chat is visible the moment it is written (the
//!   outbound flow looks it up by InitialContactId within milliseconds of its creation).
//! * **Records** are compare-and-set on `version`: `put_record` is one UpdateItem conditioned on
//!   `attribute_not_exists(key)` (absent) or `version = :v`, setting `version` to the old + 1
//!   (`if_not_exists(version, 0) + 1` when unconditional) and returning it; `delete_record` one
//!   DeleteItem under the same conditions.
//! * **Deduplication** of jobs is the primary key `(queue, key)` and a conditional Put
//!   (`attribute_not_exists(pk)`), inside the enqueue transaction.
//! * **Lane order across processes.** A job may run only when it is the first open job of its
//!   lane by `(order_key, key)`. An index cannot answer that (it is eventually consistent), so each
//!   lane has an item whose string set `open` lists its open jobs as members `hex(order_key)#key`
//!   (string order = run order). A job joins `open` in the transaction that makes it open
//!   (enqueue, `retry_failed`), so a job is never open without being listed. `claim` reads the
//!   job and its lane (consistently), checks that the job is due and the lowest member, updates
//!   the job under the compare-and-set condition "pending and due, or processing with an expired
//!   lease" (two workers never both win: the second one's condition fails), then reads the lane
//!   again: if a job that runs first joined it meanwhile, the claim is given back. A job that
//!   finishes leaves `open` in a second write right after its own update; should the process
//!   stop between the two, the member of a finished job is left at the head, and whoever reads
//!   the lane next (`lane_head`, `lane_heads`) removes it — the lane waits until then, nothing
//!   runs twice or out of order. Neither `claim` nor `finish` is a transaction: DynamoDB bills a
//!   transaction's writes double, and these two run for every message.
//! * **Fencing.** A claim is numbered by the job's `attempts`, which `claim` increments. The
//!   holder's `renew_lease`, `reschedule` and `finish` update the job under the condition
//!   `state = processing AND attempts = <its claim>`: a worker whose lease ran out and whose job
//!   was claimed again (by any process) writes nothing, and `finish` changes the lane only after
//!   its fenced job update succeeded. `reschedule` never reopens a finished job.
//! * **lane_heads** queries `open_lanes` (one query, paged) for the lanes of the queue that have
//!   open jobs, takes each lane's lowest member, and fetches those jobs with strongly consistent
//!   BatchGetItems. If the index was behind (the job is no longer open), the lane item itself is
//!   read. The result is a hint; `claim` decides.
//! * **TTL**: DynamoDB deletes, some time after `expires_at` (usually within two days; emulators
//!   never), done and failed jobs ([`DynamoOptions::job_retention`] after they finished), ended
//!   sessions ([`DynamoOptions::session_retention`] after they ended), profiles (at their
//!   expiry) and lanes that have been empty for the job retention. Reads treat an item whose
//!   `expires_at` has passed as absent, and conditional writes treat it as free, so behaviour does
//!   not depend on when DynamoDB gets round to deleting. Open jobs, open sessions and guards
//!   never carry a TTL. Retention times are measured by the store's clock
//!   ([`DynamoStore::with_clock`]); profile expiry is the caller's `expires_at_ms`.
//! * **purge** queries the three sparse age indexes and deletes what they return, each delete
//!   conditioned on the item still being old and finished, so several processes may purge at
//!   once. With TTL enabled it mostly finds nothing left to do.
//!
//! Calls per method (normal path; retries of conflicting transactions not counted):
//!
//! | method | calls |
//! |---|---|
//! | `open_session` | 2 GetItem (guard, session); 1 if the pair has no open session |
//! | `session_by_initial_contact` | 1 GetItem |
//! | `insert_session` | 1 TransactWriteItems (Put guard + Put session); when refused, +2–3 GetItem to report the winner or the conflict |
//! | `set_session_connection` | 1 UpdateItem (2 if the session ended) |
//! | `end_session` | 1 GetItem + 1 TransactWriteItems (Update session + Delete guard) |
//! | `cached_profile` / `cache_profile` | 1 GetItem / 1 PutItem |
//! | `enqueue` | 1 TransactWriteItems per ≤ 50 jobs (Put per job + Update per lane); a refused duplicate costs one more |
//! | `lane_heads` | 1 Query (per 1 MB page) + 1 BatchGetItem per 100 lanes |
//! | `lane_head` (one lane) | 2 GetItem (lane, job): strongly consistent, no index |
//! | `claim` | 2 GetItem (job, lane) + 1 UpdateItem (job) + 1 GetItem (lane); +1 UpdateItem when given back |
//! | `renew_lease`, `reschedule` | 1 UpdateItem (conditional on the claim) |
//! | `finish` | 2 UpdateItem (job, returning it; then its lane) |
//! | `retry_failed` | 1 GetItem + 1 TransactWriteItems (Update job + Update lane) |
//! | `job` | 1 GetItem |
//! | `jobs` | 1 Query per partition listed (3 for pending or processing: `open` and the two former ones) + 1 BatchGetItem per 100 jobs |
//! | `backlog` | 4 Queries (`open`, the former two, `failed`) + the heads as in `lane_heads` when there are open jobs |
//! | `release_claims` | 3 Queries + 1 BatchGetItem per 100 open jobs + 1 UpdateItem per processing job |
//! | `purge` | 4 Queries + 1 DeleteItem per deleted item |
//! | `record` / `put_record` / `delete_record` | 1 GetItem / 1 conditional UpdateItem / 1 conditional DeleteItem |
//! | `records` | 1 strongly consistent Scan (per 1 MB page) with a `begins_with` filter: records are few |
//!
//! Limits: `enqueue` is one transaction for up to 50 jobs (DynamoDB allows 100 actions per
//! transaction: one per job and one per lane). A larger call is split into transactions of that
//! size, committed in order: if one fails, the call returns the error after the earlier ones
//! committed, and the caller's retry finds those jobs as duplicates. A lane item holds at most
//! ~10,000 open jobs (400 KB); lanes are one customer or one chat. `release_claims` releases
//! the claims of every process sharing the tables: on a shared store, do not call it at
//! start-up (leases expire on their own).
//!
//! # Layout
//!
//! This file holds the [`Store`] implementation, whose every method calls the function of the
//! same name in the module of its concern: `sessions.rs` (sessions and their open-pair guards),
//! `profiles.rs` (the profile cache), `jobs.rs` (enqueue, claims, leases and fencing, state
//! changes, listing), `lanes.rs` (the lane items and the lane heads read from them), `records.rs`
//! and `purge.rs`. Below them: `store.rs` (the store type and its options, building it, the TTL
//! helpers and the consistent reads of jobs the concern modules share), `calls.rs` (every
//! DynamoDB call, its error mapping and its retries; transaction items), `expr.rs` (expressions),
//! `items.rs` (items ⇄ core types, key encodings) and `tables.rs` (table definitions, creating
//! and checking them).

mod calls;
mod expr;
mod items;
mod jobs;
mod lanes;
mod profiles;
mod purge;
mod records;
mod sessions;
mod store;
mod tables;

use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{
    Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, LaneEntry, NewJob,
};
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::profile::XProfile;
use xdm_core::records::{Expect, Record};
use xdm_core::session::{ConnectionCredentials, Session};

pub use self::store::{DynamoOptions, DynamoStore};
pub use self::tables::{TableError, TableNames};

impl Store for DynamoStore {
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
        jobs::claim(self, queue, key, lease_until_ms, now_ms).await
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
        jobs::backlog(self, queue, limit).await
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
        records::put_record(self, key, value, expect, now_ms).await
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        records::delete_record(self, key, expect).await
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        records::records(self, prefix).await
    }
}
