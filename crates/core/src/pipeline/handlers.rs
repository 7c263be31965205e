//! The pipelines as the job engine sees them: one [`JobHandler`] per queue of the bridge, their
//! registration, and the bridge's shortcuts to run its queues with them.

use std::sync::Arc;

use tokio::sync::watch;

use crate::engine::{BoxedRun, Handlers, JobHandler, RunSummary};
use crate::jobs::{Job, JobQueue, Lane};
use crate::ports::{Clock, ConnectApi, Store, XApi};

use super::Bridge;

/// Runs inbound jobs: a customer's DM into their chat.
struct InboundDelivery<S, X, C, K>(Arc<Bridge<S, X, C, K>>);

/// Runs outbound jobs: a chat item to the customer on X.
struct OutboundDelivery<S, X, C, K>(Arc<Bridge<S, X, C, K>>);

impl<S, X, C, K> JobHandler for InboundDelivery<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a> {
        Box::pin(self.0.handle_inbound(job))
    }

    /// Every Connect call of an inbound run carries a ClientToken made from the event id, and
    /// nothing reads the claim's `attempts` or first time: a run after a lost claim repeats
    /// nothing (Connect answers the same tokens with what it did the first time).
    fn needs_recorded_claim(&self) -> bool {
        false
    }
}

impl<S, X, C, K> JobHandler for OutboundDelivery<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a> {
        Box::pin(self.0.handle_outbound(job))
    }
}

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    /// The handlers of the bridge's queues: inbound DMs and outbound chat items.
    pub fn handlers(self: &Arc<Self>) -> Handlers {
        let mut handlers = Handlers::default();
        handlers
            .register(
                JobQueue::Inbound,
                Arc::new(InboundDelivery(Arc::clone(self))),
            )
            .register(
                JobQueue::Outbound,
                Arc::new(OutboundDelivery(Arc::clone(self))),
            );
        handlers
    }

    /// Delivers the jobs of `queue` until `shutdown` turns true (see
    /// [`JobEngine::run_dispatcher`]).
    pub async fn run_dispatcher(self: Arc<Self>, queue: JobQueue, shutdown: watch::Receiver<bool>) {
        let Some(handler) = self.handlers().get(queue).cloned() else {
            tracing::error!(
                queue = queue.as_str(),
                "no handler for this queue; nothing runs"
            );
            return;
        };
        // What this process accepts from now on is delivered here: hand it over typed.
        match queue {
            JobQueue::Inbound => self.inbound_handoff.turn_on(),
            JobQueue::Outbound => self.outbound_handoff.turn_on(),
        }
        Arc::clone(&self.engine)
            .run_dispatcher(queue, handler, shutdown)
            .await;
    }

    /// Runs the due jobs of `queue` (of one lane if given) until `deadline_ms` (see
    /// [`JobEngine::run_due`]).
    pub async fn run_due(
        self: &Arc<Self>,
        queue: JobQueue,
        lane: Option<&Lane>,
        deadline_ms: i64,
        max_wait_ms: i64,
    ) -> RunSummary {
        let Some(handler) = self.handlers().get(queue).cloned() else {
            return RunSummary::default();
        };
        self.engine
            .run_due(queue, &handler, lane, deadline_ms, max_wait_ms)
            .await
    }

    /// Runs one claimed job of `queue` and records its outcome (see [`JobEngine::run_job`]).
    pub async fn run_job(self: &Arc<Self>, queue: JobQueue, job: Job) {
        if let Some(handler) = self.handlers().get(queue) {
            self.engine.run_job(queue, handler.as_ref(), job).await;
        }
    }
}
