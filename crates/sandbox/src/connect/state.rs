//! The Connect emulator's memory: the chats (participants, streams, client tokens, transcript,
//! attachments), their token indexes, the pre-signed attachment URLs handed out, the "S3" request
//! records, and the run-time attachment scan and contact flows.

use std::collections::{BTreeMap, HashMap};

use axum::http::Method;
use serde_json::Value;
use time::OffsetDateTime;

use crate::clock;
use crate::config::AttachmentScan;
use crate::connect::flows::ContactFlowSpec;
use crate::connect::model::{
    AgentView, ArtifactStatus, AttachmentItem, AttachmentView, ChatItem, ChatMessage,
    ContactStatus, ContactView, EndReason, ItemType, MessageMetadata, MessageVisibility,
    ParticipantRole, Receipt, S3RequestRecord, StreamingView, content_types,
};
use crate::ids;

/// The participant id system messages carry.
pub(crate) const SYSTEM_PARTICIPANT_ID: &str = "00000000-0000-4000-8000-000000000000";
pub(crate) const SYSTEM_DISPLAY_NAME: &str = "SYSTEM_MESSAGE";

#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub participant_id: String,
    pub display_name: String,
    pub participant_token: String,
    pub connected: bool,
}

/// The agent, or a supervisor who barged in.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub participant_id: String,
    pub display_name: String,
    pub present: bool,
}

