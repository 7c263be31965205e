//! What reading a delivery gives: its shape, its business account, its events, and the events it
//! had to leave out.

use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::InboundBatch;

/// Which of the two webhook formats a delivery used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryShape {
    AccountActivity,
    XActivity,
}

/// A delivery read: the events the bridge understood, and those it had to skip.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDelivery {
    pub shape: DeliveryShape,
    /// The subscribed business account (`for_user_id`), when the delivery names one.
    pub business: Option<XUserId>,
    pub batch: InboundBatch,
    /// Events dropped because they were malformed (each already logged at WARN).
    pub skipped: Vec<SkippedEvent>,
}

/// An event left out of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEvent {
    /// The list it came from (`direct_message_events`, …).
    pub list: &'static str,
    /// Its position in that list.
    pub index: usize,
    /// Its id, when it had a valid one.
    pub event_id: Option<XEventId>,
    pub reason: &'static str,
}
