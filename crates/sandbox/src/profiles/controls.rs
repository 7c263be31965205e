//! Customer Profiles as controls: the `SandboxHandle` method listing every profile and its route
//! `GET /_sandbox/connect/profiles`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::control::reply::{Reply, ok};
use crate::handle::SandboxHandle;
use crate::profiles::model::ProfileView;
use crate::state::Shared;
use crate::sync::lock;

impl SandboxHandle {
    // ----- Customer Profiles -----

    /// Every Customer Profiles profile: by domain (name order), then in creation order, with all
    /// its fields as SearchProfiles returns them.
    pub fn profiles(&self) -> Vec<ProfileView> {
        lock(&self.shared.profiles).views()
    }
}

/// `/_sandbox/connect/profiles` (merged into the control API).
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new().route("/connect/profiles", get(list_profiles))
}

async fn list_profiles(State(shared): State<Arc<Shared>>) -> Reply {
    ok(SandboxHandle { shared }.profiles())
}
