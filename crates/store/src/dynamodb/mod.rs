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
//! | jobs | `by_state` | `queue_state` ("inbound#pending") / `accepted_key` | keys | jobs | `jobs`, `release_claims` |
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
//!   (string order = run order). Every change of a job between open and finished changes `open`
//!   in the same transaction, so the set is exact. `claim` reads the job and its lane
//!   (consistently), checks that the job is the lowest member and due, then commits a
//!   transaction that (a) checks the lane's `ver` is unchanged and (b) updates the job under the
//!   compare-and-set condition "pending and due, or processing with an expired lease". Two
//!   workers never both win: the second one's condition fails.
//! * **Fencing.** A claim is numbered by the job's `attempts`, which `claim` increments. The
//!   holder's `renew_lease` and `reschedule` are one UpdateItem each and its `finish` one
//!   transaction (job + lane), all conditioned on `state = processing AND attempts = <its
//!   claim>`: a worker whose lease ran out and whose job was claimed again (by any process)
//!   writes nothing, and the lane item is changed only together with the job. `reschedule`
//!   never reopens a finished job.
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
//! | `claim` | 2 GetItem (job, lane) + 1 TransactWriteItems (ConditionCheck lane + Update job) |
//! | `renew_lease`, `reschedule` | 1 UpdateItem (conditional on the claim) |
//! | `finish`, `retry_failed` | 1 GetItem + 1 TransactWriteItems (Update job + Update lane) |
//! | `job` | 1 GetItem |
//! | `jobs` | 1 Query per state listed + 1 BatchGetItem per 100 jobs |
//! | `release_claims` | 1 Query + 1 UpdateItem per processing job |
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

mod calls;
mod items;
mod tables;

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::jobs::{FinalState, Job, JobState, NewJob, Queue};
use xdm_core::ports::{Clock, SessionInsert, Store, StoreError, SystemClock};
use xdm_core::profile::XProfile;
use xdm_core::records::{Expect, Record};
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};

use self::calls::{Calls, Expr, Tx, Written};
use self::items::*;
use self::tables::{BY_EXPIRY, BY_STATE, ENDED_BY_AGE, FINISHED_BY_AGE, OPEN_LANES};
pub use self::tables::{TableError, TableNames};

