//! The Amazon Connect Customer Profiles emulator (service `profile`): SearchProfiles,
//! CreateProfile and UpdateProfile over the configured domains' standard profiles, and the
//! control that lists them.

pub(crate) mod api;
pub(crate) mod controls;
pub mod model;
pub(crate) mod request;
pub(crate) mod search;
pub(crate) mod state;

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

/// Every Customer Profiles route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    api::routes()
}
