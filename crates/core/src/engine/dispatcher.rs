//! Runs a queue's jobs with its handler: one at a time per lane, many lanes at once, in order,
//! with retries. Jobs live in the store, so a restart resumes where the last process stopped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::jobs::{FinalState, Job, JobQueue, JobState, Lane};
use crate::metric_names::{DELIVERY_LATENCY, JOB_ATTEMPTS, QUEUE_AGE};
use crate::ports::{Clock, Store, StoreError};

use super::{JobEngine, JobHandler, JobOutcome, backoff_ms};

/// What [`JobEngine::run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Jobs claimed and run (whatever their outcome).
    pub ran: usize,
    /// Due jobs another worker claimed first.
    pub lost_claims: usize,
    pub store_errors: usize,
    /// When the next job of what was looked at becomes due, if one is waiting.
    pub next_due_ms: Option<i64>,
}

/// The longest the dispatcher sleeps without looking at the store (covers jobs made due by
/// another process sharing the store).
const IDLE_POLL: Duration = Duration::from_secs(1);
const IDLE_POLL_MS: i64 = 1_000;

/// Pause after the store failed to answer, before asking again.
const STORE_ERROR_PAUSE: Duration = Duration::from_millis(STORE_ERROR_PAUSE_MS.unsigned_abs());
const STORE_ERROR_PAUSE_MS: i64 = 500;

