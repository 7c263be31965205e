//! Chat data as Amazon Connect exposes it: transcript `Item`s (docs/protocols.md B2/B3, PascalCase on the
//! wire), the sandbox's views of contacts and attachments, and what agent-side controls add.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Content types the emulator produces or accepts (CHATJS constants, docs/protocols.md B3).
pub mod content_types {
    pub const TEXT_PLAIN: &str = "text/plain";
    pub const TEXT_MARKDOWN: &str = "text/markdown";
    pub const APPLICATION_JSON: &str = "application/json";
    pub const INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
    pub const INTERACTIVE_RESPONSE: &str =
        "application/vnd.amazonaws.connect.message.interactive.response";
    pub const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
    pub const PARTICIPANT_JOINED: &str =
        "application/vnd.amazonaws.connect.event.participant.joined";
    pub const PARTICIPANT_LEFT: &str = "application/vnd.amazonaws.connect.event.participant.left";
    pub const CHAT_ENDED: &str = "application/vnd.amazonaws.connect.event.chat.ended";
    pub const MESSAGE_DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
    pub const MESSAGE_READ: &str = "application/vnd.amazonaws.connect.event.message.read";
    pub const CONNECTION_ACKNOWLEDGED: &str =
        "application/vnd.amazonaws.connect.event.connection.acknowledged";
}

/// `Item.Type`.
///
/// Delivery and read receipts (SendEvent `message.delivered` / `message.read`) are
/// `MESSAGEMETADATA` items carrying [`MessageMetadata`]. That value is not in the API
/// reference's `ChatItemType` (which lists `MESSAGE_DELIVERED` and `MESSAGE_READ` instead, and the
/// official SDKs parse `MESSAGEMETADATA` as an unknown value); it is the value AWS's own chat
/// clients expect in transcripts and on the WebSocket (`amazon-connect-chatjs`
/// `CHAT_EVENTS.MESSAGE_METADATA`, `MessageReceiptsUtil`, `internalTranscriptUtils`;
/// `amazon-connect-chat-android` `WebSocketMessageType.MESSAGE_METADATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemType {
    #[default]
    Message,
    Event,
    Attachment,
    #[serde(rename = "MESSAGEMETADATA")]
    MessageMetadata,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "MESSAGE",
            Self::Event => "EVENT",
            Self::Attachment => "ATTACHMENT",
            Self::MessageMetadata => "MESSAGEMETADATA",
        }
    }
}

/// `Item.MessageMetadata` (API reference, Amazon Connect Participant Service data type
/// `MessageMetadata`): "currently this supports only information related to message receipts".
/// `MessageProcessingStatus`, a member of the type that only SendMessage answers carry, is not
/// produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageMetadata {
    /// The `Id` of the message the receipts are about (the receipt's `messageId`).
    pub message_id: String,
    pub receipts: Vec<Receipt>,
}

/// `MessageMetadata.Receipts[]` (API reference data type `Receipt`): one of the two timestamps,
/// and the participant that received the message — the one that sent the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Receipt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timestamp: Option<String>,
    pub recipient_participant_id: String,
}

/// `Item.ParticipantRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParticipantRole {
    Agent,
    Customer,
    System,
    CustomBot,
    Supervisor,
}

impl ParticipantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "AGENT",
            Self::Customer => "CUSTOMER",
            Self::System => "SYSTEM",
            Self::CustomBot => "CUSTOM_BOT",
            Self::Supervisor => "SUPERVISOR",
        }
    }
}

/// Who may see an item (the SNS `MessageVisibility` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageVisibility {
    Customer,
    Agent,
    #[default]
    All,
}

impl MessageVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Agent => "AGENT",
            Self::All => "ALL",
        }
    }

    /// Whether the customer participant sees it (GetTranscript with the customer's token).
    pub fn customer_sees(self) -> bool {
        matches!(self, Self::Customer | Self::All)
    }
}

