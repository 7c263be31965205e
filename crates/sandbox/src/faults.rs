//! Fault injection: the operations that can be faulted ([`FaultOp`], [`Side`]) and the queued
//! faults; the settings, the decision for one call, its application and the counters are in the
//! submodules.
//!
//! * **Queued faults** ([`Fault`], `fail_next`): the next N calls of an operation fail (or are
//!   delayed) the way the caller asks.
//! * **Profiles** ([`FaultProfile`], `set_fault_profile`): every call of an operation is delayed by
//!   a fixed latency plus uniform jitter, and fails or loses its connection with a given
//!   probability, drawn from a seeded PRNG (reproducible runs).
//! * **Throttling bursts** ([`ThrottleBurst`], `throttle_burst`): the next N calls are throttled
//!   (X: 429 with `x-rate-limit-*` headers; Connect: `ThrottlingException`), optionally until the
//!   announced reset time.
//! * **Down switch** ([`Side`], [`DownMode`], `set_down`): every call of one platform answers 503
//!   or loses its connection.
//! * **Counters** ([`SandboxStats`], `stats`): calls by status class and faults, per operation.
//!
//! A fault is consumed by a call that reached the operation: for X routes after OAuth verification,
//! for Connect routes after the authentication header check. Malformed bodies still consume it.
//! Order of precedence for one call: down switch, then queued fault, then throttling burst, then
//! profile (whose latency applies to every call that is not refused by the down switch).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

mod engine;
mod gate;
mod profile;
mod stats;
mod wire;

pub(crate) use engine::{DEFAULT_THROTTLE_LIMIT, FaultState, Injected};
pub(crate) use gate::{gate, processing_failure};
pub use profile::{DownMode, DropMode, FaultError, FaultProfile, ThrottleBurst, ThrottleBurstView};
pub use stats::{ConnectStats, FaultCounts, OpStats, SandboxStats, XStats};
pub(crate) use wire::{flag_drop, layer, note_call};

/// Operations whose calls can be faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FaultOp {
    StartChatContact,
    StartContactStreaming,
    StopContactStreaming,
    StopContact,
    /// Connect `POST /contact/attributes` (UpdateContactAttributes).
    UpdateContactAttributes,
    CreateParticipantConnection,
    SendMessage,
    SendEvent,
    DisconnectParticipant,
    GetTranscript,
    /// X `POST /2/dm_conversations/with/:id/messages`.
    CreateDm,
    /// X `GET /2/users/:id` and `GET /2/users/me`.
    GetUser,
    /// Connect participant StartAttachmentUpload.
    StartAttachmentUpload,
    /// Connect participant CompleteAttachmentUpload.
    CompleteAttachmentUpload,
    /// Connect participant GetAttachment.
    GetAttachment,
    /// The PUT to a pre-signed attachment upload URL (S3; errors as S3 XML).
    AttachmentPut,
    /// The GET of a GetAttachment URL (S3; errors as S3 XML).
    AttachmentGet,
    /// X `POST /2/media/upload/initialize`.
    MediaInitialize,
    /// X `POST /2/media/upload/:id/append`.
    MediaAppend,
    /// X `POST /2/media/upload/:id/finalize`.
    MediaFinalize,
    /// X `GET /2/media/upload?command=STATUS`.
    MediaStatus,
    /// X one-shot `POST /2/media/upload`.
    MediaUpload,
    /// Not a call: a fault queued here is consumed by the next `finalize` of a GIF or video, whose
    /// processing then ends `failed` (with the fault's `message`). Its status is ignored.
    MediaProcessing,
    /// X TON photo download (`GET /1.1/ton/data/dm/…`), after OAuth verification.
    TonDownload,
    /// Public (twimg-style) media download; errors are plain text.
    MediaDownload,
    /// X `GET /2/dm_conversations/with/:id/dm_events` (reading a conversation back) and
    /// `GET /2/dm_events`.
    DmEvents,
    /// X `POST /2/oauth2/token` (after client authentication).
    OAuth2Token,
    /// X webhooks v2: `/2/webhooks` create, list, validate, delete and replay.
    Webhooks,
    /// X Activity API subscriptions (`/2/activity/subscriptions`) and Account Activity routes.
    Subscriptions,
    /// X `GET /2/activity/stream` (the connection attempt).
    ActivityStream,
    /// X `GET /2/dm_conversations/media/…` (OAuth 2.0 DM media download).
    DmMediaDownload,
    /// Customer Profiles `POST /domains/{DomainName}/profiles/search`.
    SearchProfiles,
    /// Customer Profiles `POST /domains/{DomainName}/profiles`.
    CreateProfile,
    /// Customer Profiles `PUT /domains/{DomainName}/profiles`.
    UpdateProfile,
    /// X Chat `POST /2/users/:id/public_keys`, `GET /2/users/:id/public_keys` and
    /// `GET /2/users/public_keys`.
    ChatPublicKeys,
    /// X Chat `POST /2/chat/conversations/:id/keys`.
    ChatAddKeys,
    /// X Chat `POST /2/chat/conversations/:id/messages`.
    ChatSendMessage,
    /// X Chat `GET /2/chat/conversations/:id/events`.
    ChatEvents,
    /// X Chat `POST /2/chat/conversations/:id/typing` and `…/read`.
    ChatIndicators,
    /// X Chat `POST /2/chat/media/upload/initialize`, `…/:session_id/append`, `…/finalize`.
    ChatMediaUpload,
    /// X Chat `GET /2/chat/media/:conversation_id/:media_hash_key`.
    ChatMediaDownload,
}

