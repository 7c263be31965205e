//! The job engine: durable queues of jobs, run one at a time per lane, in order, with claims,
//! leases, fencing, retries with backoff and wake-ups. It knows nothing of X or Connect: what a
//! job *does* is the [`JobHandler`] registered for its queue (the pipelines register theirs in
//! [`crate::Bridge::handlers`]). See docs/architecture.md, "The job engine".
//!
//! * [`JobEngine`] holds the store and the clock, accepts jobs ([`JobEngine::enqueue`]) and tells
//!   the dispatchers about them;
//! * [`dispatcher`] runs a queue's jobs with its handler (a long-running loop, or one pass for
//!   processes without one such as AWS Lambda);
//! * [`JobOutcome`] is what a handler answers; the engine turns it into the job's next state;
//! * [`retry_failed_jobs`] is the operator's re-drive of failed jobs.

mod dispatcher;
mod handler;
mod outcome;
mod retry_failed;
mod wakeups;

use std::collections::HashMap;
use std::sync::Arc;

use crate::jobs::{JobQueue, Lane, NewJob};
use crate::ports::{Clock, Store, StoreError};

pub use dispatcher::RunSummary;
pub use handler::{BoxedRun, Handlers, JobHandler};
pub use outcome::JobOutcome;
pub(crate) use outcome::backoff_ms;
pub use retry_failed::{FailedJobs, Retried, retry_failed_jobs};
use wakeups::Wakeups;

/// The engine's tunables. Defaults suit production; tests shorten the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Attempts before a job is parked as failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max_ms` (plus up to 25 % jitter).
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    /// How long a claimed job is reserved for its worker.
    pub lease_ms: i64,
    /// Lanes run at the same time, per queue.
    pub concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 25,
            retry_base_ms: 1_000,
            retry_max_ms: 5 * 60 * 1000,
            lease_ms: 120_000,
            concurrency: 64,
        }
    }
}

/// The durable queues of one store, and what their dispatchers are told between two looks at
/// it. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct JobEngine<S, K> {
    store: S,
    clock: K,
    config: EngineConfig,
    wakeups: HashMap<JobQueue, Arc<Wakeups>>,
}

impl<S: Store, K: Clock> JobEngine<S, K> {
    pub fn new(store: S, clock: K, config: EngineConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            config,
            wakeups: JobQueue::ALL
                .into_iter()
                .map(|q| (q, Arc::default()))
                .collect(),
        })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Stores `jobs` atomically (see [`Store::enqueue`]) and tells each new job's dispatcher
    /// about its lane. Returns, per job, whether it was new (`false`: a duplicate, dropped).
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let fresh = self.store.enqueue(jobs).await?;
        for (job, new) in jobs.iter().zip(&fresh) {
            if *new {
                self.wake_lane(job.queue, &job.lane, job.not_before_ms);
            }
        }
        Ok(fresh)
    }

    /// Wakes the dispatcher of a queue to look at every lane (work it was not told about).
    pub fn wake(&self, queue: JobQueue) {
        self.wakeups(queue).all();
    }

    /// Tells the dispatcher of a queue that `lane` has a job that may run from `due_ms`.
    pub(crate) fn wake_lane(&self, queue: JobQueue, lane: &Lane, due_ms: i64) {
        self.wakeups(queue).lane(lane, due_ms);
    }

    /// Holds `queue`: until every returned guard is dropped, its dispatcher starts no new job
    /// (jobs in hand finish; accepting goes on). A catch-up holds inbound delivery while it
    /// stores the DMs of a gap, so that they run before newer ones of the same customer that
    /// arrived meanwhile (lanes run in `order_key` order).
    pub fn hold(&self, queue: JobQueue) -> DeliveryHold {
        let wakeups = Arc::clone(self.wakeups(queue));
        wakeups.hold();
        DeliveryHold { wakeups }
    }

    /// Whether `queue` is held.
    pub fn is_held(&self, queue: JobQueue) -> bool {
        self.wakeups(queue).is_held()
    }

    fn wakeups(&self, queue: JobQueue) -> &Arc<Wakeups> {
        // Every queue gets its entry in `new`.
        &self.wakeups[&queue]
    }
}

/// A hold on one queue ([`JobEngine::hold`]); released when dropped.
#[derive(Debug)]
pub struct DeliveryHold {
    wakeups: Arc<Wakeups>,
}

impl Drop for DeliveryHold {
    fn drop(&mut self) {
        self.wakeups.release();
    }
}

#[cfg(test)]
mod tests;