/// A chat transcript item, serialised exactly as Connect streams it (field order of the real
/// capture in docs/protocols.md B3).
///
/// ATTACHMENT items carry `Attachments` and no top-level `ContentType` (empty `content_type`),
/// like the only real sample (CHATJS `ChatAttachmentsFeature.md`, docs/protocols.md B3).
///
/// Receipts are `MESSAGEMETADATA` items with `MessageMetadata` (the `Item` of GetTranscript in
/// the API reference). The SNS streaming documentation describes no receipt (its `Type`
/// attribute lists `EVENT` and `MESSAGE` only), so the streamed `Message` of a receipt is this
/// same `Item`. They keep the `ContentType` (`….message.delivered` / `….message.read`) and
/// `Content` (`{"messageId":…}`) of the SendEvent: no documentation gives them others
/// (`amazon-connect-chat-android` names an `….event.message.metadata` content type — unconfirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    pub absolute_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<AttachmentItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    pub id: String,
    #[serde(rename = "Type")]
    pub item_type: ItemType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_role: Option<ParticipantRole>,
    /// MESSAGEMETADATA items only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_metadata: Option<MessageMetadata>,
    pub initial_contact_id: String,
    pub contact_id: String,
}

/// `Item.Attachments[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachmentItem {
    pub content_type: String,
    pub attachment_id: String,
    pub attachment_name: String,
    pub status: ArtifactStatus,
}

/// `ArtifactStatus`: the scan state of an attachment. Only APPROVED ones can be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArtifactStatus {
    Approved,
    Rejected,
    InProgress,
}

impl ArtifactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::InProgress => "IN_PROGRESS",
        }
    }
}

/// An attachment of a chat, with what reached Connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    pub attachment_id: String,
    /// The chat's current ContactId.
    pub contact_id: String,
    pub initial_contact_id: String,
    /// CUSTOMER (StartAttachmentUpload, i.e. the bridge) or AGENT (`agent_send_attachment`).
    pub role: ParticipantRole,
    pub name: String,
    pub content_type: String,
    /// `AttachmentSizeInBytes` of StartAttachmentUpload (the file's size for agent attachments).
    pub declared_size: u64,
    /// A PUT to the upload URL succeeded (always true for agent attachments).
    pub uploaded: bool,
    /// Size and SHA-256 (lower-case hex) of the bytes that reached Connect.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// The stored bytes (`SandboxHandle::file`).
    pub file_id: Option<String>,
    /// CompleteAttachmentUpload done (always true for agent attachments).
    pub completed: bool,
    /// `None` until completed.
    pub status: Option<ArtifactStatus>,
    /// The ATTACHMENT items that announced it (a scan with a delay adds a second one).
    pub item_ids: Vec<String>,
    pub created_at: String,
}

/// One request to a pre-signed attachment URL, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3RequestRecord {
    pub method: String,
    pub path: String,
    pub attachment_id: Option<String>,
    pub status: u16,
    /// The S3 error code (`SignatureDoesNotMatch`, `AccessDenied`, `IncompleteBody`…).
    pub code: Option<String>,
    /// Why, in words.
    pub rejection: Option<String>,
    /// `HeadersToInclude` headers the PUT did not send.
    pub missing_headers: Vec<String>,
    /// `HeadersToInclude` headers the PUT sent with another value.
    pub mismatched_headers: Vec<String>,
    /// Bytes received (PUT) or the size of the file served (GET).
    pub size: Option<u64>,
    /// SHA-256 of a received body, lower-case hex.
    pub sha256: Option<String>,
    pub at: String,
}

/// A transcript item with its visibility (which is an SNS attribute, not an `Item` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatItem {
    #[serde(flatten)]
    pub item: Item,
    #[serde(rename = "MessageVisibility")]
    pub visibility: MessageVisibility,
}