/// How long finished jobs and ended sessions stay before DynamoDB's TTL deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamoOptions {
    /// Done and failed jobs (and so their deduplication) are kept this long after they
    /// finished. Default: 7 days.
    pub job_retention: Duration,
    /// Ended sessions are kept this long after they ended (late streamed items still find
    /// their customer). Default: 30 days.
    pub session_retention: Duration,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        Self {
            job_retention: Duration::from_secs(7 * 24 * 3600),
            session_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A job state change for `DynamoStore::transition`.
#[derive(Debug, Clone, Copy)]
struct Change {
    /// Only from this state (`None`: from any).
    from: Option<JobState>,
    /// Only while the job's `attempts` is this (the claim fence of `finish`; `None`: any).
    attempts: Option<u32>,
    to: JobState,
    at_ms: i64,
}

/// Attempts at an operation that keeps losing races against other writers (the state it read
/// changed before its conditional write).
const RACE_ATTEMPTS: usize = 5;
/// Jobs per enqueue transaction (each may need a lane update too: 2 × 50 = 100 actions).
const ENQUEUE_CHUNK: usize = 50;
/// Concurrent single-item writes of `purge` and `release_claims`.
const WRITE_CONCURRENCY: usize = 16;

const ALL_STATES: [JobState; 4] = [
    JobState::Pending,
    JobState::Processing,
    JobState::Done,
    JobState::Failed,
];

/// The `Store` on DynamoDB tables (see the module documentation for the design).
#[derive(Clone)]
pub struct DynamoStore {
    calls: Calls,
    prefix: Arc<str>,
    tables: Arc<TableNames>,
    options: DynamoOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("prefix", &self.prefix)
            .field("tables", &self.tables)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on the tables `{table_prefix}sessions`, `…profiles`, `…jobs`, `…lanes` and
    /// `…records`, with
    /// one DynamoDB client built from `sdk` (credentials, region, endpoint). Makes no call.
    pub fn new(sdk: &SdkConfig, table_prefix: &str) -> Self {
        Self::from_client(Client::new(sdk), table_prefix)
    }

    /// A store using an existing client.
    pub fn from_client(client: Client, table_prefix: &str) -> Self {
        Self {
            calls: Calls { client },
            prefix: Arc::from(table_prefix),
            tables: Arc::new(TableNames::new(table_prefix)),
            options: DynamoOptions::default(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_options(mut self, options: DynamoOptions) -> Self {
        self.options = options;
        self
    }

    /// The clock that sets and checks retention TTLs (tests move it to see items expire).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The table prefix (`XDM_STORE=dynamodb:PREFIX`).
    pub fn table_prefix(&self) -> &str {
        &self.prefix
    }

    pub fn table_names(&self) -> &TableNames {
        &self.tables
    }

    pub fn client(&self) -> &Client {
        &self.calls.client
    }

    /// Creates the tables that do not exist (with their indexes, on-demand billing), waits until
    /// they are ACTIVE and enables TTL on `expires_at`. Existing tables are checked, not changed.
    /// Idempotent, and safe to run from several processes at once. For tests, local development
    /// and admin commands: production tables come from the deploy template.
    pub async fn create_tables(&self) -> Result<(), TableError> {
        tables::create_tables(&self.calls.client, &self.tables).await
    }

    /// Checks that the tables exist with the keys and indexes this build uses (DescribeTable
    /// only: the calls a running store makes need no more permissions than that).
    pub async fn check_tables(&self) -> Result<(), TableError> {
        tables::check_tables(&self.calls.client, &self.tables).await
    }

    fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The TTL (epoch seconds) of an item kept `retention` from now.
    fn ttl_after(&self, retention: Duration) -> i64 {
        let ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        ttl_seconds(self.clock.now_ms().saturating_add(ms))
    }

    // -- sessions ----------------------------------------------------------------------------

    async fn get_session(
        &self,
        op: &'static str,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        let item = self
            .calls
            .get(op, &self.tables.sessions, key_of(PK, session_pk(id)))
            .await?;
        match item {
            Some(item) if !is_expired(&item, self.now_s()) => Ok(Some(session_from_item(&item)?)),
            _ => Ok(None),
        }
    }

    /// The open session of the pair, through its guard.
    async fn open_session_of(
        &self,
        op: &'static str,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        let guard_key = key_of(PK, guard_pk(business, customer));
        for _ in 0..RACE_ATTEMPTS {
            let Some(guard) = self
                .calls
                .get(op, &self.tables.sessions, guard_key.clone())
                .await?
            else {
                return Ok(None);
            };
            let id = guard_target(&guard)?;
            match self.get_session(op, &id).await? {
                Some(s) if s.status.is_open() => {
                    if (&s.business, &s.customer) != (business, customer) {
                        return Err(StoreError::Corrupt(format!(
                            "dynamodb {op}: the guard of ({business}, {customer}) points at session {id} of ({}, {})",
                            s.business, s.customer
                        )));
                    }
                    return Ok(Some(s));
                }
                // The session ended between the two reads (its guard is gone by now), or the
                // guard is stale. A stale guard is removed — only if it still points at this
                // session, which can never be open again.
                _ => self.drop_stale_guard(op, guard_key.clone(), &id).await?,
            }
        }
        Err(StoreError::Unavailable(format!(
            "dynamodb {op}: the open session of ({business}, {customer}) kept changing while it was read"
        )))
    }

    async fn drop_stale_guard(
        &self,
        op: &'static str,
        guard_key: Item,
        id: &InitialContactId,
    ) -> Result<(), StoreError> {
        let mut e = Expr::new();
        let cond = format!(
            "{} = {}",
            e.n(INITIAL_CONTACT_ID),
            e.v("id", s(id.as_str()))
        );
        let request = self
            .calls
            .client
            .delete_item()
            .table_name(&*self.tables.sessions)
            .set_key(Some(guard_key))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        if self
            .calls
            .delete(op, &self.tables.sessions, request)
            .await?
            == Written::Yes
        {
            tracing::warn!(
                initial_contact_id = %id,
                "removed an open-session guard that pointed at a session that is not open"
            );
        }
        Ok(())
    }

    // -- jobs --------------------------------------------------------------------------------

    async fn get_job(
        &self,
        op: &'static str,
        queue: Queue,
        key: &str,
    ) -> Result<Option<Job>, StoreError> {
        let item = self
            .calls
            .get(op, &self.tables.jobs, key_of(PK, job_pk(queue, key)))
            .await?;
        match item {
            Some(item) if !is_expired(&item, self.now_s()) => Ok(Some(job_from_item(&item)?)),
            _ => Ok(None),
        }
    }

    /// The clauses every state change writes: the state, its index keys and, for finished
    /// states, the TTL.
    fn state_clauses(&self, e: &mut Expr, queue: Queue, state: JobState, now_ms: i64) {
        e.set(STATE, s(state.as_str()))
            .set(QUEUE_STATE, s(queue_state(queue, state)))
            .set(UPDATED_AT_MS, n(now_ms));
        if state.is_open() {
            e.remove(FINISHED_QUEUE).remove(EXPIRES_AT);
        } else {
            e.set(FINISHED_QUEUE, s(queue.as_str()))
                .set(EXPIRES_AT, n(self.ttl_after(self.options.job_retention)));
        }
    }

    /// The lane update that adds `members` (open jobs) to a lane.
    fn lane_add(
        &self,
        queue: Queue,
        lane: &str,
        members: Vec<String>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::new();
        e.set(QUEUE, s(queue.as_str()))
            .set(LANE, s(lane))
            .set(OPEN_QUEUE, s(queue.as_str()))
            .remove(EXPIRES_AT)
            .add(OPEN, AttributeValue::Ss(members))
            .add(VER, n(1));
        let update = Update::builder()
            .table_name(&*self.tables.lanes)
            .set_key(Some(key_of(PK, lane_pk(queue, lane))))
            .update_expression(e.update())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The lane update that removes a job that is no longer open.
    fn lane_remove(
        &self,
        queue: Queue,
        lane: &str,
        member: String,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::new();
        e.delete(OPEN, AttributeValue::Ss(vec![member]))
            .add(VER, n(1));
        let update = Update::builder()
            .table_name(&*self.tables.lanes)
            .set_key(Some(key_of(PK, lane_pk(queue, lane))))
            .update_expression(e.update())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Moves a job to `change.to`, writing `clauses` (besides the state) — on the condition
    /// that it is still in the state read first, that this state is `change.from` and its
    /// `attempts` is `change.attempts` (where given). When the job moves between open and
    /// finished, its lane's `open` set changes in the same transaction (the lane update is part
    /// of the transaction, so a refused job update leaves the lane untouched). `Ok(false)`:
    /// unknown job, or not in `change.from` / at `change.attempts`.
    async fn transition(
        &self,
        op: &'static str,
        queue: Queue,
        key: &str,
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
            let Some(job) = self.get_job(op, queue, key).await? else {
                return Ok(false);
            };
            if from.is_some_and(|from| from != job.state)
                || attempts.is_some_and(|a| a != job.attempts)
            {
                return Ok(false);
            }
            let mut e = Expr::new();
            self.state_clauses(&mut e, queue, target, now_ms);
            clauses(&mut e);
            let mut cond = format!(
                "attribute_exists({}) AND {} = {}",
                e.n(PK),
                e.n(STATE),
                e.v("current_state", s(job.state.as_str()))
            );
            if let Some(a) = attempts {
                let fence = format!(
                    " AND {} = {}",
                    e.n(ATTEMPTS),
                    e.v("claimed_attempts", n(i64::from(a)))
                );
                cond.push_str(&fence);
            }
            let job_key = key_of(PK, job_pk(queue, key));
            let member = member(job.order_key, &job.key);
            if job.state.is_open() == target.is_open() {
                let request = self
                    .calls
                    .client
                    .update_item()
                    .table_name(&*self.tables.jobs)
                    .set_key(Some(job_key))
                    .update_expression(e.update())
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values());
                match self.calls.update(op, &self.tables.jobs, request).await? {
                    Written::Yes => return Ok(true),
                    Written::ConditionFailed => continue,
                }
            }
            let update = Update::builder()
                .table_name(&*self.tables.jobs)
                .set_key(Some(job_key))
                .update_expression(e.update())
                .condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .build()
                .map_err(build_error)?;
            let lane = if target.is_open() {
                self.lane_add(queue, &job.lane, vec![member])?
            } else {
                self.lane_remove(queue, &job.lane, member)?
            };
            let items = vec![TransactWriteItem::builder().update(update).build(), lane];
            match self.calls.transact(op, "jobs+lanes", items).await? {
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
        &self,
        op: &'static str,
        queue: Queue,
        key: &str,
        attempt: u32,
        mut e: Expr,
    ) -> Result<bool, StoreError> {
        let cond = format!(
            "{} = {} AND {} = {}",
            e.n(STATE),
            e.v("processing", s(JobState::Processing.as_str())),
            e.n(ATTEMPTS),
            e.v("claimed_attempts", n(i64::from(attempt))),
        );
        let request = self
            .calls
            .client
            .update_item()
            .table_name(&*self.tables.jobs)
            .set_key(Some(key_of(PK, job_pk(queue, key))))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        Ok(self.calls.update(op, &self.tables.jobs, request).await? == Written::Yes)
    }

    /// Stops listing a lane whose `open` set is empty (and lets TTL delete it later). Safe
    /// against a concurrent enqueue: the condition re-checks the set.
    async fn retire_lane(&self, queue: Queue, lane: &str) -> Result<(), StoreError> {
        let mut e = Expr::new();
        e.remove(OPEN_QUEUE)
            .set(EXPIRES_AT, n(self.ttl_after(self.options.job_retention)));
        let cond = format!(
            "attribute_not_exists({}) AND attribute_exists({})",
            e.n(OPEN),
            e.n(OPEN_QUEUE)
        );
        let request = self
            .calls
            .client
            .update_item()
            .table_name(&*self.tables.lanes)
            .set_key(Some(key_of(PK, lane_pk(queue, lane))))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        self.calls
            .update("lane_heads", &self.tables.lanes, request)
            .await?;
        Ok(())
    }

    /// The lane's current head, read from the lane item itself (consistently). A member whose
    /// job is not open (which the transactions never leave behind) is removed, so that one bad
    /// member cannot block a customer's lane forever.
    async fn fresh_head(
        &self,
        op: &'static str,
        queue: Queue,
        lane: &str,
    ) -> Result<Option<Job>, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let Some(item) = self
                .calls
                .get(op, &self.tables.lanes, key_of(PK, lane_pk(queue, lane)))
                .await?
            else {
                return Ok(None);
            };
            let r = Reader::new(&item, "lane");
            let Some(head) = lane_head(r.ss(OPEN)?) else {
                return Ok(None);
            };
            let ver = r.n(VER)?;
            let (_, key) = parse_member(head).ok_or_else(|| {
                StoreError::Corrupt(format!("dynamodb lane {lane:?}: bad member {head:?}"))
            })?;
            if let Some(job) = self.get_job(op, queue, key).await?
                && job.state.is_open()
                && job.lane == lane
            {
                return Ok(Some(job));
            }
            let mut e = Expr::new();
            e.delete(OPEN, AttributeValue::Ss(vec![head.to_owned()]))
                .add(VER, n(1));
            let cond = format!("{} = {}", e.n(VER), e.v("ver", n(ver)));
            let request = self
                .calls
                .client
                .update_item()
                .table_name(&*self.tables.lanes)
                .set_key(Some(key_of(PK, lane_pk(queue, lane))))
                .update_expression(e.update())
                .condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values());
            if self.calls.update(op, &self.tables.lanes, request).await? == Written::Yes {
                tracing::warn!(
                    queue = queue.as_str(),
                    lane,
                    key,
                    "removed a lane entry whose job is not open"
                );
            }
        }
        Ok(None)
    }

    /// Enqueues `jobs` (distinct keys, at most [`ENQUEUE_CHUNK`]) in one transaction; returns
    /// which were new. Duplicates found by the transaction are dropped and the rest retried.
    async fn enqueue_chunk(&self, jobs: &[&NewJob]) -> Result<Vec<bool>, StoreError> {
        const OP: &str = "enqueue";
        let mut fresh = vec![false; jobs.len()];
        // Indexes (into `jobs`) still to insert.
        let mut todo: Vec<usize> = (0..jobs.len()).collect();
        let mut last_codes = Vec::new();
        for _ in 0..=jobs.len() + RACE_ATTEMPTS {
            if todo.is_empty() {
                return Ok(fresh);
            }
            let now_s = self.now_s();
            let mut items = Vec::with_capacity(todo.len() * 2);
            let mut lanes: Vec<(Queue, &str, Vec<String>)> = Vec::new();
            for &i in &todo {
                let job = jobs[i];
                let mut e = Expr::new();
                let cond = format!(
                    "attribute_not_exists({}) OR {} <= {}",
                    e.n(PK),
                    e.n(EXPIRES_AT),
                    e.v("now_s", n(now_s))
                );
                let put = Put::builder()
                    .table_name(&*self.tables.jobs)
                    .set_item(Some(new_job_item(job)))
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?;
                items.push(TransactWriteItem::builder().put(put).build());
                let m = member(job.order_key, &job.key);
                match lanes
                    .iter_mut()
                    .find(|(q, l, _)| *q == job.queue && *l == job.lane)
                {
                    Some((_, _, members)) => members.push(m),
                    None => lanes.push((job.queue, job.lane.as_str(), vec![m])),
                }
            }
            for (queue, lane, members) in lanes {
                items.push(self.lane_add(queue, lane, members)?);
            }
            match self.calls.transact(OP, "jobs+lanes", items).await? {
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
                        let found = self
                            .calls
                            .batch_get(
                                OP,
                                &self.tables.jobs,
                                PK,
                                todo.iter().map(|&i| job_pk(jobs[i].queue, &jobs[i].key)),
                            )
                            .await?;
                        let now_s = self.now_s();
                        duplicates = todo
                            .iter()
                            .copied()
                            .filter(|&i| {
                                found
                                    .get(&job_pk(jobs[i].queue, &jobs[i].key))
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

    /// Queries the sparse age index `index` of `table` for the items matching `cond` (built in
    /// `e`) and deletes them, a few at a time, each delete conditioned on `cond` still holding;
    /// returns how many were deleted.
    async fn purge_index(
        &self,
        op: &'static str,
        table: &str,
        index: &str,
        key_attr: &'static str,
        e: Expr,
        cond: String,
    ) -> Result<u64, StoreError> {
        let request = self
            .calls
            .client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression(cond.clone())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        let items = self.calls.query(op, table, request, None).await?;
        let deleted: Vec<Written> = stream::iter(Self::keys_of(&items, key_attr))
            .map(|k| {
                let request = self
                    .calls
                    .client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key_of(key_attr, k)))
                    .condition_expression(cond.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values());
                self.calls.delete(op, table, request)
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(deleted.iter().filter(|w| **w == Written::Yes).count() as u64)
    }

    /// The string partition keys (`key_attr`) of a KEYS_ONLY index query.
    fn keys_of(items: &[Item], key_attr: &str) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i.get(key_attr) {
                Some(AttributeValue::S(k)) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("dynamodb: cannot build a request: {e}"))
}

fn transact_item_put(put: Put) -> TransactWriteItem {
    TransactWriteItem::builder().put(put).build()
}

impl Store for DynamoStore {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        self.open_session_of("open_session", business, customer)
            .await
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        self.get_session("session_by_initial_contact", id).await
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        const OP: &str = "insert_session";
        let (business, customer) = (&session.business, &session.customer);
        let guard_key = key_of(PK, guard_pk(business, customer));
        for _ in 0..RACE_ATTEMPTS {
            let mut guard = Expr::new();
            let guard_cond = format!("attribute_not_exists({})", guard.n(PK));
            let guard_action = if session.status.is_open() {
                let put = Put::builder()
                    .table_name(&*self.tables.sessions)
                    .set_item(Some(guard_item(session)))
                    .condition_expression(guard_cond)
                    .set_expression_attribute_names(guard.names())
                    .build()
                    .map_err(build_error)?;
                transact_item_put(put)
            } else {
                // An ended session (an archive) takes no guard, but may not be written while
                // the pair has an open session.
                let check = ConditionCheck::builder()
                    .table_name(&*self.tables.sessions)
                    .set_key(Some(guard_key.clone()))
                    .condition_expression(guard_cond)
                    .set_expression_attribute_names(guard.names())
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check).build()
            };
            let mut e = Expr::new();
            let cond = format!(
                "attribute_not_exists({}) OR {} <= {}",
                e.n(PK),
                e.n(EXPIRES_AT),
                e.v("now_s", n(self.now_s()))
            );
            let put = Put::builder()
                .table_name(&*self.tables.sessions)
                .set_item(Some(session_item(
                    session,
                    self.ttl_after(self.options.session_retention),
                )))
                .condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .build()
                .map_err(build_error)?;
            let items = vec![guard_action, transact_item_put(put)];
            match self
                .calls
                .transact(OP, &self.tables.sessions, items)
                .await?
            {
                Tx::Committed => return Ok(SessionInsert::Inserted),
                Tx::Cancelled(_) => {
                    if let Some(open) = self.open_session_of(OP, business, customer).await? {
                        return Ok(SessionInsert::OpenExists(open));
                    }
                    if let Some(same) = self.get_session(OP, &session.initial_contact_id).await? {
                        return Err(StoreError::Corrupt(format!(
                            "dynamodb {OP}: session {} exists with status {} (business {}, customer {})",
                            same.initial_contact_id,
                            same.status.as_str(),
                            same.business,
                            same.customer
                        )));
                    }
                    // What refused it is gone already (the open session ended): try again.
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "dynamodb {OP}: session {} kept conflicting with concurrent changes",
            session.initial_contact_id
        )))
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "set_session_connection";
        let connection_clauses = |e: &mut Expr| {
            e.set(CONNECTION_TOKEN, s(connection.token.expose()))
                .set(UPDATED_AT_MS, n(now_ms));
            match connection.expires_at_ms {
                Some(at) => e.set(CONNECTION_EXPIRES_AT_MS, n(at)),
                None => e.remove(CONNECTION_EXPIRES_AT_MS),
            };
        };
        let key = key_of(PK, session_pk(id));

        // Starting or live: becomes live.
        let mut e = Expr::new();
        connection_clauses(&mut e);
        e.set(STATUS, s(SessionStatus::Live.as_str()));
        let cond = format!(
            "attribute_exists({}) AND {} <> {}",
            e.n(PK),
            e.n(STATUS),
            e.v("ended", s(SessionStatus::Ended.as_str()))
        );
        let request = self
            .calls
            .client
            .update_item()
            .table_name(&*self.tables.sessions)
            .set_key(Some(key.clone()))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        if self
            .calls
            .update(OP, &self.tables.sessions, request)
            .await?
            == Written::Yes
        {
            return Ok(());
        }

        // Ended (and not expired): records the connection, stays ended, kept longer.
        let mut e = Expr::new();
        connection_clauses(&mut e);
        e.set(
            EXPIRES_AT,
            n(self.ttl_after(self.options.session_retention)),
        );
        let cond = format!(
            "{} = {} AND {} > {}",
            e.n(STATUS),
            e.v("ended", s(SessionStatus::Ended.as_str())),
            e.n(EXPIRES_AT),
            e.v("now_s", n(self.now_s()))
        );
        let request = self
            .calls
            .client
            .update_item()
            .table_name(&*self.tables.sessions)
            .set_key(Some(key))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        // Unknown (or expired) contact: nothing to record.
        self.calls
            .update(OP, &self.tables.sessions, request)
            .await?;
        Ok(())
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        const OP: &str = "end_session";
        let Some(session) = self.get_session(OP, id).await? else {
            return Ok(false);
        };
        if !session.status.is_open() {
            return Ok(false);
        }
        let ended = |e: &mut Expr| {
            e.set(STATUS, s(SessionStatus::Ended.as_str()))
                .set(UPDATED_AT_MS, n(now_ms))
                .set(ENDED_GROUP, s(ENDED_GROUP_VALUE))
                .set(
                    EXPIRES_AT,
                    n(self.ttl_after(self.options.session_retention)),
                );
            format!(
                "attribute_exists({}) AND {} <> {}",
                e.n(PK),
                e.n(STATUS),
                e.v("ended", s(SessionStatus::Ended.as_str()))
            )
        };
        let mut e = Expr::new();
        let cond = ended(&mut e);
        let update = Update::builder()
            .table_name(&*self.tables.sessions)
            .set_key(Some(key_of(PK, session_pk(id))))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_error)?;
        let mut g = Expr::new();
        let guard_cond = format!(
            "{} = {}",
            g.n(INITIAL_CONTACT_ID),
            g.v("id", s(id.as_str()))
        );
        let delete = Delete::builder()
            .table_name(&*self.tables.sessions)
            .set_key(Some(key_of(
                PK,
                guard_pk(&session.business, &session.customer),
            )))
            .condition_expression(guard_cond)
            .set_expression_attribute_names(g.names())
            .set_expression_attribute_values(g.values())
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ];
        match self
            .calls
            .transact(OP, &self.tables.sessions, items)
            .await?
        {
            Tx::Committed => Ok(true),
            // Ended (or gone) meanwhile.
            Tx::Cancelled(codes) if Tx::failed(&codes, 0) => Ok(false),
            Tx::Cancelled(_) => {
                // The guard does not point at this open session (it should): end it alone.
                tracing::warn!(initial_contact_id = %id, "ending a session whose open-session guard is missing");
                let mut e = Expr::new();
                let cond = ended(&mut e);
                let request = self
                    .calls
                    .client
                    .update_item()
                    .table_name(&*self.tables.sessions)
                    .set_key(Some(key_of(PK, session_pk(id))))
                    .update_expression(e.update())
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values());
                Ok(self
                    .calls
                    .update(OP, &self.tables.sessions, request)
                    .await?
                    == Written::Yes)
            }
        }
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        let item = self
            .calls
            .get(
                "cached_profile",
                &self.tables.profiles,
                key_of(USER_ID, id.as_str()),
            )
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        let (profile, expires_at_ms) = profile_from_item(id, &item)?;
        Ok((expires_at_ms > now_ms).then_some(profile))
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.calls
            .put(
                "cache_profile",
                &self.tables.profiles,
                profile_item(profile, expires_at_ms)?,
            )
            .await
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
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
            let stored = self.enqueue_chunk(&batch).await?;
            for (&i, new) in chunk.iter().zip(stored) {
                fresh[i] = new;
            }
        }
        Ok(fresh)
    }

    async fn lane_heads(
        &self,
        queue: Queue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        const OP: &str = "lane_heads";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut e = Expr::new();
        let cond = format!("{} = {}", e.n(OPEN_QUEUE), e.v("q", s(queue.as_str())));
        let request = self
            .calls
            .client
            .query()
            .table_name(&*self.tables.lanes)
            .index_name(OPEN_LANES)
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        let lanes = self
            .calls
            .query(OP, &self.tables.lanes, request, None)
            .await?;

        // (lane, key of its head) from the index image.
        let mut candidates: Vec<(String, String)> = Vec::with_capacity(lanes.len());
        for item in &lanes {
            let r = Reader::new(item, "lane");
            let lane = r.s(LANE)?;
            match lane_head(r.ss(OPEN)?) {
                Some(head) => {
                    let (_, key) = parse_member(head).ok_or_else(|| {
                        StoreError::Corrupt(format!("dynamodb lane {lane:?}: bad member {head:?}"))
                    })?;
                    candidates.push((lane.to_owned(), key.to_owned()));
                }
                None => self.retire_lane(queue, lane).await?,
            }
        }
        let found = self
            .calls
            .batch_get(
                OP,
                &self.tables.jobs,
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
                _ => heads.extend(self.fresh_head(OP, queue, &lane).await?),
            }
        }
        heads.retain(|j| !(j.state == JobState::Processing && j.lease_until_ms > now_ms));
        heads.sort_by(|a, b| (a.due_at_ms(), &a.key).cmp(&(b.due_at_ms(), &b.key)));
        heads.truncate(limit);
        Ok(heads)
    }

    /// Read from the lane item and the job (two strongly consistent GetItems), never from the
    /// index: a process that has just enqueued into a lane (a Lambda invocation) finds its job.
    async fn lane_head(
        &self,
        queue: Queue,
        lane: &str,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        let head = self.fresh_head("lane_head", queue, lane).await?;
        Ok(head.filter(|j| !(j.state == JobState::Processing && j.lease_until_ms > now_ms)))
    }

    async fn claim(
        &self,
        queue: Queue,
        key: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "claim";
        for _ in 0..RACE_ATTEMPTS {
            let Some(job) = self.get_job(OP, queue, key).await? else {
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
            let lane_key = key_of(PK, lane_pk(queue, &job.lane));
            let Some(lane) = self
                .calls
                .get(OP, &self.tables.lanes, lane_key.clone())
                .await?
            else {
                tracing::warn!(queue = queue.as_str(), key, "an open job has no lane item");
                return Ok(false);
            };
            let r = Reader::new(&lane, "lane");
            if lane_head(r.ss(OPEN)?) != Some(member(job.order_key, &job.key).as_str()) {
                return Ok(false);
            }
            let ver = r.n(VER)?;

            let mut l = Expr::new();
            let lane_cond = format!("{} = {}", l.n(VER), l.v("ver", n(ver)));
            let check = ConditionCheck::builder()
                .table_name(&*self.tables.lanes)
                .set_key(Some(lane_key))
                .condition_expression(lane_cond)
                .set_expression_attribute_names(l.names())
                .set_expression_attribute_values(l.values())
                .build()
                .map_err(build_error)?;

            let mut e = Expr::new();
            self.state_clauses(&mut e, queue, JobState::Processing, now_ms);
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
            let update = Update::builder()
                .table_name(&*self.tables.jobs)
                .set_key(Some(key_of(PK, job_pk(queue, key))))
                .update_expression(e.update())
                .condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .build()
                .map_err(build_error)?;
            let items = vec![
                TransactWriteItem::builder().condition_check(check).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            match self.calls.transact(OP, "jobs+lanes", items).await? {
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
    async fn renew_lease(
        &self,
        queue: Queue,
        key: &str,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "renew_lease";
        let mut e = Expr::new();
        e.set(LEASE_UNTIL_MS, n(lease_until_ms))
            .set(UPDATED_AT_MS, n(now_ms));
        self.update_claimed(OP, queue, key, attempt, e).await
    }

    /// One conditional UpdateItem: processing → pending keeps the job open, so its lane item
    /// (`open` holds it either way) is not touched.
    async fn reschedule(
        &self,
        queue: Queue,
        key: &str,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "reschedule";
        let mut e = Expr::new();
        self.state_clauses(&mut e, queue, JobState::Pending, now_ms);
        e.set(NOT_BEFORE_MS, n(not_before_ms))
            .set(LEASE_UNTIL_MS, n(0))
            .set(LAST_ERROR, s(error));
        self.update_claimed(OP, queue, key, attempt, e).await
    }

    /// A GetItem (for the job's lane and order) and one transaction: the job update under the
    /// claim fence, and the removal of its member from the lane's `open` set.
    async fn finish(
        &self,
        queue: Queue,
        key: &str,
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
        self.transition("finish", queue, key, change, |e| {
            e.set(LEASE_UNTIL_MS, n(0));
            if let Some(error) = error {
                e.set(LAST_ERROR, s(error));
            }
        })
        .await
    }

    async fn job(&self, queue: Queue, key: &str) -> Result<Option<Job>, StoreError> {
        self.get_job("job", queue, key).await
    }

    async fn jobs(
        &self,
        queue: Queue,
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
        let page = i32::try_from(limit.min(1_000)).unwrap_or(1_000);
        // (accepted_key, pk): the index order is (accepted_at_ms, key) within each state.
        let mut keys: Vec<(String, String)> = Vec::new();
        for st in states {
            let mut e = Expr::new();
            let cond = format!(
                "{} = {}",
                e.n(QUEUE_STATE),
                e.v("qs", s(queue_state(queue, st)))
            );
            let request = self
                .calls
                .client
                .query()
                .table_name(&*self.tables.jobs)
                .index_name(BY_STATE)
                .key_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .limit(page);
            let items = self
                .calls
                .query(OP, &self.tables.jobs, request, Some(limit))
                .await?;
            for item in items.iter().take(limit) {
                let r = Reader::new(item, "job index entry");
                keys.push((r.s(ACCEPTED_KEY)?.to_owned(), r.s(PK)?.to_owned()));
            }
        }
        keys.sort();
        keys.truncate(limit);
        let found = self
            .calls
            .batch_get(
                OP,
                &self.tables.jobs,
                PK,
                keys.into_iter().map(|(_, pk)| pk),
            )
            .await?;
        let now_s = self.now_s();
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

    async fn retry_failed(&self, queue: Queue, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let change = Change {
            from: Some(JobState::Failed),
            attempts: None,
            to: JobState::Pending,
            at_ms: now_ms,
        };
        // A new start (see `Store::retry_failed`): the next claim sets a new first-claim time.
        self.transition("retry_failed", queue, key, change, |e| {
            e.set(ATTEMPTS, n(0))
                .set(NOT_BEFORE_MS, n(now_ms))
                .remove(FIRST_CLAIMED_AT_MS);
        })
        .await
    }

    async fn release_claims(&self, queue: Queue, now_ms: i64) -> Result<u64, StoreError> {
        const OP: &str = "release_claims";
        let mut e = Expr::new();
        let cond = format!(
            "{} = {}",
            e.n(QUEUE_STATE),
            e.v("qs", s(queue_state(queue, JobState::Processing)))
        );
        let request = self
            .calls
            .client
            .query()
            .table_name(&*self.tables.jobs)
            .index_name(BY_STATE)
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        let items = self
            .calls
            .query(OP, &self.tables.jobs, request, None)
            .await?;
        let keys = Self::keys_of(&items, PK);

        let mut e = Expr::new();
        self.state_clauses(&mut e, queue, JobState::Pending, now_ms);
        e.set(LEASE_UNTIL_MS, n(0)).set(NOT_BEFORE_MS, n(now_ms));
        let cond = format!(
            "{} = {}",
            e.n(STATE),
            e.v("processing", s(JobState::Processing.as_str()))
        );
        let released: Vec<Written> = stream::iter(keys)
            .map(|k| {
                let request = self
                    .calls
                    .client
                    .update_item()
                    .table_name(&*self.tables.jobs)
                    .set_key(Some(key_of(PK, k)))
                    .update_expression(e.update())
                    .condition_expression(cond.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values());
                self.calls.update(OP, &self.tables.jobs, request)
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(released.iter().filter(|w| **w == Written::Yes).count() as u64)
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        const OP: &str = "purge";
        let mut deleted = 0;

        // Done and failed jobs finished before the cut-off.
        for queue in [Queue::Inbound, Queue::Outbound] {
            let mut e = Expr::new();
            let cond = format!(
                "{} = {} AND {} < {}",
                e.n(FINISHED_QUEUE),
                e.v("q", s(queue.as_str())),
                e.n(UPDATED_AT_MS),
                e.v("cut", n(jobs_before_ms))
            );
            deleted += self
                .purge_index(OP, &self.tables.jobs, FINISHED_BY_AGE, PK, e, cond)
                .await?;
        }

        // Ended sessions last updated before the cut-off.
        let mut e = Expr::new();
        let cond = format!(
            "{} = {} AND {} < {}",
            e.n(ENDED_GROUP),
            e.v("ended", s(ENDED_GROUP_VALUE)),
            e.n(UPDATED_AT_MS),
            e.v("cut", n(sessions_before_ms))
        );
        deleted += self
            .purge_index(OP, &self.tables.sessions, ENDED_BY_AGE, PK, e, cond)
            .await?;

        // Profiles expired at `now_ms`.
        let mut e = Expr::new();
        let cond = format!(
            "{} = {} AND {} <= {}",
            e.n(EXPIRY_GROUP),
            e.v("group", s(EXPIRY_GROUP_VALUE)),
            e.n(EXPIRES_AT_MS),
            e.v("now", n(now_ms))
        );
        deleted += self
            .purge_index(OP, &self.tables.profiles, BY_EXPIRY, USER_ID, e, cond)
            .await?;
        Ok(deleted)
    }

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let item = self
            .calls
            .get("record", &self.tables.records, key_of(KEY, key))
            .await?;
        item.map(|item| record_from_item(&item)).transpose()
    }

    /// One conditional UpdateItem that returns the new version.
    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        const OP: &str = "put_record";
        let mut e = Expr::new();
        e.set(VALUE, s(value)).set(UPDATED_AT_MS, n(now_ms));
        let version = e.n(VERSION);
        let one = e.v("one", n(1));
        let condition = match expect {
            Expect::Absent => {
                e.set_raw(format!("{version} = {one}"));
                Some(format!("attribute_not_exists({})", e.n(KEY)))
            }
            Expect::Version(v) => {
                // No stored version is above i64::MAX: the condition cannot hold.
                let Ok(v) = i64::try_from(v) else {
                    return Ok(None);
                };
                e.set_raw(format!("{version} = {version} + {one}"));
                Some(format!("{version} = {}", e.v("expected", n(v))))
            }
            Expect::Any => {
                let zero = e.v("zero", n(0));
                e.set_raw(format!(
                    "{version} = if_not_exists({version}, {zero}) + {one}"
                ));
                None
            }
        };
        let request = self
            .calls
            .client
            .update_item()
            .table_name(&*self.tables.records)
            .set_key(Some(key_of(KEY, key)))
            .update_expression(e.update())
            .set_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::UpdatedNew);
        let Some(new) = self
            .calls
            .update_returning(OP, &self.tables.records, request)
            .await?
        else {
            return Ok(None);
        };
        let version = Reader::new(&new, "record").n(VERSION)?;
        u64::try_from(version).map(Some).map_err(|_| {
            StoreError::Corrupt(format!(
                "dynamodb {OP}: record {key:?}: version out of range: {version}"
            ))
        })
    }

    /// One conditional DeleteItem.
    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        let mut e = Expr::new();
        let condition = match expect {
            Expect::Absent => return Ok(false),
            Expect::Version(v) => {
                let Ok(v) = i64::try_from(v) else {
                    return Ok(false);
                };
                format!("{} = {}", e.n(VERSION), e.v("expected", n(v)))
            }
            // Conditioned on existing, so that the answer says whether something was deleted.
            Expect::Any => format!("attribute_exists({})", e.n(KEY)),
        };
        let request = self
            .calls
            .client
            .delete_item()
            .table_name(&*self.tables.records)
            .set_key(Some(key_of(KEY, key)))
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        let written = self
            .calls
            .delete("delete_record", &self.tables.records, request)
            .await?;
        Ok(written == Written::Yes)
    }

    /// A strongly consistent Scan (paged) filtered by `begins_with`: records are few.
    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        let mut request = self
            .calls
            .client
            .scan()
            .table_name(&*self.tables.records)
            .consistent_read(true);
        if !prefix.is_empty() {
            let mut e = Expr::new();
            let filter = format!("begins_with({}, {})", e.n(KEY), e.v("prefix", s(prefix)));
            request = request
                .filter_expression(filter)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values());
        }
        let items = self
            .calls
            .scan("records", &self.tables.records, request)
            .await?;
        let mut records = items
            .iter()
            .map(record_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(records)
    }
}
