//! Observable happenings, broadcast live (`SandboxHandle::events`) and kept in a bounded log
//! (`SandboxHandle::event_log`, `GET /_sandbox/events?since=N`).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::clock;
use crate::connect::model::{ArtifactStatus, ChatItem, ContactView, EndReason};
use crate::faults::{FaultKind, FaultOp, Side};
use crate::media::registry::MediaRequestKind;
use crate::sync::lock;
use crate::x::records::{DeliveryKind, MediaCategory, ProcessingState, SentDm, XOp};

/// Events kept for `event_log`; older ones are dropped.
const LOG_CAPACITY: usize = 10_000;
/// Live subscribers lagging more than this many events see `RecvError::Lagged`.
const BROADCAST_CAPACITY: usize = 4_096;

/// Everything observable that happens in the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SandboxEvent {
    /// A call of a platform operation was answered (or dropped: `status: None`), X's or
    /// Connect's: what the bridge called, with how long the sandbox took to answer it (to the
    /// response's head; a streamed body may take longer).
    ApiCall {
        op: FaultOp,
        side: Side,
        method: String,
        path: String,
        status: Option<u16>,
        duration_ms: f64,
    },
    /// An X REST call was answered (including rejected ones).
    XRequest {
        op: XOp,
        method: String,
        path: String,
        status: u16,
    },
    /// A CRC check was sent to a webhook.
    WebhookCrc {
        url: String,
        ok: bool,
        status: Option<u16>,
    },
    /// An event POST to the webhook finished (`status: None` = no HTTP answer).
    WebhookDelivered {
        event_id: Option<String>,
        kind: DeliveryKind,
        status: Option<u16>,
        /// How long the webhook took to answer (0 when nothing was sent).
        duration_ms: f64,
    },
    /// A DM was accepted by `POST /2/dm_conversations/with/:id/messages`.
    DmSent { dm: SentDm },
    /// `GET /2/users/:id` was answered.
    UserLookup { id: String, found: bool },
    /// StartChatContact created a contact.
    ContactStarted { contact: Box<ContactView> },
    /// CreateParticipantConnection with `ConnectParticipant: true` connected the customer.
    CustomerConnected {
        contact_id: String,
        initial_contact_id: String,
    },
    /// StartContactStreaming attached a topic.
    StreamingStarted {
        contact_id: String,
        topic_arn: String,
        streaming_id: String,
    },
    /// An item was added to a chat transcript.
    ChatItem {
        contact_id: String,
        initial_contact_id: String,
        item: ChatItem,
    },
    /// A chat ended.
    ContactEnded {
        contact_id: String,
        initial_contact_id: String,
        reason: EndReason,
    },
    /// The subscriber fetched the SubscribeURL.
    SnsSubscriptionConfirmed {
        subscription_arn: String,
        endpoint: String,
    },
    /// One attempt to POST an SNS message finished (`status: None` = no HTTP answer).
    SnsDelivered {
        message_id: String,
        subscription_arn: String,
        status: Option<u16>,
        attempt: u32,
        /// How long the subscriber took to answer.
        duration_ms: f64,
    },
    /// X media upload v2 `initialize` accepted.
    MediaInitialized {
        media_id: String,
        category: MediaCategory,
        total_bytes: u64,
    },
    /// An X media upload was finalized (or a one-shot upload received): the bytes are in.
    MediaUploaded {
        media_id: String,
        category: MediaCategory,
        media_type: String,
        size: u64,
        sha256: String,
        file_id: String,
    },
    /// Processing of an uploaded GIF or video ended (`succeeded` or `failed`).
    MediaProcessed {
        media_id: String,
        state: ProcessingState,
    },
    /// A media URL of a DM was requested (refused ones included).
    MediaDownload {
        kind: MediaRequestKind,
        path: String,
        status: u16,
        file_id: Option<String>,
    },
    /// StartAttachmentUpload handed out an upload URL.
    AttachmentUploadStarted {
        contact_id: String,
        attachment_id: String,
        name: String,
        content_type: String,
        size: u64,
    },
    /// A PUT to an attachment upload URL was answered.
    AttachmentPut {
        attachment_id: Option<String>,
        status: u16,
        rejection: Option<String>,
        size: Option<u64>,
        sha256: Option<String>,
    },
    /// CompleteAttachmentUpload added the ATTACHMENT item.
    AttachmentCompleted {
        contact_id: String,
        attachment_id: String,
        status: ArtifactStatus,
    },
    /// A GET of a GetAttachment URL was answered.
    AttachmentDownload {
        attachment_id: Option<String>,
        status: u16,
    },
    /// A fault was applied to a call: a queued fault, a profile's error or dropped connection, a
    /// throttling burst, the down switch (a profile's latency alone is only counted in the stats).
    FaultInjected {
        op: FaultOp,
        /// The error status answered (`None`: delay only, or connection dropped).
        status: Option<u16>,
        delay_ms: u64,
        #[serde(default)]
        kind: FaultKind,
    },
}

/// An event with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// 1-based, strictly increasing.
    pub seq: u64,
    pub at: String,
    #[serde(flatten)]
    pub event: SandboxEvent,
}

#[derive(Debug)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<SandboxEvent>,
    log: Mutex<(u64, VecDeque<LoggedEvent>)>,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            tx,
            log: Mutex::new((0, VecDeque::new())),
        }
    }

    pub(crate) fn emit(&self, event: SandboxEvent) {
        tracing::debug!(?event, "sandbox event");
        {
            let mut guard = lock(&self.log);
            let (seq, log) = &mut *guard;
            *seq += 1;
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(LoggedEvent {
                seq: *seq,
                at: clock::now_iso_ms(),
                event: event.clone(),
            });
        }
        // No live subscriber is fine: the log keeps the event.
        let _ = self.tx.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SandboxEvent> {
        self.tx.subscribe()
    }

    /// Logged events with `seq > since`.
    pub(crate) fn since(&self, since: u64) -> Vec<LoggedEvent> {
        lock(&self.log)
            .1
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect()
    }
}
