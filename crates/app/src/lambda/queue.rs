//! The SQS FIFO queue that wakes the delivery function when customers have new messages.
//! One message group per customer keeps deliveries of one customer in order; the messages carry
//! only the lane — the events themselves are in the store, so a lost wake-up delays (the
//! periodic sweep catches up) but never loses anything.

use serde::{Deserialize, Serialize};
use xdm_core::jobs::Lane;

/// The body of a wake-up (a lane that is not one is refused when the body is read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeUp {
    pub lane: Lane,
}

#[derive(Debug, Clone)]
pub struct InboundTrigger {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl InboundTrigger {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// Sends one wake-up per lane. Failures are logged, not returned: the events are already
    /// stored and the sweep delivers them.
    pub async fn notify(&self, lanes: &[Lane]) {
        for lane in lanes {
            let body = match serde_json::to_string(&WakeUp { lane: lane.clone() }) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a wake-up");
                    continue;
                }
            };
            let result = self
                .client
                .send_message()
                .queue_url(&self.queue_url)
                .message_group_id(group_id(lane.as_str()))
                .message_deduplication_id(uuid::Uuid::new_v4().to_string())
                .message_body(body)
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not queue a wake-up; the sweep will deliver");
            }
        }
    }
}

/// SQS message group ids allow 128 characters of `[a-zA-Z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~]`;
/// lanes are `business:customer` (digits and a colon).
fn group_id(lane: &str) -> String {
    lane.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}
