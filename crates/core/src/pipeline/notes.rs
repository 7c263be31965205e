//! Sentences people read when the bridge cannot do what was asked. One place, so that the
//! wording stays consistent and tests can refer to it.

use crate::chat_item::AttachmentRef;
use crate::inbound::MediaKind;
use crate::media::XMediaCategory;
use crate::ports::XError;

/// Prefix of every note the bridge writes into a chat for the agent.
pub const AGENT_NOTE_PREFIX: &str = "⚠ xdm-connect:";

/// The opening message of a chat whose first DM is only a photo, GIF or video (the file follows
/// as an attachment).
pub fn media_opening(kind: MediaKind) -> String {
    format!("The customer sent {}.", kind.with_article())
}

/// The customer's DM carried media that could not be attached to the chat.
pub fn media_not_attached(kind: MediaKind, reason: &str) -> String {
    format!(
        "{AGENT_NOTE_PREFIX} the customer sent {} on X that could not be attached here: {reason}.",
        kind.with_article()
    )
}

/// An X Chat message from the customer failed its signature check or did not decrypt: its
/// contents are not shown (they may not be the customer's words).
pub fn chat_unreadable() -> String {
    format!(
        "{AGENT_NOTE_PREFIX} a message from the customer on X Chat could not be verified or \
         decrypted, so it is not shown. Ask the customer to send it again."
    )
}

/// The agent's message could not be delivered to the customer on X.
pub fn not_delivered(error: &XError) -> String {
    format!(
        "{AGENT_NOTE_PREFIX} your last message was not delivered to the customer: {}.",
        x_refusal(error)
    )
}

/// Why X refused, for a person.
pub fn x_refusal(error: &XError) -> String {
    match error {
        XError::Forbidden(_) => {
            "X refused it (the customer may not accept DMs from this account, or has blocked it)"
                .to_owned()
        }
        XError::UsageCapped(_) => "the X app has reached its usage cap".to_owned(),
        XError::Invalid(detail) => format!("X rejected it ({detail})"),
        XError::NotFound(_) => "the customer's X account no longer exists".to_owned(),
        other => other.to_string(),
    }
}

/// For the customer: a file the agent sent cannot travel over X DM. Never a URL.
pub fn file_for_customer(attachment: &AttachmentRef) -> String {
    format!(
        "The agent sent {} ({}) that can't be delivered over X DM.",
        describe_file(&attachment.content_type),
        attachment.name
    )
}

/// For the agent: that file did not reach the customer, and why.
pub fn file_not_delivered(attachment: &AttachmentRef, reason: &str) -> String {
    format!(
        "{AGENT_NOTE_PREFIX} {} was not delivered to the customer: {reason}.",
        attachment.name
    )
}

fn describe_file(content_type: &str) -> &'static str {
    match XMediaCategory::for_content_type(content_type) {
        Some(c) => c.with_article(),
        None if content_type.to_ascii_lowercase().starts_with("audio/") => "an audio file",
        None => "a document",
    }
}