impl<S: Store, K: Clock> JobEngine<S, K> {
    /// Runs the jobs of `queue` with `handler` until `shutdown` turns true, then waits for the
    /// jobs in hand.
    ///
    /// The heads of every lane are read at start, every second (work made due by another process
    /// sharing the store), after [`JobEngine::wake`] and while more lanes are due than can run.
    /// Otherwise the dispatcher looks up only the lanes it was told about (an accepted job, a
    /// finished or rescheduled one), each when its job becomes due.
    pub async fn run_dispatcher(
        self: Arc<Self>,
        queue: JobQueue,
        handler: Arc<dyn JobHandler>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let concurrency = self.config().concurrency.max(1);
        let mut running: JoinSet<Lane> = JoinSet::new();
        let mut busy_lanes: HashSet<Lane> = HashSet::new();
        // Lanes known to have a job, and from when it may run.
        let mut waiting: HashMap<Lane, i64> = HashMap::new();
        let mut next_scan_ms = i64::MIN;
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.wakeups(queue).awake();
            let (hints, rescan) = self.wakeups(queue).take();
            for (lane, due) in hints {
                waiting
                    .entry(lane)
                    .and_modify(|d| *d = (*d).min(due))
                    .or_insert(due);
            }
            if rescan {
                next_scan_ms = i64::MIN;
            }
            let now = self.now_ms();
            let mut store_failed = false;
            // While held (a catch-up is putting older events in place), nothing new starts;
            // jobs in hand finish, and the release asks for a full scan.
            let held = self.wakeups(queue).is_held();
            if !held && running.len() < concurrency && now >= next_scan_ms {
                next_scan_ms = now.saturating_add(IDLE_POLL_MS);
                let limit = concurrency * 2;
                match self.store().lane_heads(queue, now, limit).await {
                    Ok(heads) => {
                        // Heads come soonest due first. If even the last one read is due,
                        // more lanes may be due than one read returns: read again as soon as
                        // there is room, not only at the next poll. (Lanes due later are not a
                        // reason: re-reading them on every turn of the loop cost 3.6 ms of CPU
                        // per DM with 200 lanes waiting a 2 s window.)
                        if heads.len() >= limit
                            && heads.last().is_some_and(|j| j.due_at_ms() <= now)
                        {
                            next_scan_ms = now;
                        }
                        for job in heads {
                            if busy_lanes.contains(&job.lane) {
                                continue;
                            }
                            let due = job.due_at_ms();
                            if due > now || running.len() >= concurrency {
                                waiting.insert(job.lane.clone(), due);
                                continue;
                            }
                            waiting.remove(&job.lane);
                            if self
                                .start(queue, &handler, job, now, &mut running, &mut busy_lanes)
                                .await
                                .is_err()
                            {
                                store_failed = true;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(queue = queue.as_str(), error = %e, "store unavailable; retrying");
                        store_failed = true;
                    }
                }
            }
            // The lanes told about whose time has come, soonest first.
            let mut due_lanes: Vec<(i64, Lane)> = waiting
                .iter()
                .filter(|(lane, due)| **due <= now && !busy_lanes.contains(*lane))
                .map(|(lane, due)| (*due, lane.clone()))
                .collect();
            due_lanes.sort_unstable();
            for (_, lane) in due_lanes {
                if held || store_failed || running.len() >= concurrency {
                    break;
                }
                waiting.remove(&lane);
                match self.store().lane_head(queue, &lane, now).await {
                    Ok(Some(job)) if job.due_at_ms() > now => {
                        waiting.insert(lane, job.due_at_ms());
                    }
                    Ok(Some(job)) => {
                        if self
                            .start(queue, &handler, job, now, &mut running, &mut busy_lanes)
                            .await
                            .is_err()
                        {
                            store_failed = true;
                        }
                    }
                    // Nothing open, or leased by someone else (the periodic scan sees it
                    // again when the lease ends).
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(queue = queue.as_str(), error = %e, "store unavailable; retrying");
                        waiting.insert(lane, now);
                        store_failed = true;
                    }
                }
            }
            let sleep_for = if store_failed {
                STORE_ERROR_PAUSE
            } else if held {
                IDLE_POLL
            } else {
                let mut wake_at = next_scan_ms;
                if running.len() < concurrency {
                    // At capacity a finished job wakes the loop; until then due lanes wait.
                    if let Some(due) = waiting
                        .iter()
                        .filter(|(lane, _)| !busy_lanes.contains(*lane))
                        .map(|(_, due)| *due)
                        .min()
                    {
                        wake_at = wake_at.min(due);
                    }
                }
                Duration::from_millis(u64::try_from(wake_at.saturating_sub(now)).unwrap_or(0))
                    .min(IDLE_POLL)
            };
            // Hints due before this wake-up still notify; later ones wait for it.
            self.wakeups(queue).sleeping_until(
                now.saturating_add(i64::try_from(sleep_for.as_millis()).unwrap_or(i64::MAX)),
            );
            tokio::select! {
                _ = self.wakeups(queue).notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    match done {
                        // `run_job` has told us when the lane's next job is due.
                        Ok(lane) => { busy_lanes.remove(&lane); }
                        Err(e) => {
                            // A panicking job loses its lane marker; the lease expiry makes the
                            // job claimable again. Rebuild the marker set from what still runs.
                            tracing::error!(error = %e, "a job's task failed");
                            busy_lanes.clear();
                            next_scan_ms = i64::MIN;
                        }
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
        while let Some(done) = running.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a job's task failed during shutdown");
            }
        }
    }

    /// Starts a due head in `running`. A claim the store may defer is made here, before the task
    /// starts (`Ok(false)`: someone else claimed it first). A recorded claim is made by the task
    /// itself, so that the claims of several lanes are in flight at the same time and a store can
    /// make them durable in one commit (SQLite groups them with the acceptances arriving
    /// meanwhile): a commit per recorded claim, made one after the other, was two fifths of an
    /// agent reply's file locking (docs/performance.md, "Recorded claims in the job's task").
    async fn start(
        self: &Arc<Self>,
        queue: JobQueue,
        handler: &Arc<dyn JobHandler>,
        job: Job,
        now: i64,
        running: &mut JoinSet<Lane>,
        busy_lanes: &mut HashSet<Lane>,
    ) -> Result<bool, StoreError> {
        let recorded = handler.needs_recorded_claim();
        let job = if recorded {
            job
        } else {
            match self.claim(queue, job, now, false).await? {
                Some(claimed) => claimed,
                None => return Ok(false),
            }
        };
        busy_lanes.insert(job.lane.clone());
        let engine = Arc::clone(self);
        let handler = Arc::clone(handler);
        running.spawn(async move {
            let lane = job.lane.clone();
            let claimed = if recorded {
                let now = engine.now_ms();
                match engine.claim(queue, job, now, true).await {
                    Ok(claimed) => claimed,
                    Err(_) => {
                        // (`claim` logged it.) The lane is looked at again after the pause.
                        engine.wake_lane(queue, &lane, now.saturating_add(STORE_ERROR_PAUSE_MS));
                        None
                    }
                }
            } else {
                Some(job)
            };
            // `None`: someone else claimed it first.
            if let Some(job) = claimed {
                engine.run_job(queue, handler.as_ref(), job).await;
            }
            lane
        });
        Ok(true)
    }

    /// Claims a due head for `lease_ms`; returns it as claimed, or `None` if someone else
    /// claimed it first. `recorded`: the claim must be on disk before the job runs (else the
    /// store may defer it: [`JobHandler::needs_recorded_claim`]).
    async fn claim(
        &self,
        queue: JobQueue,
        job: Job,
        now: i64,
        recorded: bool,
    ) -> Result<Option<Job>, StoreError> {
        let lease_until = now + self.config().lease_ms;
        let claimed = if recorded {
            self.store().claim(queue, &job.key, lease_until, now).await
        } else {
            self.store()
                .claim_deferred(queue, &job.key, lease_until, now)
                .await
        };
        match claimed {
            Ok(true) => {
                if job.attempts == 0 {
                    metrics::histogram!(QUEUE_AGE, "queue" => queue.as_str())
                        .record(seconds(now - job.accepted_at_ms));
                }
                // The claim's number, which fences its outcome. A claim by someone else since
                // the head was read holds a lease past `now` (ours would have failed) unless it
                // was already released again; then ours is fenced out and the job runs again
                // after the lease: safe, never a double record.
                let mut job = job;
                job.attempts += 1;
                job.state = JobState::Processing;
                Ok(Some(job))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job");
                Err(e)
            }
        }
    }

    /// Runs the jobs of `queue` that are due with `handler` — of one lane if `lane` is given, else of every
    /// lane, several lanes at once — until none is due or `deadline_ms` passes. For processes
    /// without a long-running dispatcher (AWS Lambda): a lane's head that becomes due within
    /// `max_wait_ms` (the reorder window) is waited for; later ones are left for the next run.
    pub async fn run_due(
        self: &Arc<Self>,
        queue: JobQueue,
        handler: &Arc<dyn JobHandler>,
        lane: Option<&Lane>,
        deadline_ms: i64,
        max_wait_ms: i64,
    ) -> RunSummary {
        let mut summary = RunSummary::default();
        loop {
            let now = self.now_ms();
            if now >= deadline_ms {
                break;
            }
            let heads = match lane {
                Some(l) => self
                    .store()
                    .lane_head(queue, l, now)
                    .await
                    .map(|h| h.into_iter().collect::<Vec<_>>()),
                None => {
                    self.store()
                        .lane_heads(queue, now, self.config().concurrency.max(1))
                        .await
                }
            };
            let heads = match heads {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "store unavailable while running due jobs");
                    summary.store_errors += 1;
                    break;
                }
            };
            let (due, later): (Vec<Job>, Vec<Job>) =
                heads.into_iter().partition(|j| j.due_at_ms() <= now);
            if due.is_empty() {
                let next = later.iter().map(Job::due_at_ms).min();
                summary.next_due_ms = next;
                match next {
                    Some(at) if at - now <= max_wait_ms && at < deadline_ms => {
                        tokio::time::sleep(Duration::from_millis(
                            u64::try_from(at - now).unwrap_or(0),
                        ))
                        .await;
                        continue;
                    }
                    _ => break,
                }
            }
            let mut running = JoinSet::new();
            for job in due {
                match self
                    .claim(queue, job, now, handler.needs_recorded_claim())
                    .await
                {
                    Ok(Some(job)) => {
                        let engine = Arc::clone(self);
                        let handler = Arc::clone(handler);
                        running.spawn(
                            async move { engine.run_job(queue, handler.as_ref(), job).await },
                        );
                        summary.ran += 1;
                    }
                    Ok(None) => summary.lost_claims += 1,
                    Err(_) => summary.store_errors += 1,
                }
            }
            if running.is_empty() {
                // Every due head was taken by another worker: let them run.
                break;
            }
            while let Some(done) = running.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a job's task failed");
                }
            }
        }
        summary
    }

    /// Runs one claimed job with `handler` and records its outcome. `job` is the job as claimed: `attempts`
    /// is the claim's number (the head's `attempts + 1`), which fences the record (see
    /// [`Store`]'s "Claims and fencing").
    ///
    /// While the job runs, its lease is renewed every third of `lease_ms` (to `now + lease_ms`),
    /// so a job that runs longer than one lease (a large file relayed to X) is not claimed
    /// again by another worker sharing the store. If a renewal finds the claim superseded, the
    /// job is stopped where it is and nothing is recorded: the newer holder decides (deliveries
    /// are idempotent, and a retry reads back what X already has).
    pub async fn run_job(&self, queue: JobQueue, handler: &dyn JobHandler, job: Job) {
        let outcome = tokio::select! {
            biased;
            outcome = handler.run(&job) => outcome,
            () = self.keep_lease(queue, &job) => {
                // The handler future is dropped: whatever it had under way stops here.
                tracing::warn!(job = %job.key, attempt = job.attempts,
                    "another worker took over this job while it ran; stopped it, its outcome stands");
                metrics::counter!(JOB_ATTEMPTS, "queue" => queue.as_str(), "outcome" => "superseded")
                    .increment(1);
                self.wake(queue);
                return;
            }
        };
        let now = self.now_ms();
        let attempt = job.attempts;
        let cfg = self.config();
        let record = match outcome {
            JobOutcome::Done => Recorded::Done,
            JobOutcome::Failed { reason } => Recorded::Failed {
                reason,
                gave_up: false,
            },
            JobOutcome::Retry { reason, .. } if attempt >= cfg.max_attempts => Recorded::Failed {
                reason,
                gave_up: true,
            },
            JobOutcome::Retry {
                not_before_ms,
                reason,
            } => Recorded::Retry {
                at_ms: not_before_ms.unwrap_or_else(|| {
                    now + backoff_ms(
                        attempt,
                        cfg.retry_base_ms,
                        cfg.retry_max_ms,
                        job.key.as_str(),
                    )
                }),
                reason,
            },
        };
        let store = self.store();
        let result = match &record {
            Recorded::Done => {
                store
                    .finish(queue, &job.key, attempt, FinalState::Done, None, now)
                    .await
            }
            Recorded::Failed { reason, .. } => {
                store
                    .finish(
                        queue,
                        &job.key,
                        attempt,
                        FinalState::Failed,
                        Some(reason),
                        now,
                    )
                    .await
            }
            Recorded::Retry { at_ms, reason } => {
                store
                    .reschedule(queue, &job.key, attempt, *at_ms, reason, now)
                    .await
            }
        };
        if result == Ok(false) {
            // Our lease ran out and another worker claimed the job again (and may have finished
            // it): its outcome is the one that counts, not ours.
            tracing::warn!(job = %job.key, attempt, outcome = record.label(),
                "another worker took over this job; its outcome stands");
            metrics::counter!(JOB_ATTEMPTS, "queue" => queue.as_str(), "outcome" => "superseded")
                .increment(1);
            self.wake(queue);
            return;
        }
        metrics::counter!(JOB_ATTEMPTS, "queue" => queue.as_str(), "outcome" => record.label())
            .increment(1);
        if let Recorded::Done = record {
            metrics::histogram!(DELIVERY_LATENCY, "queue" => queue.as_str())
                .record(seconds(now - job.accepted_at_ms));
        }
        match &record {
            Recorded::Done => {}
            Recorded::Failed {
                reason,
                gave_up: false,
            } => {
                tracing::error!(job = %job.key, %reason, "delivery failed for good; parked as failed");
            }
            Recorded::Failed {
                reason,
                gave_up: true,
            } => {
                tracing::error!(job = %job.key, attempts = attempt, %reason, "giving up after the last attempt; parked as failed");
            }
            Recorded::Retry { at_ms, reason } => {
                tracing::info!(job = %job.key, attempts = attempt, retry_in_ms = at_ms - now, %reason, "delivery will be retried");
            }
        }
        let next_due_ms = match (&result, &record) {
            // The lease expires and the job runs again; deliveries are idempotent.
            (Err(_), _) => now + cfg.lease_ms,
            (Ok(_), Recorded::Retry { at_ms, .. }) => *at_ms,
            // The lane's next job, if any, may be due already.
            (Ok(_), _) => now,
        };
        if let Err(e) = result {
            tracing::error!(job = %job.key, error = %e, "could not record the outcome of a job");
        }
        self.wake_lane(queue, &job.lane, next_due_ms);
    }

    /// The heartbeat of a running job: renews the lease of `job`'s claim every third of the
    /// lease. Returns only when a renewal is fenced out (the claim was superseded, or the job is
    /// no longer processing); a store error is logged and the renewal tried again at the next
    /// beat (the lease may still run out if the store stays away that long).
    async fn keep_lease(&self, queue: JobQueue, job: &Job) {
        let lease_ms = self.config().lease_ms.max(1);
        let beat = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(0).max(1));
        loop {
            tokio::time::sleep(beat).await;
            let now = self.now_ms();
            match self
                .store()
                .renew_lease(
                    queue,
                    &job.key,
                    job.attempts,
                    now.saturating_add(lease_ms),
                    now,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(job = %job.key, attempt = job.attempts, error = %e,
                        "could not renew the lease of a running job; trying again at the next beat");
                }
            }
        }
    }
}

/// Milliseconds as the seconds of a histogram (a clock step backwards counts as 0).
fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// What `run_job` records for a job.
enum Recorded {
    Done,
    /// `gave_up`: a retryable failure on the last attempt.
    Failed {
        reason: String,
        gave_up: bool,
    },
    Retry {
        at_ms: i64,
        reason: String,
    },
}

impl Recorded {
    /// The `outcome` label of [`JOB_ATTEMPTS`].
    fn label(&self) -> &'static str {
        match self {
            Recorded::Done => "done",
            Recorded::Failed { .. } => "failed",
            Recorded::Retry { .. } => "retry",
        }
    }
}
