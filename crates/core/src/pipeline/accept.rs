//! Accepting events: validate, filter, persist — before the platform that sent them gets its 200.

use crate::chat_item::{ChatItem, ChatItemBody, event_types};
use crate::inbound::{InboundBatch, InboundEvent};
use crate::jobs::{JobKey, JobQueue, Lane, NewJob};
use crate::metric_names::{CHAT_ITEMS, INBOUND_EVENTS};
use crate::ports::{Clock, ConnectApi, Store, StoreError};

use super::Bridge;

/// What became of the events of one webhook delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptReport {
    /// New messages persisted for delivery.
    pub accepted: usize,
    /// Messages already accepted before (X redelivers; dedup by `for_user_id` + event id).
    pub duplicates: usize,
    /// The business account's own DMs coming back (echoes).
    pub echoes: usize,
    /// Typing events, shown in the customer's open chat (best effort, never stored).
    pub typing: usize,
    /// Read events, shown as read receipts of the agent's messages (best effort).
    pub reads: usize,
    /// Events the bridge does not relay (revoke).
    pub ignored: usize,
    /// Messages older than [`BridgeConfig::max_event_age_ms`](super::BridgeConfig) by their
    /// `created_timestamp`: acknowledged, not delivered (a replayed delivery whose dedup record
    /// may be gone).
    pub stale: usize,
    /// The lanes (customers) that got new work, for processes that trigger delivery themselves
    /// (AWS Lambda behind a queue).
    pub lanes: Vec<Lane>,
}

/// What became of one chat item streamed by Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAcceptance {
    Accepted,
    /// Seen before (SNS redelivery): dropped.
    Duplicate,
    /// Not for the customer (their own message, agent-only visibility) or nothing to act on.
    Filtered,
}

