//! The X (Twitter) emulator: the REST routes the bridge calls (DMs, users, media upload and
//! download, OAuth 2.0, webhooks, Activity API subscriptions and stream, X Chat), and the webhook
//! side that calls the bridge.

pub(crate) mod account_activity;
pub(crate) mod auth;
pub(crate) mod calls;
pub mod chat;
pub(crate) mod controls;
pub(crate) mod dispatch;
pub(crate) mod dm_activity;
pub(crate) mod dm_events;
pub(crate) mod dm_media;
pub mod dm_spec;
pub(crate) mod media_download;
pub(crate) mod media_upload;
pub(crate) mod oauth2;
pub mod oauth2_tokens;
pub mod oauth_verify;
pub(crate) mod outgoing;
pub mod payloads;
pub(crate) mod problem;
pub mod records;
pub(crate) mod replay;
pub(crate) mod send_dm;
pub(crate) mod state;
pub(crate) mod stream;
pub(crate) mod stream_connections;
pub(crate) mod subscriptions;
pub(crate) mod uploads;
pub(crate) mod user_lookup;
pub mod users;
pub mod webhook_client;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::Shared;

/// Every X route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/2/dm_conversations/with/{participant_id}/messages",
            post(send_dm::create_dm),
        )
        .route(
            "/2/dm_conversations/with/{participant_id}/dm_events",
            get(dm_events::list_dm_events),
        )
        .route("/2/users/me", get(user_lookup::get_me))
        .route("/2/users/{id}", get(user_lookup::get_user))
        .route("/2/dm_events", get(dm_events::list_all_dm_events))
        .merge(media_upload::routes())
        .merge(media_download::routes())
        .merge(oauth2::routes())
        .merge(webhooks::routes())
        .merge(replay::routes())
        .merge(subscriptions::routes())
        .merge(account_activity::routes())
        .merge(stream::routes())
        .merge(chat::routes())
}
