//! Chat items streamed by Amazon Connect (Connect → X), in the bridge's own terms.

use serde::{Deserialize, Serialize};

use crate::ids::{ChatItemId, ContactId, InitialContactId};

/// One item of a chat transcript, as streamed to SNS, with the routing attributes that came
/// with it (the SNS `MessageAttributes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatItem {
    pub id: ChatItemId,
    pub initial_contact_id: InitialContactId,
    pub contact_id: Option<ContactId>,
    /// `AbsoluteTime` in milliseconds since the epoch (0 when Connect did not say).
    pub absolute_time_ms: i64,
    pub role: Option<ParticipantRole>,
    pub visibility: Option<Visibility>,
    pub display_name: Option<String>,
    pub body: ChatItemBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatItemBody {
    Message {
        content_type: String,
        content: String,
    },
    Attachment {
        attachments: Vec<AttachmentRef>,
    },
    Event {
        content_type: String,
    },
    /// Any other item type Connect may add; kept so it can be logged and skipped.
    Other {
        item_type: String,
    },
}

/// An attachment the agent added to the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub attachment_id: String,
    pub name: String,
    pub content_type: String,
    pub status: AttachmentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttachmentStatus {
    Approved,
    Rejected,
    InProgress,
    Other(String),
}

impl AttachmentStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "IN_PROGRESS" => Self::InProgress,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParticipantRole {
    Agent,
    Customer,
    System,
    CustomBot,
    Supervisor,
    Other(String),
}

impl ParticipantRole {
    pub fn parse(s: &str) -> Self {
        match s {
            "AGENT" => Self::Agent,
            "CUSTOMER" => Self::Customer,
            "SYSTEM" => Self::System,
            "CUSTOM_BOT" => Self::CustomBot,
            "SUPERVISOR" => Self::Supervisor,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    Customer,
    Agent,
    All,
    Other(String),
}

impl Visibility {
    pub fn parse(s: &str) -> Self {
        match s {
            "CUSTOMER" => Self::Customer,
            "AGENT" => Self::Agent,
            "ALL" => Self::All,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Connect event content types the bridge acts on or sends.
pub mod event_types {
    pub const PARTICIPANT_LEFT: &str = "application/vnd.amazonaws.connect.event.participant.left";
    pub const CHAT_ENDED: &str = "application/vnd.amazonaws.connect.event.chat.ended";
    pub const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
    pub const MESSAGE_DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
    pub const MESSAGE_READ: &str = "application/vnd.amazonaws.connect.event.message.read";
}

impl ChatItem {
    /// The routing rule for a customer-facing bridge (docs/protocols.md B3): forward only what the
    /// customer may see and what the customer did not write. The customer's own items are the
    /// bridge's messages coming back; relaying them would loop.
    ///
    /// Items without a visibility attribute are treated as visible to all (system events such as
    /// `chat.ended` may carry neither role nor visibility).
    pub fn is_for_customer(&self) -> bool {
        let visible = match &self.visibility {
            None | Some(Visibility::Customer) | Some(Visibility::All) => true,
            Some(Visibility::Agent) | Some(Visibility::Other(_)) => false,
        };
        visible && self.role != Some(ParticipantRole::Customer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(role: Option<ParticipantRole>, visibility: Option<Visibility>) -> ChatItem {
        ChatItem {
            id: ChatItemId::parse("i-1").unwrap_or_else(|e| panic!("{e}")),
            initial_contact_id: InitialContactId::parse("c-1").unwrap_or_else(|e| panic!("{e}")),
            contact_id: None,
            absolute_time_ms: 0,
            role,
            visibility,
            display_name: None,
            body: ChatItemBody::Message {
                content_type: "text/plain".into(),
                content: "hi".into(),
            },
        }
    }

    #[test]
    fn routing_rule() {
        use ParticipantRole as R;
        use Visibility as V;
        assert!(item(Some(R::Agent), Some(V::All)).is_for_customer());
        assert!(item(Some(R::Agent), Some(V::Customer)).is_for_customer());
        assert!(item(Some(R::System), Some(V::All)).is_for_customer());
        assert!(item(None, None).is_for_customer());
        assert!(!item(Some(R::Agent), Some(V::Agent)).is_for_customer());
        assert!(!item(Some(R::Customer), Some(V::All)).is_for_customer());
        assert!(!item(Some(R::Agent), Some(V::Other("X".into()))).is_for_customer());
    }
}