impl<S: Store, X, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// Persists the customer messages of a verified delivery X pushed (webhook, activity
    /// stream), then shows its typing and read events in the customers' chats (best effort:
    /// never an error, see `typing.rs` and `receipts.rs`). When this returns `Ok`, every message is durable
    /// and X may be answered 200.
    /// Messages older than [`BridgeConfig::max_event_age_ms`](super::BridgeConfig) are counted
    /// as `stale` and not stored: their first acceptance may have been purged already.
    pub async fn accept_inbound(&self, batch: InboundBatch) -> Result<AcceptReport, StoreError> {
        let oldest_ms = self.now_ms().saturating_sub(self.config.max_event_age_ms);
        self.accept_dms(batch, Some(oldest_ms)).await
    }

    /// As [`Bridge::accept_inbound`], for DMs the bridge read back from X's DM history itself
    /// (the catch-up): nobody but X can replay those, and a bridge that was down longer than the
    /// age bound must still catch up, so they are not bounded by age.
    pub async fn accept_caught_up(&self, batch: InboundBatch) -> Result<AcceptReport, StoreError> {
        self.accept_dms(batch, None).await
    }

    /// Accepts the messages of `batch` created at or after `oldest_ms` (all without it).
    async fn accept_dms(
        &self,
        batch: InboundBatch,
        oldest_ms: Option<i64>,
    ) -> Result<AcceptReport, StoreError> {
        let now = self.now_ms();
        let mut report = AcceptReport::default();
        let mut jobs = Vec::new();
        // The events of `jobs`, in the same order, for the hand-off to their delivery.
        let mut events = Vec::new();
        let mut typing = Vec::new();
        let mut reads = Vec::new();
        for event in batch.events {
            match event {
                InboundEvent::Message(dm) if dm.is_echo() => {
                    tracing::debug!(event_id = %dm.event_id, "echo of the business account's own DM dropped");
                    report.echoes += 1;
                }
                InboundEvent::Message(dm)
                    if oldest_ms.is_some_and(|oldest| dm.created_ms < oldest) =>
                {
                    // The caller logs (rate-limited): a replayed delivery may repeat at will.
                    tracing::debug!(
                        event_id = %dm.event_id,
                        business = %dm.business,
                        age_ms = now.saturating_sub(dm.created_ms),
                        "X event older than the age bound: acknowledged, not delivered"
                    );
                    report.stale += 1;
                }
                InboundEvent::Message(dm) => {
                    let key = JobKey::inbound_dm(&dm.business, &dm.event_id);
                    let lane = Lane::customer(&dm.business, &dm.sender);
                    let order_key = dm.created_ms;
                    let event = InboundEvent::Message(dm);
                    let payload = serde_json::to_string(&event).map_err(|e| {
                        StoreError::Corrupt(format!("cannot serialise an event: {e}"))
                    })?;
                    events.push(event);
                    jobs.push(NewJob {
                        queue: JobQueue::Inbound,
                        key,
                        lane,
                        order_key,
                        payload,
                        accepted_at_ms: now,
                        // Buffering waits its window, so that the DMs that follow within
                        // it are there when this one runs (`buffering.rs`).
                        not_before_ms: now
                            + self
                                .config
                                .reorder_window_ms
                                .max(self.config.buffer_window_ms),
                    });
                }
                InboundEvent::Chat(chat) if chat.is_echo() => {
                    tracing::debug!(message_id = %chat.message_id, "the business account's own X Chat message dropped");
                    report.echoes += 1;
                }
                InboundEvent::Chat(chat)
                    if oldest_ms.is_some_and(|oldest| chat.created_ms < oldest) =>
                {
                    tracing::debug!(message_id = %chat.message_id, business = %chat.business, "X Chat message older than the age bound: acknowledged, not delivered");
                    report.stale += 1;
                }
                InboundEvent::Chat(chat) => {
                    let key = JobKey::inbound_chat(&chat.business, &chat.message_id);
                    // The same lane as the customer's DMs: one customer, one order.
                    let lane = Lane::customer(&chat.business, &chat.sender);
                    let order_key = chat.created_ms;
                    let event = InboundEvent::Chat(chat);
                    let payload = serde_json::to_string(&event).map_err(|e| {
                        StoreError::Corrupt(format!("cannot serialise an event: {e}"))
                    })?;
                    events.push(event);
                    jobs.push(NewJob {
                        queue: JobQueue::Inbound,
                        key,
                        lane,
                        order_key,
                        payload,
                        accepted_at_ms: now,
                        not_before_ms: now
                            + self
                                .config
                                .reorder_window_ms
                                .max(self.config.buffer_window_ms),
                    });
                }
                InboundEvent::Revoked { user_id } => {
                    tracing::warn!(user_id = ?user_id, "X reports the app's access was revoked: no more events for this account");
                    report.ignored += 1;
                }
                InboundEvent::Typing(indicator) => typing.push(indicator),
                InboundEvent::Read(read) => reads.push(read),
            }
        }
        report.typing = typing.len();
        report.reads = reads.len();
        metrics::counter!(INBOUND_EVENTS, "result" => "stale").increment(report.stale as u64);
        metrics::counter!(INBOUND_EVENTS, "result" => "echo").increment(report.echoes as u64);
        metrics::counter!(INBOUND_EVENTS, "result" => "ignored").increment(report.ignored as u64);
        if !jobs.is_empty() {
            let fresh = self.persist(&jobs, &mut report).await?;
            for ((job, event), new) in jobs.into_iter().zip(events).zip(fresh) {
                if new {
                    self.inbound_handoff.put(job.key, event);
                }
            }
        }
        // After the messages are durable: typing and read receipts never delay or fail them.
        self.relay_typing(&typing).await;
        self.relay_reads(&reads).await;
        Ok(report)
    }

    /// Enqueues the jobs of accepted messages and counts them in `report`; for each job, whether
    /// it is new (not a duplicate).
    async fn persist(
        &self,
        jobs: &[NewJob],
        report: &mut AcceptReport,
    ) -> Result<Vec<bool>, StoreError> {
        let fresh_flags = self.engine.enqueue(jobs).await?;
        for (job, &new) in jobs.iter().zip(&fresh_flags) {
            if new {
                // One INFO line per message is the delivery's; acceptances are counted
                // (`xdm_inbound_events_total`) and logged at DEBUG (each line costs ~30 µs of
                // CPU: docs/performance.md, "Checkpoints on their own connection").
                tracing::debug!(job = %job.key, "inbound message accepted");
                report.accepted += 1;
                if !report.lanes.contains(&job.lane) {
                    report.lanes.push(job.lane.clone());
                }
            } else {
                tracing::info!(job = %job.key, "inbound message already accepted: duplicate dropped");
                report.duplicates += 1;
            }
        }
        metrics::counter!(INBOUND_EVENTS, "result" => "accepted").increment(report.accepted as u64);
        metrics::counter!(INBOUND_EVENTS, "result" => "duplicate")
            .increment(report.duplicates as u64);
        Ok(fresh_flags)
    }

    /// Persists one chat item streamed by Connect if it is for the customer. When this returns
    /// `Ok`, SNS may be answered 200.
    pub async fn accept_chat_item(&self, item: ChatItem) -> Result<ItemAcceptance, StoreError> {
        if !item.is_for_customer() || !needs_delivery(&item.body) {
            tracing::debug!(item = %item.id, "chat item not for the customer or nothing to act on");
            metrics::counter!(CHAT_ITEMS, "result" => "filtered").increment(1);
            return Ok(ItemAcceptance::Filtered);
        }
        let now = self.now_ms();
        let (id, chat) = (item.id.clone(), item.initial_contact_id.clone());
        let (jobs, items): (Vec<NewJob>, Vec<ChatItem>) =
            outbound_jobs(item, now, self.config.outbound_reorder_window_ms)?
                .into_iter()
                .unzip();
        let fresh = self.engine.enqueue(&jobs).await?;
        for ((job, item), &new) in jobs.iter().zip(items).zip(&fresh) {
            if new {
                self.outbound_handoff.put(job.key.clone(), item);
            }
        }
        if fresh.iter().any(|new| *new) {
            // As for inbound messages: the delivery logs at INFO, the acceptance at DEBUG.
            tracing::debug!(item = %id, initial_contact_id = %chat, "chat item accepted");
            metrics::counter!(CHAT_ITEMS, "result" => "accepted").increment(1);
            Ok(ItemAcceptance::Accepted)
        } else {
            tracing::info!(item = %id, "chat item already accepted: duplicate dropped");
            metrics::counter!(CHAT_ITEMS, "result" => "duplicate").increment(1);
            Ok(ItemAcceptance::Duplicate)
        }
    }
}