/// A platform, for the down switch and side-wide profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    /// X API v2 REST, media upload, TON and public media downloads.
    #[serde(alias = "x")]
    X,
    /// Amazon Connect: contact and participant services, attachments and their S3 URLs, Customer
    /// Profiles.
    #[serde(alias = "connect")]
    Connect,
}

/// What kind of fault a [`crate::SandboxEvent::FaultInjected`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// An error answer (queued fault or profile error rate).
    #[default]
    Error,
    /// A queued delay-only fault (profile latency is counted, not reported as an event).
    Delay,
    /// A throttling burst or held window.
    Throttle,
    /// The platform is switched down.
    Down,
    /// The connection was closed without an answer, the call having no effect.
    DropBefore,
    /// The call took effect, then the connection was closed without an answer.
    DropAfter,
}

/// The wire family of an operation: which error format and defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    /// `connect` control plane (`/contact/*`).
    Connect,
    /// `connectparticipant`.
    Participant,
    /// Customer Profiles (`profile`).
    Profiles,
    /// The pre-signed attachment URLs (S3 XML errors).
    S3,
    /// X REST (problem JSON with rate-limit headers).
    X,
    /// Public media downloads (plain text errors).
    PublicMedia,
    /// Not a call: GIF / video processing after `finalize`.
    Processing,
}

impl FaultOp {
    /// Every operation, in declaration order (a new variant must be added here too).
    pub const ALL: [Self; 41] = [
        Self::StartChatContact,
        Self::StartContactStreaming,
        Self::StopContactStreaming,
        Self::StopContact,
        Self::UpdateContactAttributes,
        Self::CreateParticipantConnection,
        Self::SendMessage,
        Self::SendEvent,
        Self::DisconnectParticipant,
        Self::GetTranscript,
        Self::CreateDm,
        Self::GetUser,
        Self::StartAttachmentUpload,
        Self::CompleteAttachmentUpload,
        Self::GetAttachment,
        Self::AttachmentPut,
        Self::AttachmentGet,
        Self::MediaInitialize,
        Self::MediaAppend,
        Self::MediaFinalize,
        Self::MediaStatus,
        Self::MediaUpload,
        Self::MediaProcessing,
        Self::TonDownload,
        Self::MediaDownload,
        Self::DmEvents,
        Self::OAuth2Token,
        Self::Webhooks,
        Self::Subscriptions,
        Self::ActivityStream,
        Self::DmMediaDownload,
        Self::SearchProfiles,
        Self::CreateProfile,
        Self::UpdateProfile,
        Self::ChatPublicKeys,
        Self::ChatAddKeys,
        Self::ChatSendMessage,
        Self::ChatEvents,
        Self::ChatIndicators,
        Self::ChatMediaUpload,
        Self::ChatMediaDownload,
    ];

    /// The platform the operation belongs to.
    pub fn side(self) -> Side {
        if self.is_x() { Side::X } else { Side::Connect }
    }

    /// Operations of one side.
    pub fn of_side(side: Side) -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(move |op| op.side() == side)
    }

    pub(crate) fn platform(self) -> Platform {
        match self {
            Self::StartChatContact
            | Self::StartContactStreaming
            | Self::StopContactStreaming
            | Self::StopContact
            | Self::UpdateContactAttributes => Platform::Connect,
            Self::CreateParticipantConnection
            | Self::SendMessage
            | Self::SendEvent
            | Self::DisconnectParticipant
            | Self::GetTranscript
            | Self::StartAttachmentUpload
            | Self::CompleteAttachmentUpload
            | Self::GetAttachment => Platform::Participant,
            Self::AttachmentPut | Self::AttachmentGet => Platform::S3,
            Self::SearchProfiles | Self::CreateProfile | Self::UpdateProfile => Platform::Profiles,
            Self::CreateDm
            | Self::GetUser
            | Self::MediaInitialize
            | Self::MediaAppend
            | Self::MediaFinalize
            | Self::MediaStatus
            | Self::MediaUpload
            | Self::TonDownload
            | Self::DmEvents
            | Self::OAuth2Token
            | Self::Webhooks
            | Self::Subscriptions
            | Self::ActivityStream
            | Self::DmMediaDownload
            | Self::ChatPublicKeys
            | Self::ChatAddKeys
            | Self::ChatSendMessage
            | Self::ChatEvents
            | Self::ChatIndicators
            | Self::ChatMediaUpload
            | Self::ChatMediaDownload => Platform::X,
            Self::MediaDownload => Platform::PublicMedia,
            Self::MediaProcessing => Platform::Processing,
        }
    }

    pub fn is_x(self) -> bool {
        matches!(
            self,
            Self::CreateDm
                | Self::GetUser
                | Self::MediaInitialize
                | Self::MediaAppend
                | Self::MediaFinalize
                | Self::MediaStatus
                | Self::MediaUpload
                | Self::MediaProcessing
                | Self::TonDownload
                | Self::MediaDownload
                | Self::DmEvents
                | Self::OAuth2Token
                | Self::Webhooks
                | Self::Subscriptions
                | Self::ActivityStream
                | Self::DmMediaDownload
                | Self::ChatPublicKeys
                | Self::ChatAddKeys
                | Self::ChatSendMessage
                | Self::ChatEvents
                | Self::ChatIndicators
                | Self::ChatMediaUpload
                | Self::ChatMediaDownload
        )
    }
}

