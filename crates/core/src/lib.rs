//! xdm-core: the domain of xdm-connect — identifiers, events, sessions, the ports the outside
//! world is reached through, the job engine, and the pipelines that run on it to move messages
//! between X DMs and Amazon Connect chats. No HTTP, no AWS: adapters implement the ports (see
//! docs/architecture.md).

pub mod chat_item;
pub mod engine;
pub mod ids;
pub mod inbound;
pub mod jobs;
pub mod media;
pub mod memory_store;
pub mod metric_names;
pub mod pipeline;
pub mod ports;
pub mod profile;
pub mod records;
pub mod session;
pub mod text;
pub mod x_tokens;

pub use engine::{DeliveryHold, JobEngine, JobHandler, JobOutcome};
pub use pipeline::{
    AcceptReport, AccountRouting, Bridge, BridgeConfig, BridgeConfigError,
    DEFAULT_ENDED_CHAT_WINDOW_MS, DEFAULT_MAX_EVENT_AGE_MS, ItemAcceptance,
};
