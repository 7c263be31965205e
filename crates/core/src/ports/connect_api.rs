use std::collections::BTreeMap;
use std::future::Future;

use crate::chat_item::AttachmentRef;
use crate::ids::{ConnectionToken, ContactId, InitialContactId, ParticipantToken};
use crate::media::MediaStream;
use crate::profile::XProfile;
use crate::session::ConnectionCredentials;

/// Content types the bridge sends into a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageContentType {
    Plain,
    Markdown,
}

impl MessageContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageContentType::Plain => "text/plain",
            MessageContentType::Markdown => "text/markdown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub content_type: MessageContentType,
    pub content: String,
}

impl ChatMessage {
    pub fn plain(content: impl Into<String>) -> Self {
        Self {
            content_type: MessageContentType::Plain,
            content: content.into(),
        }
    }
}

/// An event the customer's side shows in the chat (`SendEvent`). Not a message: nothing is
/// kept, and a lost one is not sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The customer is typing.
    Typing,
    /// The agent's message (its transcript item id) reached the customer.
    Delivered { message_id: String },
    /// The customer read the agent's message.
    Read { message_id: String },
}

impl ChatEvent {
    /// Its `ContentType`.
    pub fn content_type(&self) -> &'static str {
        match self {
            ChatEvent::Typing => crate::chat_item::event_types::TYPING,
            ChatEvent::Delivered { .. } => crate::chat_item::event_types::MESSAGE_DELIVERED,
            ChatEvent::Read { .. } => crate::chat_item::event_types::MESSAGE_READ,
        }
    }

    /// The message a receipt is for.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            ChatEvent::Typing => None,
            ChatEvent::Delivered { message_id } | ChatEvent::Read { message_id } => {
                Some(message_id)
            }
        }
    }
}

/// StartChatContact, as the core asks for it (instance, default flow and the streaming topic
/// are the adapter's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartChat {
    /// The business account's own contact flow; `None`: the configured one.
    pub contact_flow_id: Option<String>,
    pub display_name: String,
    pub attributes: BTreeMap<String, String>,
    pub initial_message: ChatMessage,
    /// Idempotency token: the same token never opens a second chat.
    pub client_token: String,
    /// `CustomerId`: the customer's Amazon Connect Customer Profiles id, when one was found or
    /// created (the agent workspace then shows the profile).
    pub customer_id: Option<String>,
    /// `PersistentChat` (`ENTIRE_PAST_SESSION`): the customer's previous chat, ended, whose
    /// history the new chat carries.
    pub continues: Option<InitialContactId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedChat {
    pub contact_id: ContactId,
    pub participant_id: String,
    pub participant_token: ParticipantToken,
    /// `ContinuedFromContactId`: the contact the new chat's history starts from (persistent
    /// chat only).
    pub continued_from: Option<String>,
}

/// The customer's profile in Amazon Connect Customer Profiles, as [`ConnectApi::customer_profile`]
/// left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProfile {
    /// `ProfileId`.
    pub id: String,
    pub change: ProfileChange,
}

/// What [`ConnectApi::customer_profile`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChange {
    /// Found, already current.
    Found,
    /// Found, and its name or handle brought up to date.
    Updated,
    /// None had the customer's X user id: created.
    Created,
}

impl ProfileChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileChange::Found => "found",
            ProfileChange::Updated => "updated",
            ProfileChange::Created => "created",
        }
    }
}

/// Amazon Connect errors, classified by what the bridge should do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// `AccessDeniedException` on a participant call: the chat is over (ended, expired,
    /// disconnected). Start a new chat.
    #[error("the chat is over: {0}")]
    ChatEnded(String),
    /// `ThrottlingException` / API rate limits: retry with backoff.
    #[error("Amazon Connect throttled the call: {0}")]
    Throttled(String),
    /// `LimitExceededException` / `ServiceQuotaExceededException`: a quota such as concurrent
    /// active chats. Retried later.
    #[error("an Amazon Connect quota is exhausted: {0}")]
    QuotaExceeded(String),
    /// Validation / invalid request or parameter: the request itself is wrong. Not retried.
    #[error("Amazon Connect rejected the request: {0}")]
    Invalid(String),
    /// `ResourceNotFoundException` (wrong instance or contact flow id, unknown contact). Not retried.
    #[error("not found in Amazon Connect: {0}")]
    NotFound(String),
    /// Credentials missing or refused for the control-plane API. Not retried.
    #[error("Amazon Connect refused the credentials: {0}")]
    Unauthorized(String),
    /// 5xx, timeouts, connection errors: retried with backoff.
    #[error("Amazon Connect is unavailable: {0}")]
    Unavailable(String),
    /// Connect will not take this file: its type or size, or the chat's attachment quota (35).
    /// Not retried; the agent is told.
    #[error("Amazon Connect refused the file: {0}")]
    AttachmentRefused(String),
}

impl ConnectError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectError::Throttled(_)
                | ConnectError::QuotaExceeded(_)
                | ConnectError::Unavailable(_)
        )
    }
}

/// The Amazon Connect calls the core makes.
pub trait ConnectApi: Send + Sync + 'static {
    /// `StartChatContact` with the configured instance and contact flow.
    fn start_chat(
        &self,
        req: &StartChat,
    ) -> impl Future<Output = Result<StartedChat, ConnectError>> + Send;

    /// The customer's Customer Profiles profile, keyed on their X user id: found by search,
    /// created when missing (with name and handle), its name and handle kept current.
    /// `Ok(None)` when no Customer Profiles domain is configured.
    fn customer_profile(
        &self,
        profile: &XProfile,
    ) -> impl Future<Output = Result<Option<CustomerProfile>, ConnectError>> + Send;

    /// `StartContactStreaming` to the configured SNS topic.
    fn start_streaming(
        &self,
        contact: &ContactId,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// `StopContact`.
    fn stop_contact(
        &self,
        contact: &ContactId,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// `UpdateContactAttributes` of the chat: adds `attributes`, replacing those of the same key.
    fn update_attributes(
        &self,
        chat: &InitialContactId,
        attributes: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// `CreateParticipantConnection(Type=[CONNECTION_CREDENTIALS], ConnectParticipant=true)`.
    fn connect_participant(
        &self,
        participant_token: &ParticipantToken,
    ) -> impl Future<Output = Result<ConnectionCredentials, ConnectError>> + Send;

    /// `SendMessage` as the customer.
    fn send_message(
        &self,
        connection: &ConnectionToken,
        message: &ChatMessage,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// `SendEvent` as the customer (a receipt's `Content` is `{"messageId":"…"}`).
    fn send_event(
        &self,
        connection: &ConnectionToken,
        event: &ChatEvent,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// `DisconnectParticipant`: the customer leaves the chat.
    fn disconnect(
        &self,
        connection: &ConnectionToken,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// Attaches a file to the chat as the customer: `StartAttachmentUpload` (exact size, name,
    /// type, `client_token`) → `PUT` to the pre-signed URL with every `HeadersToInclude` header,
    /// streaming → `CompleteAttachmentUpload`. Returns the attachment id.
    /// A type, size or quota refusal (ValidationException, ServiceQuotaExceededException) is
    /// `AttachmentRefused`; AccessDenied is `ChatEnded`.
    fn upload_attachment(
        &self,
        connection: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> impl Future<Output = Result<String, ConnectError>> + Send;

    /// Opens an (approved) attachment of the chat: `GetAttachment` with the customer's
    /// connection token → `GET` of the pre-signed URL, as a stream of exactly the announced size.
    fn open_attachment(
        &self,
        connection: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> impl Future<Output = Result<MediaStream, ConnectError>> + Send;
}