/// What a faulted call does. `status: None` only delays the call, which then proceeds normally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// HTTP status of the error response; `None` = delay only.
    pub status: Option<u16>,
    /// AWS error type (`ThrottlingException`) or X problem type (`https://api.x.com/2/problems/usage-capped`,
    /// `about:blank`). Defaults to the platform's usual code for the status.
    pub code: Option<String>,
    /// Error message / problem `detail`.
    pub message: Option<String>,
    /// Delay before answering (or before acting normally), in milliseconds.
    pub delay_ms: u64,
    /// X only: the `x-rate-limit-reset` header (Unix seconds) of the faulted response.
    pub rate_limit_reset: Option<i64>,
}

impl Fault {
    /// An error response with this status and the platform's default code.
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// An error response with this status and code.
    pub fn error(status: u16, code: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            code: Some(code.into()),
            ..Self::default()
        }
    }

    /// No error: the call waits `delay_ms` and then proceeds normally.
    pub fn delay(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            ..Self::default()
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    pub fn with_rate_limit_reset(mut self, unix_secs: i64) -> Self {
        self.rate_limit_reset = Some(unix_secs);
        self
    }
}

/// Faults waiting for their calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFault {
    pub op: FaultOp,
    pub remaining: u32,
    pub fault: Fault,
}

#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    queues: HashMap<FaultOp, VecDeque<(Fault, u32)>>,
}

impl FaultBook {
    pub(crate) fn push(&mut self, op: FaultOp, count: u32, fault: Fault) {
        if count > 0 {
            self.queues.entry(op).or_default().push_back((fault, count));
        }
    }

    /// Consumes one call's worth of the oldest fault queued for `op`.
    pub(crate) fn take(&mut self, op: FaultOp) -> Option<Fault> {
        let queue = self.queues.get_mut(&op)?;
        let (fault, remaining) = queue.front_mut()?;
        let taken = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            queue.pop_front();
        }
        Some(taken)
    }

    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }

    pub(crate) fn pending(&self) -> Vec<PendingFault> {
        let mut out: Vec<PendingFault> = self
            .queues
            .iter()
            .flat_map(|(op, queue)| {
                queue.iter().map(|(fault, remaining)| PendingFault {
                    op: *op,
                    remaining: *remaining,
                    fault: fault.clone(),
                })
            })
            .collect();
        out.sort_by_key(|p| p.op);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order_and_counted() {
        let mut book = FaultBook::default();
        book.push(FaultOp::SendMessage, 2, Fault::status(429));
        book.push(FaultOp::SendMessage, 1, Fault::delay(5));
        assert_eq!(book.take(FaultOp::SendMessage).unwrap().status, Some(429));
        assert_eq!(book.pending()[0].remaining, 1);
        assert_eq!(book.take(FaultOp::SendMessage).unwrap().status, Some(429));
        assert_eq!(book.take(FaultOp::SendMessage).unwrap().delay_ms, 5);
        assert!(book.take(FaultOp::SendMessage).is_none());
        assert!(book.take(FaultOp::CreateDm).is_none());
    }

    #[test]
    fn every_op_is_listed_once_with_a_side() {
        let mut all = FaultOp::ALL.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), FaultOp::ALL.len());
        assert_eq!(FaultOp::CreateDm.side(), Side::X);
        assert_eq!(FaultOp::MediaDownload.side(), Side::X);
        assert_eq!(FaultOp::AttachmentPut.side(), Side::Connect);
        assert_eq!(FaultOp::of_side(Side::X).count(), 23);
        assert_eq!(FaultOp::ChatSendMessage.side(), Side::X);
        assert_eq!(FaultOp::SearchProfiles.side(), Side::Connect);
        assert_eq!(FaultOp::of_side(Side::Connect).count(), 18);
    }
}
