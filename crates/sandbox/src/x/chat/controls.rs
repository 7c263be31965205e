//! The X Chat side of the control surface: `SandboxHandle` methods to inspect what the emulator
//! stored (events, public keys, media, typing / read calls) and to deliver a hand-made chat
//! event, and their HTTP routes under `/_sandbox/x/chat/…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::control::reply::{ControlError, Reply, body, ok};
use crate::error::SandboxError;
use crate::handle::SandboxHandle;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::chat::delivery;
use crate::x::chat::records::{
    ChatEventRecord, ChatIndicatorRecord, ChatMediaRecord, ChatPublicKeyRecord,
};
use crate::x::records::WebhookDelivery;

impl SandboxHandle {
    // ----- X Chat -----

    /// Every event the X Chat emulator relayed (messages and key changes), in sequence order.
    pub fn chat_events(&self) -> Vec<ChatEventRecord> {
        lock(&self.shared.x)
            .chat
            .events
            .iter()
            .map(|e| e.record.clone())
            .collect()
    }

    /// The public key rows `user_id` registered, in numeric version order.
    pub fn chat_public_keys(&self, user_id: &str) -> Vec<ChatPublicKeyRecord> {
        lock(&self.shared.x)
            .chat
            .public_keys
            .get(user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every X Chat media upload (finalized or not), oldest first.
    pub fn chat_media(&self) -> Vec<ChatMediaRecord> {
        lock(&self.shared.x)
            .chat
            .media
            .iter()
            .map(|m| m.record.clone())
            .collect()
    }

    /// The stored ciphertext of the finalized upload `media_hash_key`.
    pub fn chat_media_bytes(&self, media_hash_key: &str) -> Option<Vec<u8>> {
        lock(&self.shared.x)
            .chat
            .media
            .iter()
            .find(|m| m.record.media_hash_key == media_hash_key)
            .and_then(|m| m.blob.clone())
    }

    /// Accepted `POST …/typing` and `POST …/read` calls, in order.
    pub fn chat_indicators(&self) -> Vec<ChatIndicatorRecord> {
        lock(&self.shared.x).chat.indicators.clone()
    }

    /// Delivers `payload` as-is (e.g. with a tampered `encoded_event`) as an X Activity API event
    /// of type `event_type` (`chat.received`, `chat.sent`, `chat.conversation.join`, …) to the
    /// subscriptions of `user_id`: logged, streamed and POSTed like the emulator's own events, not
    /// stored as a chat event. Answers the first webhook delivery (without status when no
    /// subscription of `user_id` to `event_type` has a webhook).
    pub async fn deliver_chat_raw(
        &self,
        user_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<WebhookDelivery, SandboxError> {
        delivery::deliver_raw(&self.shared, user_id, event_type, payload).await
    }
}

type Ctl = State<Arc<Shared>>;

/// `/_sandbox/x/chat/…` routes.
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/x/chat/events", get(events))
        .route("/x/chat/public-keys", get(public_keys))
        .route("/x/chat/media", get(media))
        .route("/x/chat/media/{media_hash_key}/content", get(media_content))
        .route("/x/chat/indicators", get(indicators))
        .route("/x/chat/deliver", post(deliver))
}

fn handle(shared: Arc<Shared>) -> SandboxHandle {
    SandboxHandle { shared }
}

async fn events(State(shared): Ctl) -> Reply {
    ok(handle(shared).chat_events())
}

#[derive(Deserialize)]
struct UserQuery {
    user_id: Option<String>,
}

/// `?user_id=U`: that user's rows; without it every user's, by user id.
async fn public_keys(State(shared): Ctl, Query(q): Query<UserQuery>) -> Reply {
    match q.user_id {
        Some(user_id) => ok(handle(shared).chat_public_keys(&user_id)),
        None => ok(lock(&shared.x).chat.public_keys.clone()),
    }
}

async fn media(State(shared): Ctl) -> Reply {
    ok(handle(shared).chat_media())
}

async fn media_content(State(shared): Ctl, Path(key): Path<String>) -> Reply {
    let bytes = handle(shared).chat_media_bytes(&key).ok_or_else(|| {
        ControlError(
            StatusCode::NOT_FOUND,
            format!("no finalized X Chat media {key}"),
        )
    })?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

async fn indicators(State(shared): Ctl) -> Reply {
    ok(handle(shared).chat_indicators())
}

#[derive(Deserialize)]
struct DeliverBody {
    user_id: String,
    event_type: String,
    payload: Value,
}

async fn deliver(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: DeliverBody = body(&bytes)?;
    ok(handle(shared)
        .deliver_chat_raw(&req.user_id, &req.event_type, req.payload)
        .await?)
}
