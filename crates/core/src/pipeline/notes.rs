//! Sentences people read when the bridge cannot do what was asked. One place, so that the
//! wording stays consistent and tests can refer to it.

use crate::chat_item::AttachmentRef;
use crate::inbound::MediaKind;
use crate::ports::XError;

/// Prefix of every note the bridge writes into a chat for the agent.
pub const AGENT_NOTE_PREFIX: &str = "⚠ xdm-connect:";

/// The customer's DM carried media this version of the bridge does not attach.
pub fn media_not_attached(kind: MediaKind) -> String {
    format!(
        "{AGENT_NOTE_PREFIX} the customer also sent {} on X, which could not be attached to this chat.",
        kind.with_article()
    )
}

/// The agent's message could not be delivered to the customer on X.
pub fn not_delivered(error: &XError) -> String {
    let why = match error {
        XError::Forbidden(_) => {
            "X refused it (the customer may not accept DMs from this account, or has blocked it)"
                .to_owned()
        }
        XError::UsageCapped(_) => "the X app has reached its usage cap".to_owned(),
        XError::Invalid(detail) => format!("X rejected it as invalid ({detail})"),
        XError::NotFound(_) => "the customer's X account no longer exists".to_owned(),
        other => other.to_string(),
    };
    format!("{AGENT_NOTE_PREFIX} your last message was not delivered to the customer: {why}.")
}

/// For the customer: a file the agent sent cannot travel over X DM.
pub fn file_for_customer(attachment: &AttachmentRef) -> String {
    format!(
        "The agent sent {} ({}) that can't be delivered over X DM.",
        describe_file(&attachment.content_type),
        attachment.name
    )
}

/// For the agent: that file did not reach the customer.
pub fn file_not_delivered(attachment: &AttachmentRef) -> String {
    format!(
        "{AGENT_NOTE_PREFIX} {} was not delivered to the customer: files from the chat are not relayed to X DMs.",
        attachment.name
    )
}

fn describe_file(content_type: &str) -> &'static str {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("image/") {
        "an image"
    } else if ct.starts_with("video/") {
        "a video"
    } else if ct.starts_with("audio/") {
        "an audio file"
    } else {
        "a document"
    }
}