impl Agent {
    fn view(&self) -> AgentView {
        AgentView {
            participant_id: self.participant_id.clone(),
            display_name: self.display_name.clone(),
            present: self.present,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub streaming_id: String,
    pub topic_arn: String,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Chat {
    pub initial_contact_id: String,
    pub contact_id: String,
    pub previous_contact_ids: Vec<String>,
    pub instance_id: String,
    pub contact_flow_id: String,
    pub attributes: BTreeMap<String, String>,
    pub customer: Customer,
    pub agent: Option<Agent>,
    /// A supervisor who barged in (`supervisor_barge`): a third active participant while present.
    pub supervisor: Option<Agent>,
    pub client_token: Option<String>,
    /// StartChatContact's `CustomerId`.
    pub customer_id: Option<String>,
    pub initial_message: Option<ChatMessage>,
    pub supported_types: Vec<String>,
    pub duration_minutes: u32,
    pub continued_from: Option<String>,
    pub status: ContactStatus,
    pub end_reason: Option<EndReason>,
    pub streams: Vec<Stream>,
    /// StartContactStreaming ClientToken → StreamingId.
    pub streaming_tokens: HashMap<String, String>,
    /// SendMessage / SendEvent ClientToken → `{"Id","AbsoluteTime"}` answered.
    pub item_tokens: HashMap<String, Value>,
    /// StartAttachmentUpload ClientToken → the answer.
    pub attachment_tokens: HashMap<String, Value>,
    /// CompleteAttachmentUpload ClientTokens seen.
    pub complete_tokens: HashMap<String, Value>,
    /// Attachments started or sent, in order.
    pub attachments: Vec<Attachment>,
    pub transcript: Vec<ChatItem>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
}

impl Chat {
    pub(crate) fn is_ended(&self) -> bool {
        self.status == ContactStatus::Ended
    }

    pub(crate) fn view(&self) -> ContactView {
        ContactView {
            contact_id: self.contact_id.clone(),
            initial_contact_id: self.initial_contact_id.clone(),
            previous_contact_ids: self.previous_contact_ids.clone(),
            instance_id: self.instance_id.clone(),
            contact_flow_id: self.contact_flow_id.clone(),
            attributes: self.attributes.clone(),
            display_name: self.customer.display_name.clone(),
            customer_participant_id: self.customer.participant_id.clone(),
            client_token: self.client_token.clone(),
            customer_id: self.customer_id.clone(),
            initial_message: self.initial_message.clone(),
            supported_messaging_content_types: self.supported_types.clone(),
            chat_duration_minutes: self.duration_minutes,
            continued_from_contact_id: self.continued_from.clone(),
            customer_connected: self.customer.connected,
            agent: self.agent.as_ref().map(Agent::view),
            supervisor: self.supervisor.as_ref().map(Agent::view),
            status: self.status,
            end_reason: self.end_reason,
            streaming: self
                .streams
                .iter()
                .map(|s| StreamingView {
                    streaming_id: s.streaming_id.clone(),
                    topic_arn: s.topic_arn.clone(),
                    active: s.active,
                })
                .collect(),
            transcript: self.transcript.clone(),
            attachments: self.attachments.iter().map(|a| a.view(self)).collect(),
            created_at: clock::iso_ms(self.created_at),
            ended_at: self.ended_at.map(clock::iso_ms),
        }
    }

    /// Participants in the chat now: the connected customer, the agent and a barged-in
    /// supervisor while present.
    pub(crate) fn active_participants(&self) -> usize {
        usize::from(self.customer.connected)
            + [&self.agent, &self.supervisor]
                .into_iter()
                .filter(|p| p.as_ref().is_some_and(|p| p.present))
                .count()
    }

    /// Message receipts are refused when more than two participants are active (SendEvent, API
    /// reference: "Using the SendEvent API for message receipts when a supervisor is barged-in
    /// will result in a conflict exception").
    pub(crate) fn takes_receipts(&self) -> bool {
        self.active_participants() <= 2
    }

    /// Topics currently streaming this chat.
    pub(crate) fn active_topics(&self) -> Vec<String> {
        self.streams
            .iter()
            .filter(|s| s.active)
            .map(|s| s.topic_arn.clone())
            .collect()
    }
}

/// The bytes a PUT to an attachment's upload URL delivered (or an agent attachment carries).
#[derive(Debug, Clone)]
pub(crate) struct Uploaded {
    pub file_id: String,
    pub size: u64,
    pub sha256: String,
}

/// An attachment of a chat: a customer's (StartAttachmentUpload) or an agent's.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub id: String,
    pub role: ParticipantRole,
    pub name: String,
    pub content_type: String,
    pub declared_size: u64,
    /// The S3 path of its URLs (percent-encoded as in a request line).
    pub s3_path: String,
    /// `HeadersToInclude`, in the order handed out.
    pub headers: Vec<(String, String)>,
    pub upload: Option<Uploaded>,
    pub completed: bool,
    pub status: Option<ArtifactStatus>,
    pub item_ids: Vec<String>,
    pub created_at: OffsetDateTime,
}

impl Attachment {
    pub(crate) fn view(&self, chat: &Chat) -> AttachmentView {
        AttachmentView {
            attachment_id: self.id.clone(),
            contact_id: chat.contact_id.clone(),
            initial_contact_id: chat.initial_contact_id.clone(),
            role: self.role,
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            declared_size: self.declared_size,
            uploaded: self.upload.is_some(),
            size: self.upload.as_ref().map(|u| u.size),
            sha256: self.upload.as_ref().map(|u| u.sha256.clone()),
            file_id: self.upload.as_ref().map(|u| u.file_id.clone()),
            completed: self.completed,
            status: self.status,
            item_ids: self.item_ids.clone(),
            created_at: clock::iso_ms(self.created_at),
        }
    }

    /// The ATTACHMENT item announcing it with `status`, by `role`'s participant (customer or agent).
    pub(crate) fn item(
        &self,
        status: ArtifactStatus,
        role: ParticipantRole,
        participant_id: &str,
        display_name: &str,
    ) -> NewItem {
        NewItem {
            item_type: ItemType::Attachment,
            content_type: String::new(),
            content: None,
            attachments: Some(vec![AttachmentItem {
                content_type: self.content_type.clone(),
                attachment_id: self.id.clone(),
                attachment_name: self.name.clone(),
                status,
            }]),
            role: Some(role),
            participant_id: Some(participant_id.to_owned()),
            display_name: Some(display_name.to_owned()),
            visibility: MessageVisibility::All,
            metadata: None,
        }
    }
}

/// A pre-signed URL handed out.
#[derive(Debug, Clone)]
pub(crate) struct Presigned {
    pub attachment_id: String,
    pub method: Method,
    pub expires_at: OffsetDateTime,
}

/// Why a ConnectionToken was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Unknown,
    Expired,
}

#[derive(Debug, Default)]
pub(crate) struct ConnectState {
    pub chats: Vec<Chat>,
    by_contact_id: HashMap<String, usize>,
    by_participant_token: HashMap<String, usize>,
    by_connection_token: HashMap<String, (usize, OffsetDateTime)>,
    /// StartChatContact ClientToken → (chat, original response).
    pub start_tokens: HashMap<String, (usize, Value)>,
    /// `PersistentChat.SourceContactId`s used → the ContactId of the chat that continued each (a
    /// source can be continued only once).
    pub persistent_sources: HashMap<String, String>,
    /// AttachmentId → (chat, position in its `attachments`).
    pub attachment_index: HashMap<String, (usize, usize)>,
    /// Pre-signed URL signatures (`X-Amz-Signature`) handed out.
    pub presigned: HashMap<String, Presigned>,
    /// Requests to the pre-signed URLs, as answered.
    pub s3_requests: Vec<S3RequestRecord>,
    /// The attachment scan set at run time (`None`: the configured one).
    pub scan: Option<AttachmentScan>,
    /// The instance's contact flows once used (see [`ConnectState::flows`]).
    flows: Option<BTreeMap<String, ContactFlowSpec>>,
}

impl ConnectState {
    /// The chat that has (or had, before a transfer) this ContactId.
    pub(crate) fn find(&self, contact_id: &str) -> Option<usize> {
        self.by_contact_id.get(contact_id).copied()
    }

