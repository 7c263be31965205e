//! The queue that keeps chat deliveries in stored order: its sending side, held in the chat
//! state; the worker draining it is [`crate::x::chat::delivery`]'s.

use tokio::sync::mpsc;

use crate::x::outgoing::Outgoing;

/// The sending side of the delivery worker.
#[derive(Debug)]
pub(crate) struct DeliveryQueue {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl DeliveryQueue {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Outgoing>) -> Self {
        Self { tx }
    }

    /// Queues `item`; `Err` when the worker has stopped.
    pub(crate) fn send(&self, item: Outgoing) -> Result<(), Box<mpsc::error::SendError<Outgoing>>> {
        self.tx.send(item).map_err(Box::new)
    }
}
