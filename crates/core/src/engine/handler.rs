//! What runs a job: the one trait a kind of work implements, and the registry that says which
//! handler serves which queue.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::jobs::{Job, JobQueue};

use super::JobOutcome;

/// The future of one run. Boxed: handlers are stored as trait objects, and the pipelines'
/// futures are large (the engine holds one across a lease heartbeat).
pub type BoxedRun<'a> = Pin<Box<dyn Future<Output = JobOutcome> + Send + 'a>>;

/// Runs the jobs of one queue. The engine calls it once per claim with the job as claimed
/// (`attempts` is the claim's number), and records the answer: done, retry (at a time or after
/// the backoff) or failed. A handler must be idempotent: a job may run again after a crash, a
/// lease that ran out, or a superseded claim (see the `Store` port's "Claims and fencing"). It
/// may be stopped at any `.await` (a superseded claim drops its future).
pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a>;

    /// Whether a run needs its claim on disk before it starts. `true` (the default) for a handler
    /// whose idempotence rests on what an earlier claim left (the outbound pipeline: a retry reads
    /// back what X has since the first claim). A handler that reads nothing of an earlier claim
    /// (its effects are keyed by the job itself, as Connect's ClientTokens made from the event id
    /// are) answers `false`: the store may then record the claim with a later commit
    /// ([`Store::claim_deferred`](crate::ports::Store::claim_deferred)), and a crash that loses
    /// it makes the job run again exactly as a crash before the claim would.
    fn needs_recorded_claim(&self) -> bool {
        true
    }
}

/// Which handler serves which queue. A new kind of work is a [`JobQueue`], a [`JobHandler`] and
/// one [`register`](Handlers::register) call; the engine is not touched.
#[derive(Clone, Default)]
pub struct Handlers {
    by_queue: BTreeMap<JobQueue, Arc<dyn JobHandler>>,
}

impl Handlers {
    /// Serves `queue` with `handler` (replacing an earlier registration).
    pub fn register(&mut self, queue: JobQueue, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.by_queue.insert(queue, handler);
        self
    }

    pub fn get(&self, queue: JobQueue) -> Option<&Arc<dyn JobHandler>> {
        self.by_queue.get(&queue)
    }

    /// The queues that have a handler.
    pub fn queues(&self) -> impl Iterator<Item = JobQueue> + '_ {
        self.by_queue.keys().copied()
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("queues", &self.by_queue.keys().collect::<Vec<_>>())
            .finish()
    }
}