    pub(crate) fn by_participant_token(&self, token: &str) -> Option<usize> {
        self.by_participant_token.get(token).copied()
    }

    pub(crate) fn by_connection_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<usize, TokenProblem> {
        match self.by_connection_token.get(token) {
            None => Err(TokenProblem::Unknown),
            Some((_, expiry)) if *expiry <= now => Err(TokenProblem::Expired),
            Some((idx, _)) => Ok(*idx),
        }
    }

    pub(crate) fn insert(&mut self, chat: Chat) -> usize {
        let idx = self.chats.len();
        self.by_contact_id.insert(chat.contact_id.clone(), idx);
        self.by_participant_token
            .insert(chat.customer.participant_token.clone(), idx);
        self.chats.push(chat);
        idx
    }

    pub(crate) fn add_connection_token(
        &mut self,
        idx: usize,
        token: String,
        expiry: OffsetDateTime,
    ) {
        self.by_connection_token.insert(token, (idx, expiry));
    }

    pub(crate) fn add_attachment(&mut self, idx: usize, attachment: Attachment) -> Option<()> {
        let chat = self.chats.get_mut(idx)?;
        self.attachment_index
            .insert(attachment.id.clone(), (idx, chat.attachments.len()));
        chat.attachments.push(attachment);
        Some(())
    }

    pub(crate) fn attachment(&self, id: &str) -> Option<(usize, &Attachment)> {
        let (chat, pos) = *self.attachment_index.get(id)?;
        Some((chat, self.chats.get(chat)?.attachments.get(pos)?))
    }

    pub(crate) fn attachment_mut(&mut self, id: &str) -> Option<(usize, &mut Attachment)> {
        let (chat, pos) = *self.attachment_index.get(id)?;
        Some((chat, self.chats.get_mut(chat)?.attachments.get_mut(pos)?))
    }

    /// Every attachment of every chat.
    pub(crate) fn attachment_views(&self) -> Vec<AttachmentView> {
        self.chats
            .iter()
            .flat_map(|chat| chat.attachments.iter().map(|a| a.view(chat)))
            .collect()
    }

    /// Gives chat `idx` a new ContactId (transfer); the old ids keep resolving to it.
    pub(crate) fn transfer(&mut self, idx: usize) -> Option<String> {
        let chat = self.chats.get_mut(idx)?;
        let new_id = ids::uuid();
        let old = std::mem::replace(&mut chat.contact_id, new_id.clone());
        chat.previous_contact_ids.push(old);
        self.by_contact_id.insert(new_id.clone(), idx);
        Some(new_id)
    }

