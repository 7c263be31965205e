use std::future::Future;

use crate::ids::{XEventId, XUserId};
use crate::inbound::{ChatKeyChange, InboundChat, InboundMedia};
use crate::media::{MediaStream, XMediaCategory};
use crate::profile::XProfile;

/// A DM to send on behalf of a business account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmRequest {
    /// The business account sending (selects the credentials).
    pub business: XUserId,
    pub recipient: XUserId,
    pub text: Option<String>,
    /// A media id uploaded by the same account (one attachment per DM).
    pub media_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDm {
    pub dm_event_id: String,
}

/// A DM the business account sent, as X reports it when the conversation is read back
/// ([`XApi::sent_dms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDmRecord {
    pub dm_event_id: String,
    /// When X recorded it, Unix milliseconds (from the event id, a snowflake; else `created_at`).
    pub at_ms: i64,
    /// The text with X's t.co links expanded back to the URLs that were sent; `None` if none.
    pub text: Option<String>,
    /// Whether it carries a media attachment.
    pub has_media: bool,
}

/// An X Chat message opened: its sender's signature checked, then decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedChat {
    /// The id X gave the message in the conversation (what read marks refer to).
    pub sequence_id: XEventId,
    /// What the customer wrote.
    pub text: String,
    /// The photo, GIF or video they sent, sealed (downloaded and opened by
    /// [`XApi::download_media`]).
    pub media: Option<InboundMedia>,
    /// The conversation key the message was sealed with, as the key change that made it:
    /// what the business's replies are sealed with. `None` for an event that is not a message
    /// (nothing to show then).
    pub key: Option<ChatKeyChange>,
}

/// A text for a customer on X Chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The business account sending (its keys sign and its key opens `key`).
    pub business: XUserId,
    pub recipient: XUserId,
    /// The conversation key to seal the message with.
    pub key: ChatKeyChange,
    /// The message's id, the same on every attempt: X keeps one message per id, so a retry
    /// after an unknown outcome cannot send it twice.
    pub message_id: String,
    pub text: String,
}

/// A file for a customer on X Chat.
#[derive(Debug)]
pub struct ChatFileRequest {
    pub business: XUserId,
    pub recipient: XUserId,
    pub key: ChatKeyChange,
    /// As [`ChatRequest::message_id`].
    pub message_id: String,
    pub kind: crate::inbound::MediaKind,
    pub file: MediaStream,
}

/// An X Chat message X took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChat {
    /// The id X gave it in the conversation.
    pub sequence_id: String,
}

/// X REST errors, classified by what the bridge should do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XError {
    /// 429 rate limit: retry after `reset_at_s` (Unix seconds, from `x-rate-limit-reset`).
    #[error("X rate limit reached (resets at {reset_at_s:?})")]
    RateLimited { reset_at_s: Option<i64> },
    /// 429 `usage-capped`: the app's spend cap. Not retried.
    #[error("X usage cap reached: {0}")]
    UsageCapped(String),
    /// 403: the user does not accept DMs from this account, blocked it, or the app lacks DM access.
    #[error("X refused: {0}")]
    Forbidden(String),
    /// 401: the credentials are wrong. Not retried: a configuration problem.
    #[error("X rejected the credentials: {0}")]
    Unauthorized(String),
    /// 400: the request is invalid. Not retried.
    #[error("X rejected the request: {0}")]
    Invalid(String),
    /// 404 or a `resource-not-found` problem.
    #[error("not found on X: {0}")]
    NotFound(String),
    /// An X Chat message whose signature does not verify, or that does not open with the keys it
    /// names (a forgery, a corrupted event, or keys this bridge does not hold). Not retried.
    #[error("the X Chat message cannot be trusted or opened: {0}")]
    Unreadable(String),
    /// 5xx, timeouts, connection errors: retried with backoff.
    #[error("X is unavailable: {0}")]
    Unavailable(String),
    /// A media URL on a host that is not allowed (`XDM_X_MEDIA_HOSTS`), or not https: never
    /// fetched. Not retried.
    #[error("media host not allowed: {0}")]
    MediaHostNotAllowed(String),
    /// A file over a size limit (`size` when it is known). Not retried.
    #[error("the file is too large ({} over the {} limit)", size.map_or_else(|| "more than allowed".to_owned(), crate::media::human_size), crate::media::human_size(*limit))]
    TooLarge { size: Option<u64>, limit: u64 },
}

impl XError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, XError::RateLimited { .. } | XError::Unavailable(_))
    }
}

/// The X API calls the core makes.
pub trait XApi: Send + Sync + 'static {
    /// `POST /2/dm_conversations/with/:recipient/messages`.
    fn send_dm(&self, dm: &DmRequest) -> impl Future<Output = Result<SentDm, XError>> + Send;

    /// The DMs `business` sent to `recipient` that X recorded at or after `since_ms` (Unix
    /// milliseconds), oldest first: `GET /2/dm_conversations/with/:recipient/dm_events`, as
    /// `business`. Reads a bounded number of pages (newest first) and stops at the first event
    /// older than `since_ms`, so a very long conversation since then may be cut (its oldest DMs
    /// missing). Used before sending a job's DMs again, to skip the ones X already has.
    fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<SentDmRecord>, XError>> + Send;

    /// `GET /2/users/:id`; `Ok(None)` when X says the user does not exist.
    fn user(
        &self,
        business: &XUserId,
        id: &XUserId,
    ) -> impl Future<Output = Result<Option<XProfile>, XError>> + Send;

    /// Opens the file of a DM's media as `business` (TON photos need its OAuth 1.0a signature;
    /// an X Chat file is fetched from X Chat's media endpoint and opened with its conversation
    /// key, `Unreadable` when it does not open),
    /// only from the allowed media hosts over https (`MediaHostNotAllowed` otherwise, without any
    /// request), following redirects only within them, and refusing files over `max_bytes`
    /// (`TooLarge`, before reading the body when the size is announced). The returned length is
    /// exact: when the server does not announce it, the adapter spools the file to learn it.
    fn download_media(
        &self,
        business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> impl Future<Output = Result<MediaStream, XError>> + Send;

    /// Checks the signature of an X Chat message against the sender's signing key (as X lists
    /// it, its binding to the identity key checked) and only then decrypts it with the
    /// conversation key it names, opened with `chat.business`'s private key. `Unreadable` when
    /// the signature or the contents do not check out; `Invalid` when the business account has
    /// no X Chat keys.
    fn open_chat(
        &self,
        chat: &InboundChat,
    ) -> impl Future<Output = Result<OpenedChat, XError>> + Send;

    /// Seals `message.text` with the conversation key, signs it as the business account and
    /// sends it: `POST /2/chat/conversations/{recipient}/messages`.
    fn send_chat(
        &self,
        message: &ChatRequest,
    ) -> impl Future<Output = Result<SentChat, XError>> + Send;

    /// Seals the file with the conversation key while uploading it to X Chat's media endpoint,
    /// then sends a message carrying it, as [`XApi::send_chat`].
    fn send_chat_file(
        &self,
        message: ChatFileRequest,
    ) -> impl Future<Output = Result<SentChat, XError>> + Send;

    /// Uploads a file with X media upload v2 as `business` (`initialize` with the category →
    /// `append` in chunks → `finalize` → `STATUS` polling until `succeeded`), streaming: the
    /// file is never held in memory whole. Returns the media id to put in a DM. Processing that
    /// ends `failed` is `Invalid`.
    fn upload_media(
        &self,
        business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> impl Future<Output = Result<String, XError>> + Send;
}
