//! The X (Twitter) emulator: REST routes the bridge calls, and the webhook side that calls the bridge.

pub(crate) mod api;
pub(crate) mod dm_events;
pub(crate) mod dm_media;
pub(crate) mod media_upload;
pub mod oauth_verify;
pub mod payloads;
pub(crate) mod problem;
pub mod records;
pub(crate) mod state;
pub mod users;
pub mod webhook_client;
