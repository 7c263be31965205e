//! The X Chat (encrypted DMs) emulator: the backend side of docs/xchat.md, written from its wire
//! formats (not from the bridge's code, so that it checks the bridge). It stores and relays
//! ciphertext only — it never holds a private key, a conversation key or a plaintext.
//!
//! | route | what |
//! |---|---|
//! | `POST /2/users/{id}/public_keys` | register one key version of the caller (both keys P-256, cross-signatures and fingerprint checked) → `{"data":{"public_key_version"}}` (`public_keys.rs`) |
//! | `GET /2/users/{id}/public_keys`, `GET /2/users/public_keys?ids=` | the rows as registered, `public_key.fields` honoured; no keys ⇒ `{"data":[]}` |
//! | `POST /2/chat/conversations/{id}/keys` | a conversation key version with its signed key-change detail → a key-change event; the first key ⇒ `chat.conversation.join` to the peer (`conversation_keys.rs`) |
//! | `POST /2/chat/conversations/{id}/messages` | a message whose signature verifies with the sender's registered signing key → 201 with the relayed event; `chat.received` / `chat.sent` (`messages.rs`) |
//! | `GET /2/chat/conversations/{id}/events` | messages newest first, paged; every page lists the key changes (`history.rs`) |
//! | `POST /2/chat/conversations/{id}/typing`, `…/read` | `{"data":{"success":true}}`, recorded (`indicators.rs`) |
//! | `POST /2/chat/media/upload/initialize`, `…/{session_id}/append`, `…/finalize`; `GET /2/chat/media/{id}/{media_hash_key}` | encrypted media, participants only (`media_upload.rs`, `media_download.rs`) |
//!
//! Conversation ids in paths: the peer's user id, `A-B` or `A:B`; groups (`g…`) are not emulated
//! (404). Events carry the canonical `lower:higher` id. Tests inspect the emulator through
//! `SandboxHandle::chat_*` and `deliver_chat_raw` (`controls.rs`); docs/xchat.md §9 has the
//! details and the choices made where X documents nothing.

pub(crate) mod body;
pub(crate) mod controls;
pub(crate) mod conversation;
pub(crate) mod conversation_keys;
pub(crate) mod crypto;
pub(crate) mod delivery;
pub(crate) mod history;
pub(crate) mod indicators;
pub(crate) mod media_download;
pub(crate) mod media_upload;
pub(crate) mod messages;
pub(crate) mod public_keys;
pub(crate) mod queue;
pub mod records;
pub(crate) mod state;
pub mod thrift;
pub(crate) mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::Shared;

pub use records::{
    ChatEventKind, ChatEventRecord, ChatIndicatorKind, ChatIndicatorRecord, ChatMediaRecord,
    ChatPublicKeyRecord,
};

/// Every X Chat route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/2/users/{id}/public_keys",
            post(public_keys::add).get(public_keys::get_user),
        )
        .route("/2/users/public_keys", get(public_keys::get_users))
        .route(
            "/2/chat/conversations/{id}/keys",
            post(conversation_keys::add),
        )
        .route("/2/chat/conversations/{id}/messages", post(messages::send))
        .route("/2/chat/conversations/{id}/events", get(history::list))
        .route(
            "/2/chat/conversations/{id}/typing",
            post(indicators::typing),
        )
        .route("/2/chat/conversations/{id}/read", post(indicators::read))
        .route(
            "/2/chat/media/upload/initialize",
            post(media_upload::initialize),
        )
        .route(
            "/2/chat/media/upload/{session_id}/append",
            post(media_upload::append).layer(DefaultBodyLimit::max(media_upload::MAX_APPEND_BODY)),
        )
        .route(
            "/2/chat/media/upload/{session_id}/finalize",
            post(media_upload::finalize),
        )
        .route(
            "/2/chat/media/{conversation_id}/{media_hash_key}",
            get(media_download::download),
        )
}