/// What an agent-side control call adds to a transcript (`agent_send_item`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemSpec {
    pub item_type: ItemType,
    pub role: ParticipantRole,
    pub visibility: MessageVisibility,
    pub content_type: String,
    pub content: Option<String>,
    /// Default: the agent's name for AGENT, the customer's for CUSTOMER, the barged-in
    /// supervisor's for SUPERVISOR, `SYSTEM_MESSAGE` otherwise.
    pub display_name: Option<String>,
    /// Default: the agent's / customer's / barged-in supervisor's participant id, or a fixed
    /// system participant id.
    pub participant_id: Option<String>,
    /// `MessageMetadata`, as given (for MESSAGEMETADATA items).
    pub message_metadata: Option<MessageMetadata>,
}

impl Default for ItemSpec {
    fn default() -> Self {
        Self {
            item_type: ItemType::Message,
            role: ParticipantRole::Agent,
            visibility: MessageVisibility::All,
            content_type: content_types::TEXT_PLAIN.to_owned(),
            content: None,
            display_name: None,
            participant_id: None,
            message_metadata: None,
        }
    }
}

impl ItemSpec {
    /// A MESSAGE from `role` with `visibility`.
    pub fn message(
        role: ParticipantRole,
        visibility: MessageVisibility,
        content_type: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            role,
            visibility,
            content_type: content_type.into(),
            content: Some(content.into()),
            ..Self::default()
        }
    }
}

/// An attachment the agent side sends (`agent_send_attachment_with`, `POST …/{id}/attachment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttachment {
    pub name: String,
    /// Default: the file's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// A registered file (`SandboxHandle::add_file`).
    pub file_id: String,
    /// Default APPROVED (only APPROVED attachments can be downloaded).
    #[serde(default = "approved")]
    pub status: ArtifactStatus,
}

fn approved() -> ArtifactStatus {
    ArtifactStatus::Approved
}

/// Lifecycle of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// StartChatContact done, customer not connected.
    Started,
    /// CreateParticipantConnection with `ConnectParticipant: true` done: the flow runs.
    Connected,
    Ended,
}

/// Why a chat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// DisconnectParticipant from the customer.
    CustomerDisconnected,
    /// StopContact.
    StopContact,
    /// `end_chat` (the agent side / the flow ended it).
    Ended,
    /// `ChatDurationInMinutes` elapsed.
    Expired,
}

/// The message of StartChatContact's `InitialMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub content_type: String,
    pub content: String,
}

/// The agent of a contact, or the supervisor who barged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub participant_id: String,
    pub display_name: String,
    /// false once they left.
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamingView {
    pub streaming_id: String,
    pub topic_arn: String,
    pub active: bool,
}

