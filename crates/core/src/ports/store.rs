use std::future::Future;

use crate::ids::{InitialContactId, XUserId};
use crate::jobs::{Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, LaneEntry, NewJob};
use crate::profile::XProfile;
use crate::records::{Expect, Record};
use crate::session::{ConnectionCredentials, Session};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or failed; the operation may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (schema mismatch, corrupt row).
    #[error("the store holds unreadable data: {0}")]
    Corrupt(String),
}

/// Outcome of a conditional session insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionInsert {
    Inserted,
    /// Another open (starting or live) session already exists for the pair: this one.
    OpenExists(Session),
}

/// Durable state. Every backend must pass the conformance suite in `xdm-store`.
///
/// Times are Unix milliseconds; a method that needs the current time takes it last, as `now_ms`.
///
/// Guarantees the core relies on:
/// * at most one open session per (business, customer), enforced by the backend itself
///   (unique constraint / conditional write), not by callers;
/// * `enqueue` is atomic per call and drops jobs whose (queue, key) exists in any state;
/// * `claim` is a compare-and-set: two workers never both win the same job;
/// * the outcome of a claim is recorded only by its holder (`reschedule` and `finish` are
///   fenced, below).
///
/// # Claims and fencing
///
/// A claim is identified by the job's `attempts` right after it: `claim` increments `attempts`,
/// so every successful claim of a job gets a number no earlier claim had (the caller knows it
/// as the claimed head's `attempts + 1`). A lease is not a lock: a worker that stalls past its
/// lease may find that another worker has claimed the job again (and that one's `attempts` is
/// higher), or even finished it. So [`reschedule`](Store::reschedule) and
/// [`finish`](Store::finish) take the claim's `attempt` and apply only while the job is
/// `processing` with exactly that `attempts`, as one conditional write. `Ok(false)` means
/// *fenced out*: the claim was superseded (or the job is unknown, finished, or back to
/// pending); nothing was written, and the caller must not assume its outcome was recorded —
/// the holder of the newer claim decides. An expired lease alone fences nothing: until someone
/// claims the job again, the old holder may still record its outcome.
///
/// A holder whose job runs longer than its lease keeps it with
/// [`renew_lease`](Store::renew_lease), fenced the same way: it moves `lease_until_ms` only
/// while the job is `processing` with the holder's `attempts`. The dispatcher renews every
/// third of the lease while a job runs and stops the job when a renewal answers `Ok(false)`
/// (superseded or finished). Only a holder that stalls *completely* for longer than a lease
/// (no renewal gets through) can then be overtaken while it still runs; its outcome is fenced
/// out as above.
///
/// # Deferred writes
///
/// A backend may make the holder's writes — [`renew_lease`](Store::renew_lease),
/// [`reschedule`](Store::reschedule), [`finish`](Store::finish) —,
/// [`claim_deferred`](Store::claim_deferred) and
/// [`put_record_deferred`](Store::put_record_deferred) durable shortly *after* answering (SQLite: with its
/// next commit, within 50 ms), provided that they take effect at once for every later call of
/// this process, that they keep their compare-and-set and fencing, and that a crash can lose only
/// writes made after every write it keeps (a suffix). Losing them is what a crash just before
/// them does anyway: the job is still processing (or pending) and runs again, which handlers are
/// built for. Every other write (`enqueue` above all: it answers the webhook) is durable when
/// the call returns.
///
/// The operator's and the start-up paths are deliberately not fenced by a claim:
/// [`retry_failed`](Store::retry_failed) reopens a failed job (and resets `attempts`), and
/// [`release_claims`](Store::release_claims) returns processing jobs to pending (their holders
/// are then fenced out by the next claim, which increments `attempts`).
///
/// # Records
///
/// A [`Record`] is a small named value with a version, shared by every process on the store
/// (OAuth 2.0 tokens, refresh leases, the remembered webhook id, cursors). Every write is a
/// compare-and-set on the version, as one conditional write of the backend: an
/// [`Expect::Absent`] put creates the record only if no record has the key, an
/// [`Expect::Version`] put or delete applies only while the record has exactly that version,
/// and [`Expect::Any`] applies unconditionally. A write that applies sets the version to the
/// old + 1 (1 for a new record), so of many writers that read the same version and write with
/// `Expect::Version` exactly one wins; the others get `Ok(None)` / `Ok(false)` and nothing is
/// written. Versions keep counting only while the record exists: a deleted and recreated
/// record starts at 1 again. Values may hold secrets: backends never log them.
pub trait Store: Send + Sync + 'static {
    // -- sessions --------------------------------------------------------------------------

    /// The open (starting or live) session of a customer with a business account.
    fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Any session (open or ended) by the chat's initial contact id.
    fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Inserts `session` unless an open session exists for its (business, customer), in which
    /// case that one is returned as `OpenExists` (also when it is this very contact, stored by an
    /// earlier attempt). An initial contact id stored for another pair, or already ended, is
    /// `Err(Corrupt)`: it can never become this customer's open chat.
    fn insert_session(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<SessionInsert, StoreError>> + Send;

    /// Records the customer's connection and marks the session live (unless it ended).
    fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks a session ended. `Ok(false)` when it was unknown or already ended.
    fn end_session(
        &self,
        id: &InitialContactId,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    // -- profile cache ---------------------------------------------------------------------

    /// A cached profile that has not expired at `now_ms`.
    fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<XProfile>, StoreError>> + Send;

    fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    // -- jobs (inbox / outbox) -------------------------------------------------------------

    /// Accepts jobs atomically; returns, per job, whether it was new (`false` = a job with the
    /// same (queue, key) is stored, in any state; deduplication lasts until `purge` removes it).
    fn enqueue(
        &self,
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// The first open job of every lane whose head is not leased at `now_ms`, soonest due first,
    /// at most `limit`. Heads that are due later are included so callers know when to wake up.
    fn lane_heads(
        &self,
        queue: JobQueue,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// The first open job of one lane unless it is leased at `now_ms`. Backends should override
    /// this with a direct lookup; the default scans every head.
    fn lane_head(
        &self,
        queue: JobQueue,
        lane: &Lane,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        async move {
            let heads = self.lane_heads(queue, now_ms, usize::MAX).await?;
            Ok(heads.into_iter().find(|j| &j.lane == lane))
        }
    }

    /// The open (pending or processing) jobs of one lane in the order they run (`order_key`, then
    /// key), at most `limit`: the first is its head, leased or not. What a running job asks to
    /// know what follows it in its lane (message buffering). Backends should override this with
    /// a read of the lane alone; the default reads every job of the queue.
    fn lane_jobs(
        &self,
        queue: JobQueue,
        lane: &Lane,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LaneEntry>, StoreError>> + Send {
        async move {
            let mut open: Vec<LaneEntry> = self
                .jobs(queue, None, usize::MAX)
                .await?
                .into_iter()
                .filter(|j| &j.lane == lane && j.state.is_open())
                .map(|j| LaneEntry {
                    order_key: j.order_key,
                    key: j.key,
                })
                .collect();
            open.sort_by(|a, b| (a.order_key, &a.key).cmp(&(b.order_key, &b.key)));
            open.truncate(limit);
            Ok(open)
        }
    }

    /// Takes a due head (pending with `not_before_ms <= now_ms`, or processing with an expired
    /// lease): state processing, `attempts + 1`, lease until `lease_until_ms`, and
    /// `first_claimed_at_ms` set to `now_ms` if it is unset (a later claim keeps the first one's
    /// time), in the same conditional write. `Ok(false)` if the job was not claimable (someone
    /// else took it, or it is not due).
    fn claim(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`claim`](Store::claim), for a run that does not need its claim on disk before it starts
    /// ([`JobHandler::needs_recorded_claim`](crate::engine::JobHandler::needs_recorded_claim)):
    /// the backend may make it durable later (see "Deferred writes"). After a crash that lost it,
    /// the job is claimed again as if it never had been (same `attempts`, no
    /// `first_claimed_at_ms`). Backends that have nothing to gain answer as `claim` does.
    fn claim_deferred(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.claim(queue, key, lease_until_ms, now_ms)
    }

    /// Extends the lease of the job claimed as `attempt` to `lease_until_ms` (and sets its
    /// `updated_at_ms` to `now_ms`), nothing else. Applies only while the job is processing with
    /// `attempts == attempt`, as one conditional write; `Ok(false)`: fenced out — the claim was
    /// superseded, or the job is finished, back to pending or unknown — and nothing was written
    /// (see the trait doc). A lease that has expired but was not claimed again is renewed.
    fn renew_lease(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts the job claimed as `attempt` back to pending, to be tried again at `not_before_ms`
    /// (it keeps its place in its lane, and its `first_claimed_at_ms`). Applies only while the job is processing with
    /// `attempts == attempt`; `Ok(false)`: fenced out, nothing written (see the trait doc). Never
    /// reopens a finished job.
    fn reschedule(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends the job claimed as `attempt` as done or failed (freeing its lane); `error`, if given,
    /// replaces the last error, else it is kept. Applies only while the job is processing with
    /// `attempts == attempt`; `Ok(false)`: fenced out, nothing written (see the trait doc).
    fn finish(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        state: FinalState,
        error: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn job(
        &self,
        queue: JobQueue,
        key: &JobKey,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// Jobs of a queue, optionally of one state, oldest accepted first.
    fn jobs(
        &self,
        queue: JobQueue,
        state: Option<JobState>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// How many jobs of `queue` are pending, processing and failed — each counted up to `limit`
    /// (a count of `limit` means at least that many) — and when the oldest pending or
    /// processing job was accepted: the backlog gauges, sampled periodically, so it reads no
    /// payload, at most `limit` index entries per state and one entry per open lane. The counts
    /// may lag writes by a moment where the backend's index does (DynamoDB). A backend may count
    /// the processing jobs among the lanes' heads (a job claimed just before an earlier one
    /// joined its lane then counts as pending until it finishes), and may read the oldest
    /// acceptance from the heads (SQLite: a job behind its lane's head that was accepted before
    /// the head — X delivered it late — is not seen, so the age may read short by that delay).
    /// The default reads the jobs themselves; backends override it.
    fn backlog(
        &self,
        queue: JobQueue,
        limit: usize,
    ) -> impl Future<Output = Result<Backlog, StoreError>> + Send {
        async move {
            let mut backlog = Backlog::default();
            for state in [JobState::Pending, JobState::Processing, JobState::Failed] {
                let jobs = self.jobs(queue, Some(state), limit).await?;
                let count = jobs.len() as u64;
                match state {
                    JobState::Pending => backlog.pending = count,
                    JobState::Processing => backlog.processing = count,
                    _ => backlog.failed = count,
                }
                if state != JobState::Failed
                    && let Some(first) = jobs.first()
                {
                    backlog.oldest_open_accepted_ms = Some(
                        backlog
                            .oldest_open_accepted_ms
                            .map_or(first.accepted_at_ms, |o| o.min(first.accepted_at_ms)),
                    );
                }
            }
            Ok(backlog)
        }
    }

    /// The operator's retry: puts a failed job back to pending (attempts reset to 0, and
    /// `first_claimed_at_ms` cleared), whoever finished it. `Ok(false)` if it was not failed.
    /// Not fenced by a claim.
    ///
    /// `first_claimed_at_ms` is cleared because a failed job no longer holds its lane: later
    /// jobs of the lane may have run since, so the DMs sent after the old first claim are not
    /// all this job's. The re-driven job starts afresh and its next claim sets a new time.
    fn retry_failed(
        &self,
        queue: JobQueue,
        key: &JobKey,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Returns every processing job of the queue to pending (`attempts` and `first_claimed_at_ms`
    /// unchanged), whoever holds
    /// it. For backends owned by one process (SQLite) at start-up: claims of a process that died
    /// are released at once instead of at lease expiry. A holder that is still running is then
    /// fenced out by the next claim.
    fn release_claims(
        &self,
        queue: JobQueue,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes done and failed jobs finished before `jobs_before_ms`, ended sessions updated
    /// before `sessions_before_ms`, and profiles expired at `now_ms`. Returns rows deleted.
    fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    // -- records -----------------------------------------------------------------------------

    /// The record stored under `key`.
    fn record(&self, key: &str) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Writes `value` if `expect` holds, as one conditional write; the new version is the
    /// old one plus 1 (1 for a new record) and `updated_at_ms` is `now_ms`.
    /// `Ok(Some(version))`: written, with that version; `Ok(None)`: the condition failed and
    /// nothing was written.
    fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// [`put_record`](Store::put_record), for a record whose latest writes the caller can lose in
    /// a crash (best-effort state: the agent's messages awaiting a read receipt). The backend may
    /// make it durable later, as the holder's writes (see "Deferred writes"); the compare-and-set
    /// and the version are decided at once. Never for tokens, leases or anything spent once.
    fn put_record_deferred(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        self.put_record(key, value, expect, now_ms)
    }

    /// Deletes the record if `expect` holds, as one conditional write. `Ok(true)`: deleted;
    /// `Ok(false)`: the condition failed (or there was nothing to delete), nothing changed.
    /// `Expect::Absent` never deletes anything (a caller error): `Ok(false)`.
    fn delete_record(
        &self,
        key: &str,
        expect: Expect,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The records whose key starts with `prefix` (all of them for `""`), by key (byte order).
    fn records(&self, prefix: &str)
    -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
}
