//! The bridge: X ⇄ Connect. Accepting events as jobs ([`accept`]), and the two pipelines that
//! run them — a customer's DM into their chat ([`inbound`]), a chat item to the customer on X
//! ([`outbound`]) — registered with the job engine as the handlers of their queues.

mod accept;
mod buffering;
mod chat_events;
mod customer_profiles;
mod handlers;
mod handoff;
mod inbound;
mod notes;
mod outbound;
mod port_errors;
mod previous_chat;
mod receipts;
mod typing;
mod typing_gate;
mod x_chat;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::chat_item::ChatItem;
use crate::engine::{DeliveryHold, EngineConfig, JobEngine};
use crate::ids::XUserId;
use crate::inbound::InboundEvent;
use crate::jobs::{JOB_RETENTION_MS, JobQueue};
use crate::media::AttachmentPolicy;
use crate::ports::{Clock, Store};

pub use accept::{AcceptReport, ItemAcceptance};
pub use typing_gate::TYPING_INTERVAL_MS;

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
    /// A customer DM that X pushes (webhook, activity stream) with a `created_timestamp` older
    /// than this is acknowledged but not delivered: a signed delivery captured and replayed
    /// after its dedup record was purged ([`JOB_RETENTION_MS`]) must not reach the chat twice.
    /// DMs the bridge reads back from X itself (the catch-up, [`Bridge::accept_caught_up`]) are
    /// not bounded. Must stay well under the job retention ([`BridgeConfig::check`]).
    pub max_event_age_ms: i64,
    /// A chat item accepted longer than this after its chat ended is not delivered (a replayed
    /// SNS message). Items of a chat that ended more recently are: SNS does not keep order, so
    /// an agent's last message may arrive after `chat.ended`. The app sets it to the SNS message
    /// age bound plus the clock-skew allowance.
    pub ended_chat_window_ms: i64,
    /// Persistent chat: a customer's new chat continues their previous one (`ENTIRE_PAST_SESSION`)
    /// when it ended at most this long ago; 0 (or less) turns it off.
    pub persistent_chat_window_ms: i64,
    /// Message buffering: a customer's DMs written within this long of each other reach the
    /// chat as one Connect message (each DM then waits this long before delivery); 0 (or less)
    /// turns it off.
    pub buffer_window_ms: i64,
    /// Where each business account's chats start, when not in the default contact flow, and the
    /// contact attributes it adds (several business accounts, each with its own flow).
    pub accounts: BTreeMap<XUserId, AccountRouting>,
}

/// How the chats of one business account start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRouting {
    /// StartChatContact's `ContactFlowId`; `None`: the configured default flow.
    pub contact_flow_id: Option<String>,
    /// Contact attributes added to its chats (the bridge's own — `Channel`, `customerId`, … —
    /// win over a key of the same name).
    pub attributes: BTreeMap<String, String>,
}

/// Default of [`BridgeConfig::max_event_age_ms`]: 48 hours — X's webhook replay reaches 24 hours
/// back, and its retries and a day's margin fit; 5 days below the job retention.
pub const DEFAULT_MAX_EVENT_AGE_MS: i64 = 48 * 3600 * 1000;
/// Default of [`BridgeConfig::ended_chat_window_ms`]: SNS retries an HTTP/S delivery for at most
/// an hour, plus 5 minutes of clock skew.
pub const DEFAULT_ENDED_CHAT_WINDOW_MS: i64 = 65 * 60 * 1000;

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
            max_event_age_ms: DEFAULT_MAX_EVENT_AGE_MS,
            ended_chat_window_ms: DEFAULT_ENDED_CHAT_WINDOW_MS,
            persistent_chat_window_ms: 0,
            buffer_window_ms: 0,
            accounts: BTreeMap::new(),
        }
    }
}

/// A [`BridgeConfig`] whose replay bounds do not fit inside the job retention.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeConfigError {
    /// `max_event_age_ms` or `ended_chat_window_ms` is not positive or not at least a day
    /// shorter than [`JOB_RETENTION_MS`].
    #[error(
        "{field} is {value_ms} ms: it must be positive and at least a day shorter than the {JOB_RETENTION_MS} ms jobs are kept"
    )]
    ReplayBound { field: &'static str, value_ms: i64 },
}

impl BridgeConfig {
    /// Checks that the replay bounds stay inside the job retention, with a day to spare (clock
    /// skew, purge schedule): an event still young enough to be accepted then always finds the
    /// record of its first acceptance, so it is dropped as a duplicate.
    pub fn check(&self) -> Result<(), BridgeConfigError> {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        for (field, value_ms) in [
            ("max_event_age_ms", self.max_event_age_ms),
            ("ended_chat_window_ms", self.ended_chat_window_ms),
        ] {
            if value_ms <= 0 || value_ms > JOB_RETENTION_MS - DAY_MS {
                return Err(BridgeConfigError::ReplayBound { field, value_ms });
            }
        }
        Ok(())
    }

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
    typing: typing_gate::TypingGate,
    /// Accepted events on their way to their delivery in this process ([`handoff`]).
    inbound_handoff: handoff::HandOff<InboundEvent>,
    outbound_handoff: handoff::HandOff<ChatItem>,
}

impl<S: Store, X, C, K: Clock> Bridge<S, X, C, K> {
    pub fn new(store: S, x: X, connect: C, clock: K, config: BridgeConfig) -> Arc<Self> {
        Arc::new(Self {
            engine: JobEngine::new(store, clock, config.engine()),
            x,
            connect,
            config,
            typing: typing_gate::TypingGate::default(),
            inbound_handoff: handoff::HandOff::default(),
            outbound_handoff: handoff::HandOff::default(),
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
