//! The bridge: X ⇄ Connect. Accepting events as jobs ([`accept`]), and the two pipelines that
//! run them — a customer's DM into their chat ([`inbound`]), a chat item to the customer on X
//! ([`outbound`]) — registered with the job engine as the handlers of their queues.

mod accept;
mod handlers;
mod inbound;
mod notes;
mod outbound;
mod port_errors;

use std::sync::Arc;

use crate::engine::{DeliveryHold, EngineConfig, JobEngine};
use crate::jobs::JobQueue;
use crate::media::AttachmentPolicy;
use crate::ports::{Clock, Store};

pub use accept::{AcceptReport, ItemAcceptance};

/// Tunables of the bridge (its pipelines and its job engine). Defaults suit production; tests
/// shorten the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// An accepted inbound event waits this long before it is delivered, so that events of one
    /// customer arriving in separate webhook calls slightly out of order are delivered in
    /// `created_timestamp` order.
    pub reorder_window_ms: i64,
    /// Same for chat items streamed by Connect (SNS does not keep order).
    pub outbound_reorder_window_ms: i64,
    /// How long a looked-up X profile is reused.
    pub profile_ttl_ms: i64,
    /// Attempts before a job is parked as failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max_ms` (plus up to 25 % jitter).
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    /// How long a claimed job is reserved for its worker.
    pub lease_ms: i64,
    /// The customer's connection token is renewed when it expires within this margin.
    pub connection_refresh_margin_ms: i64,
    /// Lanes delivered at the same time, per queue.
    pub concurrency: usize,
    /// What Amazon Connect accepts as chat attachments.
    pub attachments: AttachmentPolicy,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            reorder_window_ms: 250,
            outbound_reorder_window_ms: 250,
            profile_ttl_ms: 7 * 24 * 3600 * 1000,
            max_attempts: engine.max_attempts,
            retry_base_ms: engine.retry_base_ms,
            retry_max_ms: engine.retry_max_ms,
            lease_ms: engine.lease_ms,
            connection_refresh_margin_ms: 5 * 60 * 1000,
            concurrency: engine.concurrency,
            attachments: AttachmentPolicy::default(),
        }
    }
}

impl BridgeConfig {
    /// The job engine's part.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            max_attempts: self.max_attempts,
            retry_base_ms: self.retry_base_ms,
            retry_max_ms: self.retry_max_ms,
            lease_ms: self.lease_ms,
            concurrency: self.concurrency,
        }
    }
}

/// The core: the X and Connect ports, and the job engine over the store and the clock. Cheap to
/// share behind an `Arc`.
#[derive(Debug)]
pub struct Bridge<S, X, C, K> {
    engine: Arc<JobEngine<S, K>>,
    x: X,
    connect: C,
    config: BridgeConfig,
}

impl<S: Store, X, C, K: Clock> Bridge<S, X, C, K> {
    pub fn new(store: S, x: X, connect: C, clock: K, config: BridgeConfig) -> Arc<Self> {
        Arc::new(Self {
            engine: JobEngine::new(store, clock, config.engine()),
            x,
            connect,
            config,
        })
    }

    /// The job engine the pipelines' jobs run on.
    pub fn engine(&self) -> &Arc<JobEngine<S, K>> {
        &self.engine
    }

    pub fn store(&self) -> &S {
        self.engine.store()
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.engine.now_ms()
    }

    /// Wakes the dispatcher of a queue to look at every lane (see [`JobEngine::wake`]).
    pub fn wake(&self, queue: JobQueue) {
        self.engine.wake(queue);
    }

    /// Holds the delivery of `queue` (see [`JobEngine::hold`]).
    pub fn hold(&self, queue: JobQueue) -> DeliveryHold {
        self.engine.hold(queue)
    }

    /// Whether the delivery of `queue` is held.
    pub fn is_held(&self, queue: JobQueue) -> bool {
        self.engine.is_held(queue)
    }
}

#[cfg(test)]
mod tests;