/// The jobs for one chat item, each with the item it carries: one, except that an item carrying
/// several files becomes one job per file (`<item id>#<n>`), so that a retry of one file never
/// sends another twice.
fn outbound_jobs(
    item: ChatItem,
    now: i64,
    window_ms: i64,
) -> Result<Vec<(NewJob, ChatItem)>, StoreError> {
    let items: Vec<(JobKey, ChatItem)> = match &item.body {
        ChatItemBody::Attachment { attachments } if attachments.len() > 1 => attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let single = ChatItem {
                    body: ChatItemBody::Attachment {
                        attachments: vec![a.clone()],
                    },
                    ..item.clone()
                };
                (JobKey::chat_item(&item.id, Some(i)), single)
            })
            .collect(),
        _ => vec![(JobKey::chat_item(&item.id, None), item)],
    };
    items
        .into_iter()
        .map(|(key, item)| {
            let job = NewJob {
                queue: JobQueue::Outbound,
                key,
                lane: Lane::chat(&item.initial_contact_id),
                order_key: item.absolute_time_ms,
                payload: serde_json::to_string(&item).map_err(|e| {
                    StoreError::Corrupt(format!("cannot serialise a chat item: {e}"))
                })?,
                accepted_at_ms: now,
                not_before_ms: now + window_ms,
            };
            Ok((job, item))
        })
        .collect()
}

/// Messages, attachments and the end of the chat need work; typing, joins, receipts and
/// `participant.left` (the chat goes on, e.g. into a disconnect flow) do not.
fn needs_delivery(body: &ChatItemBody) -> bool {
    match body {
        ChatItemBody::Message { .. } | ChatItemBody::Attachment { .. } => true,
        ChatItemBody::Event { content_type } => content_type == event_types::CHAT_ENDED,
        ChatItemBody::Other { .. } => false,
    }
}
