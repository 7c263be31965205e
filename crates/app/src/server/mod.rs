//! The HTTP face of `serve` (docs/architecture.md): X webhooks, the Connect SNS subscription and
//! the health status on the public listener ([`router`], also what the Lambda HTTP function
//! answers with); metrics and health details behind a bearer token on the admin listener
//! ([`admin_router`]). Handlers only authenticate, parse and persist; delivery happens in the
//! dispatchers, so both platforms get their answer fast. [`serve`] runs a router on a listener
//! within timeouts and a connection cap (`listener`, `connection`).

mod admin;
mod admin_auth;
mod connect_webhook;
mod connection;
mod health;
mod listener;
mod log_limit;
mod operator;
mod reject;
mod state;
mod x_webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use self::admin::admin_router;
pub use self::listener::{Limits, serve};
pub use self::state::AppState;

/// The public listener's router: the platforms' webhooks and `/healthz` (its status only).
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/webhooks/x", get(x_webhook::crc).post(x_webhook::events))
        // The AWS sample's API path, so its users can point the same webhook at this bridge.
        .route("/webhooks", get(x_webhook::crc).post(x_webhook::events))
        .route("/webhooks/connect", post(connect_webhook::sns))
        .route("/healthz", get(health::healthz))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
