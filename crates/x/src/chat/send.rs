//! A reply sealed, signed and sent to a customer on X Chat (docs/xchat.md §3.2–§3.7), for
//! [`XApi::send_chat`](xdm_core::ports::XApi::send_chat): the conversation key unwrapped from
//! the key change the customer's messages use, the text sealed with a nonce derived from the
//! message id (a retry is the same request byte for byte, and X keeps one message per id),
//! signed with this account's signing key, `POST /2/chat/conversations/{recipient}/messages`.

use http::Method;
use serde::{Deserialize, Serialize};
use xdm_core::ids::XUserId;
use xdm_core::ports::{ChatRequest, SentChat, XError};
use xdm_xchat::events::{OutgoingMessage, Sender, parse_event, text_message_with};

use crate::chat::key_change::open_key_change;
use crate::chat::unreadable;
use crate::client::XClient;
use crate::error::unexpected_body;

#[derive(Debug, Serialize)]
struct SendBody<'a> {
    message_id: &'a str,
    encoded_message_create_event: &'a str,
    encoded_message_event_signature: &'a str,
}

#[derive(Debug, Deserialize)]
struct Sent {
    data: SentData,
}

#[derive(Debug, Deserialize)]
struct SentData {
    encoded_message_event: String,
}

/// [`XApi::send_chat`](xdm_core::ports::XApi::send_chat) over `client`.
pub(crate) async fn send(client: &XClient, message: &ChatRequest) -> Result<SentChat, XError> {
    let identity = client.chat_identity(&message.business)?;
    let change =
        parse_event(&message.key.encoded_event).map_err(|e| unreadable("the key change", &e))?;
    let (key, held) = open_key_change(
        client,
        &identity,
        &message.business,
        &change,
        &message.key.encoded_event,
    )
    .await?;
    let outgoing = text_message_with(
        Sender {
            keys: identity.keys(),
            user_id: message.business.as_str(),
            public_key_version: identity.key_version(),
        },
        &held.conversation_id,
        &held.key_version,
        &key,
        &message.message_id,
        &message.text,
        key.nonce_for(
            &message.message_id,
            &xdm_xchat::thrift::text_message(&message.text),
        ),
    )
    .map_err(|e| XError::Invalid(format!("cannot build the X Chat message: {e}")))?;
    tracing::debug!(business = %message.business, recipient = %message.recipient, "sending an X Chat message");
    post_message(client, &message.business, &message.recipient, &outgoing).await
}

/// `POST /2/chat/conversations/{recipient}/messages` with a sealed, signed message.
pub(crate) async fn post_message(
    client: &XClient,
    business: &XUserId,
    recipient: &XUserId,
    outgoing: &OutgoingMessage,
) -> Result<SentChat, XError> {
    let url = client.endpoint(&format!("/2/chat/conversations/{recipient}/messages"))?;
    let body = SendBody {
        message_id: &outgoing.message_id,
        encoded_message_create_event: &outgoing.encoded_message_create_event,
        encoded_message_event_signature: &outgoing.encoded_message_event_signature,
    };
    let answer = client
        .call(Method::POST, url, business, Some(&body))
        .await?;
    if answer.status == http::StatusCode::CONFLICT {
        // X has a message with this id already: an earlier attempt of this one (a retry of a
        // file uploads it again, so the request is not the same byte for byte). Delivered.
        tracing::info!(%recipient, "X Chat already has this message (an earlier attempt): not sent again");
        return Ok(SentChat {
            sequence_id: String::new(),
        });
    }
    let answer = answer.success()?;
    let sent: Sent = serde_json::from_slice(&answer.body)
        .map_err(|_| unexpected_body("an X Chat send", &answer.body))?;
    let event = parse_event(&sent.data.encoded_message_event)
        .map_err(|_| unexpected_body("an X Chat send", &answer.body))?;
    Ok(SentChat {
        sequence_id: event.sequence_id,
    })
}