    /// The instance's contact flows, by id, seeded with the configured one (`configured_id`) on
    /// first use.
    pub(crate) fn flows(&mut self, configured_id: &str) -> &mut BTreeMap<String, ContactFlowSpec> {
        self.flows.get_or_insert_with(|| {
            BTreeMap::from([(
                configured_id.to_owned(),
                ContactFlowSpec::inbound(configured_id),
            )])
        })
    }
}

/// Which receipt a SendEvent sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReceiptKind {
    Delivered,
    Read,
}

impl ReceiptKind {
    /// The receipt a SendEvent content type is, if any.
    pub(crate) fn of(content_type: &str) -> Option<Self> {
        match content_type {
            content_types::MESSAGE_DELIVERED => Some(Self::Delivered),
            content_types::MESSAGE_READ => Some(Self::Read),
            _ => None,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Delivered => content_types::MESSAGE_DELIVERED,
            Self::Read => content_types::MESSAGE_READ,
        }
    }
}

/// The `MessageMetadata` of an item to add.
#[derive(Debug, Clone)]
pub(crate) enum NewMetadata {
    /// As given (`agent_send_item`).
    Given(MessageMetadata),
    /// A receipt for `message_id` by the item's participant, stamped with the item's time.
    Receipt {
        kind: ReceiptKind,
        message_id: String,
    },
}

impl NewMetadata {
    /// The metadata of an item added at `absolute_time` by `participant_id`.
    pub(crate) fn at(self, absolute_time: &str, participant_id: Option<&str>) -> MessageMetadata {
        match self {
            Self::Given(metadata) => metadata,
            Self::Receipt { kind, message_id } => {
                let at = Some(absolute_time.to_owned());
                let (delivered_timestamp, read_timestamp) = match kind {
                    ReceiptKind::Delivered => (at, None),
                    ReceiptKind::Read => (None, at),
                };
                MessageMetadata {
                    message_id,
                    receipts: vec![Receipt {
                        delivered_timestamp,
                        read_timestamp,
                        recipient_participant_id: participant_id.unwrap_or_default().to_owned(),
                    }],
                }
            }
        }
    }
}

/// An item to add; ids, time and contact ids are filled in by [`crate::connect::chat::append_item`].
#[derive(Debug, Clone)]
pub(crate) struct NewItem {
    pub item_type: ItemType,
    pub content_type: String,
    pub content: Option<String>,
    pub attachments: Option<Vec<AttachmentItem>>,
    pub role: Option<ParticipantRole>,
    pub participant_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: MessageVisibility,
    pub metadata: Option<NewMetadata>,
}

impl NewItem {
    /// An EVENT by a participant, visible to all.
    pub(crate) fn event(
        content_type: &str,
        role: ParticipantRole,
        participant_id: &str,
        display_name: &str,
    ) -> Self {
        Self {
            item_type: ItemType::Event,
            content_type: content_type.to_owned(),
            content: None,
            attachments: None,
            role: Some(role),
            participant_id: Some(participant_id.to_owned()),
            display_name: Some(display_name.to_owned()),
            visibility: MessageVisibility::All,
            metadata: None,
        }
    }

    /// A MESSAGEMETADATA item: `participant_id`'s `kind` receipt of message `message_id`, visible
    /// to all, with the SendEvent's content type and `{"messageId":…}` content.
    pub(crate) fn receipt(
        kind: ReceiptKind,
        message_id: &str,
        role: ParticipantRole,
        participant_id: &str,
        display_name: &str,
    ) -> Self {
        Self {
            item_type: ItemType::MessageMetadata,
            content: Some(serde_json::json!({ "messageId": message_id }).to_string()),
            metadata: Some(NewMetadata::Receipt {
                kind,
                message_id: message_id.to_owned(),
            }),
            ..Self::event(kind.content_type(), role, participant_id, display_name)
        }
    }

    /// A MESSAGE by a participant, visible to all.
    pub(crate) fn message(
        content_type: &str,
        content: &str,
        role: ParticipantRole,
        participant_id: &str,
        display_name: &str,
    ) -> Self {
        Self {
            item_type: ItemType::Message,
            content: Some(content.to_owned()),
            ..Self::event(content_type, role, participant_id, display_name)
        }
    }

    pub(crate) fn with_content(mut self, content: Option<String>) -> Self {
        self.content = content;
        self
    }
}