/// A snapshot of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// The current ContactId (changes on transfer).
    pub contact_id: String,
    pub initial_contact_id: String,
    /// ContactIds this chat had before transfers, oldest first.
    pub previous_contact_ids: Vec<String>,
    pub instance_id: String,
    /// The contact flow StartChatContact started the chat in.
    pub contact_flow_id: String,
    pub attributes: BTreeMap<String, String>,
    pub display_name: String,
    pub customer_participant_id: String,
    pub client_token: Option<String>,
    /// StartChatContact's `CustomerId` (sensitive in the API: e.g. the Customer Profiles
    /// ProfileId).
    pub customer_id: Option<String>,
    pub initial_message: Option<ChatMessage>,
    pub supported_messaging_content_types: Vec<String>,
    pub chat_duration_minutes: u32,
    /// `PersistentChat.SourceContactId`, when the chat continues an earlier one.
    pub continued_from_contact_id: Option<String>,
    pub customer_connected: bool,
    pub agent: Option<AgentView>,
    /// The supervisor who barged in (role SUPERVISOR), the last one if several did.
    pub supervisor: Option<AgentView>,
    pub status: ContactStatus,
    pub end_reason: Option<EndReason>,
    pub streaming: Vec<StreamingView>,
    /// Every item ever added, in order (including typing events and agent-only items).
    pub transcript: Vec<ChatItem>,
    /// Attachments started or sent in this chat, in order.
    pub attachments: Vec<AttachmentView>,
    pub created_at: String,
    pub ended_at: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The real agent message of docs/protocols.md B3 round-trips byte for byte.
    #[test]
    fn item_serialises_like_connect() {
        let real = r#"{"AbsoluteTime":"2026-04-01T22:20:13.466Z","Content":"Connect con pago","ContentType":"text/markdown","Id":"019d4b22-031a-7f5a-985f-812613771c9f","Type":"MESSAGE","ParticipantId":"7bc2bf37-6e83-4426-9671-8048abe56ddc","DisplayName":"Enrique","ParticipantRole":"AGENT","InitialContactId":"da81f813-70b0-496e-91ed-70f48771c522","ContactId":"da81f813-70b0-496e-91ed-70f48771c522"}"#;
        let item: Item = serde_json::from_str(real).unwrap();
        assert_eq!(item.participant_role, Some(ParticipantRole::Agent));
        assert_eq!(serde_json::to_string(&item).unwrap(), real);
    }

    /// The ATTACHMENT item of CHATJS `ChatAttachmentsFeature.md` round-trips byte for byte.
    #[test]
    fn attachment_item_serialises_like_connect() {
        let real = r#"{"AbsoluteTime":"2025-05-24T21:42:55.867Z","Attachments":[{"ContentType":"image/png","AttachmentId":"asdfasdfasdfsadf","AttachmentName":"Screenshot.png","Status":"APPROVED"}],"Id":"86a061a2-f99c-4691-a63e-47d145628a80","Type":"ATTACHMENT","ParticipantId":"4393212f","DisplayName":"Spencer","ParticipantRole":"AGENT","InitialContactId":"f50e4cc0","ContactId":"7d007f43"}"#;
        let item: Item = serde_json::from_str(real).unwrap();
        assert_eq!(item.item_type, ItemType::Attachment);
        assert_eq!(
            item.attachments.as_ref().unwrap()[0].status,
            ArtifactStatus::Approved
        );
        assert_eq!(serde_json::to_string(&item).unwrap(), real);
    }

    /// A read receipt: `Type` MESSAGEMETADATA, `MessageMetadata` with one `Receipt` carrying only
    /// the timestamp of its kind.
    #[test]
    fn receipt_item_carries_message_metadata() {
        let json = r#"{"AbsoluteTime":"2026-04-01T22:21:00.000Z","Content":"{\"messageId\":\"m-1\"}","ContentType":"application/vnd.amazonaws.connect.event.message.read","Id":"r-1","Type":"MESSAGEMETADATA","ParticipantId":"c-1","DisplayName":"Elizabeth","ParticipantRole":"CUSTOMER","MessageMetadata":{"MessageId":"m-1","Receipts":[{"ReadTimestamp":"2026-04-01T22:21:00.000Z","RecipientParticipantId":"c-1"}]},"InitialContactId":"a","ContactId":"a"}"#;
        let item: Item = serde_json::from_str(json).unwrap();
        assert_eq!(item.item_type, ItemType::MessageMetadata);
        assert_eq!(item.item_type.as_str(), "MESSAGEMETADATA");
        let metadata = item.message_metadata.as_ref().unwrap();
        assert_eq!(metadata.message_id, "m-1");
        assert_eq!(metadata.receipts[0].delivered_timestamp, None);
        assert_eq!(serde_json::to_string(&item).unwrap(), json);
    }

    #[test]
    fn chat_ended_has_no_participant_fields() {
        let item = Item {
            absolute_time: "2026-04-01T22:25:00.000Z".into(),
            attachments: None,
            content: None,
            content_type: content_types::CHAT_ENDED.into(),
            id: "i".into(),
            item_type: ItemType::Event,
            participant_id: None,
            display_name: None,
            participant_role: None,
            message_metadata: None,
            initial_contact_id: "a".into(),
            contact_id: "a".into(),
        };
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            r#"{"AbsoluteTime":"2026-04-01T22:25:00.000Z","ContentType":"application/vnd.amazonaws.connect.event.chat.ended","Id":"i","Type":"EVENT","InitialContactId":"a","ContactId":"a"}"#
        );
    }
}
