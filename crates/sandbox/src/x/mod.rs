//! The X (Twitter) emulator: REST routes the bridge calls, and the webhook side that calls the bridge.

pub(crate) mod activity;
pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod controls;
pub(crate) mod dm_events;
pub(crate) mod dm_media;
pub(crate) mod media_upload;
pub mod oauth2;
pub mod oauth_verify;
pub mod payloads;
pub(crate) mod problem;
pub mod records;
pub(crate) mod state;
pub(crate) mod stream;
pub mod users;
pub mod webhook_client;
pub(crate) mod webhooks;
