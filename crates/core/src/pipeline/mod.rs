//! The bridge: accepting events durably, then delivering them (X → Connect and Connect → X).

mod accept;
mod inbound;
mod notes;
mod outbound;
mod outcome;

use std::sync::Arc;

use crate::jobs::Queue;
use crate::media::AttachmentPolicy;
use crate::ports::{Clock, ConnectApi, Store, XApi};
use crate::wakeups::Wakeups;

pub use accept::{AcceptReport, ItemAcceptance};
pub use outcome::JobOutcome;
pub(crate) use outcome::backoff_ms;

/// Tunables of the pipelines. Defaults suit production; tests shorten the timings.
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
        Self {
            reorder_window_ms: 250,
            outbound_reorder_window_ms: 250,
            profile_ttl_ms: 7 * 24 * 3600 * 1000,
            max_attempts: 25,
            retry_base_ms: 1_000,
            retry_max_ms: 5 * 60 * 1000,
            lease_ms: 120_000,
            connection_refresh_margin_ms: 5 * 60 * 1000,
            concurrency: 64,
            attachments: AttachmentPolicy::default(),
        }
    }
}

/// The core: owns the ports and runs the pipelines. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Bridge<S, X, C, K> {
    store: S,
    x: X,
    connect: C,
    clock: K,
    config: BridgeConfig,
    inbound_wake: Wakeups,
    outbound_wake: Wakeups,
}

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    pub fn new(store: S, x: X, connect: C, clock: K, config: BridgeConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            x,
            connect,
            clock,
            config,
            inbound_wake: Wakeups::default(),
            outbound_wake: Wakeups::default(),
        })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Wakes the dispatcher of a queue to look at every lane (work it was not told about).
    pub fn wake(&self, queue: Queue) {
        self.wakeups(queue).all();
    }

    /// Tells the dispatcher of a queue that `lane` has a job that may run from `due_ms`.
    pub(crate) fn wake_lane(&self, queue: Queue, lane: &str, due_ms: i64) {
        self.wakeups(queue).lane(lane, due_ms);
    }

    /// Holds the delivery of `queue`: until every returned guard is dropped, the dispatcher
    /// starts no new job (jobs in hand finish; accepting goes on). A catch-up holds inbound
    /// delivery while it stores the DMs of a gap, so that they are delivered before newer ones
    /// of the same customer that arrived meanwhile (lanes run in `order_key` order).
    pub fn hold(self: &Arc<Self>, queue: Queue) -> DeliveryHold<S, X, C, K> {
        self.wakeups(queue).hold();
        DeliveryHold {
            bridge: Arc::clone(self),
            queue,
        }
    }

    /// Whether the delivery of `queue` is held.
    pub fn is_held(&self, queue: Queue) -> bool {
        self.wakeups(queue).is_held()
    }

    pub(crate) fn wakeups(&self, queue: Queue) -> &Wakeups {
        match queue {
            Queue::Inbound => &self.inbound_wake,
            Queue::Outbound => &self.outbound_wake,
        }
    }
}

/// A hold on one queue's delivery ([`Bridge::hold`]); released when dropped.
#[derive(Debug)]
pub struct DeliveryHold<S, X, C, K> {
    bridge: Arc<Bridge<S, X, C, K>>,
    queue: Queue,
}

impl<S, X, C, K> Drop for DeliveryHold<S, X, C, K> {
    fn drop(&mut self) {
        let wakeups = match self.queue {
            Queue::Inbound => &self.bridge.inbound_wake,
            Queue::Outbound => &self.bridge.outbound_wake,
        };
        wakeups.release();
    }
}

#[cfg(test)]
mod tests;
