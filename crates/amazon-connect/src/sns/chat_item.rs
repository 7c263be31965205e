//! A streamed chat item (the Notification `Message`, docs/protocols.md B3) plus its SNS
//! `MessageAttributes` → [`xdm_core::chat_item::ChatItem`].

use std::collections::BTreeMap;

use serde::Deserialize;
use xdm_core::chat_item::{
    AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, ParticipantRole, Visibility,
};
use xdm_core::ids::{ChatItemId, ContactId, InitialContactId};

use super::envelope::{MessageAttribute, SnsMessage, SnsMessageType};
use crate::participant_client::iso8601_to_ms;

/// Why a notification is not a usable chat item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatItemError {
    #[error("not a Notification but a {0}")]
    NotANotification(SnsMessageType),
    #[error("the chat item is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("the chat item has no {0}")]
    MissingField(&'static str),
    #[error("the chat item's {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawItem {
    absolute_time: Option<String>,
    content: Option<String>,
    content_type: Option<String>,
    id: Option<String>,
    #[serde(rename = "Type")]
    item_type: Option<String>,
    display_name: Option<String>,
    participant_role: Option<String>,
    initial_contact_id: Option<String>,
    contact_id: Option<String>,
    attachments: Option<Vec<RawAttachment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawAttachment {
    attachment_id: Option<String>,
    attachment_name: Option<String>,
    content_type: Option<String>,
    status: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

/// Converts a verified `Notification` into a chat item.
pub fn chat_item_from_notification(msg: &SnsMessage) -> Result<ChatItem, ChatItemError> {
    if msg.message_type != SnsMessageType::Notification {
        return Err(ChatItemError::NotANotification(msg.message_type));
    }
    parse_chat_item(&msg.message, &msg.message_attributes)
}

/// Parses a chat item from the `Message` JSON string and the SNS message attributes (fields of
/// the item win; the attributes fill in what the item lacks).
pub fn parse_chat_item(
    message: &str,
    attributes: &BTreeMap<String, MessageAttribute>,
) -> Result<ChatItem, ChatItemError> {
    let raw: RawItem =
        serde_json::from_str(message).map_err(|e| ChatItemError::Json(e.to_string()))?;
    let attr = |name: &str| non_empty(attributes.get(name).map(|a| a.value.clone()));

    let id = non_empty(raw.id).ok_or(ChatItemError::MissingField("Id"))?;
    let id = ChatItemId::parse(id).map_err(|e| ChatItemError::InvalidField {
        field: "Id",
        reason: e.to_string(),
    })?;
    let initial = non_empty(raw.initial_contact_id)
        .or_else(|| attr("InitialContactId"))
        .ok_or(ChatItemError::MissingField("InitialContactId"))?;
    let initial_contact_id =
        InitialContactId::parse(initial).map_err(|e| ChatItemError::InvalidField {
            field: "InitialContactId",
            reason: e.to_string(),
        })?;
    let contact_id = non_empty(raw.contact_id)
        .or_else(|| attr("ContactId"))
        .map(ContactId::parse)
        .transpose()
        .map_err(|e| ChatItemError::InvalidField {
            field: "ContactId",
            reason: e.to_string(),
        })?;
    let absolute_time_ms = match non_empty(raw.absolute_time) {
        Some(t) => iso8601_to_ms(&t).unwrap_or_else(|| {
            tracing::debug!(absolute_time = %t, "unreadable AbsoluteTime; using 0");
            0
        }),
        None => 0,
    };
    let role = non_empty(raw.participant_role)
        .or_else(|| attr("ParticipantRole"))
        .map(|r| ParticipantRole::parse(&r));
    let visibility = attr("MessageVisibility").map(|v| Visibility::parse(&v));
    let display_name = non_empty(raw.display_name);

    let item_type = non_empty(raw.item_type)
        .or_else(|| attr("Type"))
        .ok_or(ChatItemError::MissingField("Type"))?;
    let content_type = non_empty(raw.content_type).or_else(|| attr("ContentType"));
    let body = match item_type.as_str() {
        "MESSAGE" => ChatItemBody::Message {
            content_type: content_type.unwrap_or_else(|| "text/plain".to_owned()),
            content: raw.content.ok_or(ChatItemError::MissingField("Content"))?,
        },
        "ATTACHMENT" => {
            let attachments = raw
                .attachments
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    Ok(AttachmentRef {
                        attachment_id: non_empty(a.attachment_id)
                            .ok_or(ChatItemError::MissingField("Attachments[].AttachmentId"))?,
                        name: a.attachment_name.unwrap_or_default(),
                        content_type: a.content_type.unwrap_or_default(),
                        status: AttachmentStatus::parse(a.status.as_deref().unwrap_or("")),
                    })
                })
                .collect::<Result<Vec<_>, ChatItemError>>()?;
            ChatItemBody::Attachment { attachments }
        }
        "EVENT" => ChatItemBody::Event {
            content_type: content_type.unwrap_or_default(),
        },
        _ => ChatItemBody::Other { item_type },
    };

    Ok(ChatItem {
        id,
        initial_contact_id,
        contact_id,
        absolute_time_ms,
        role,
        visibility,
        display_name,
        body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use xdm_core::chat_item::event_types;

    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, MessageAttribute> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    MessageAttribute {
                        data_type: "String".into(),
                        value: (*v).to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn attachment_item() {
        let msg = r#"{"AbsoluteTime":"2025-05-24T21:42:55.867Z","Attachments":[{"ContentType":"image/png","AttachmentId":"asdfasdfasdfsadf","AttachmentName":"Screenshot.png","Status":"APPROVED"}],"Id":"86a061a2-f99c-4691-a63e-47d145628a80","Type":"ATTACHMENT","ParticipantId":"4393212f","DisplayName":"Spencer","ParticipantRole":"AGENT","InitialContactId":"f50e4cc0","ContactId":"7d007f43"}"#;
        let item = parse_chat_item(msg, &attrs(&[("MessageVisibility", "ALL")])).unwrap();
        assert_eq!(item.absolute_time_ms, 1_748_122_975_867);
        assert_eq!(
            item.contact_id.as_ref().map(|c| c.as_str()),
            Some("7d007f43")
        );
        assert_eq!(
            item.body,
            ChatItemBody::Attachment {
                attachments: vec![AttachmentRef {
                    attachment_id: "asdfasdfasdfsadf".into(),
                    name: "Screenshot.png".into(),
                    content_type: "image/png".into(),
                    status: AttachmentStatus::Approved,
                }]
            }
        );
        assert!(item.is_for_customer());
    }

    #[test]
    fn event_without_role_takes_ids_from_attributes() {
        let msg = format!(
            r#"{{"AbsoluteTime":"2026-04-01T22:30:00.000Z","ContentType":"{}","Id":"e-1","Type":"EVENT"}}"#,
            event_types::CHAT_ENDED
        );
        let item = parse_chat_item(
            &msg,
            &attrs(&[("InitialContactId", "ic-1"), ("ContactId", "c-2")]),
        )
        .unwrap();
        assert_eq!(item.initial_contact_id.as_str(), "ic-1");
        assert_eq!(item.contact_id.as_ref().map(|c| c.as_str()), Some("c-2"));
        assert_eq!(item.role, None);
        assert_eq!(item.visibility, None);
        assert_eq!(
            item.body,
            ChatItemBody::Event {
                content_type: event_types::CHAT_ENDED.into()
            }
        );
    }

    #[test]
    fn role_from_attribute_and_other_types() {
        let msg = r#"{"Id":"x","Type":"TYPING_NEW","InitialContactId":"ic"}"#;
        let item = parse_chat_item(msg, &attrs(&[("ParticipantRole", "CUSTOMER")])).unwrap();
        assert_eq!(item.role, Some(ParticipantRole::Customer));
        assert_eq!(item.absolute_time_ms, 0);
        assert_eq!(
            item.body,
            ChatItemBody::Other {
                item_type: "TYPING_NEW".into()
            }
        );
    }

    #[test]
    fn malformed_items() {
        let none = attrs(&[]);
        assert!(matches!(
            parse_chat_item("nope", &none),
            Err(ChatItemError::Json(_))
        ));
        assert_eq!(
            parse_chat_item(r#"{"Type":"MESSAGE","InitialContactId":"i"}"#, &none),
            Err(ChatItemError::MissingField("Id"))
        );
        assert_eq!(
            parse_chat_item(r#"{"Id":"a","Type":"MESSAGE"}"#, &none),
            Err(ChatItemError::MissingField("InitialContactId"))
        );
        assert_eq!(
            parse_chat_item(
                r#"{"Id":"a","Type":"MESSAGE","InitialContactId":"i"}"#,
                &none
            ),
            Err(ChatItemError::MissingField("Content"))
        );
        assert_eq!(
            parse_chat_item(r#"{"Id":"a","InitialContactId":"i"}"#, &none),
            Err(ChatItemError::MissingField("Type"))
        );
        assert!(matches!(
            parse_chat_item(
                r#"{"Id":"a b","Type":"EVENT","InitialContactId":"i"}"#,
                &none
            ),
            Err(ChatItemError::InvalidField { field: "Id", .. })
        ));
    }
}
