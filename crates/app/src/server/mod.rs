//! The HTTP face of `serve` (docs/architecture.md): X webhooks, the Connect SNS subscription, health
//! and metrics. Handlers only authenticate, parse and persist; delivery happens in the
//! dispatchers, so both platforms get their answer fast.

mod connect_webhook;
mod health;
mod reject;
mod state;
mod x_webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use self::state::AppState;

pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/webhooks/x", get(x_webhook::crc).post(x_webhook::events))
        // The AWS sample's API path, so its users can point the same webhook at this bridge.
        .route("/webhooks", get(x_webhook::crc).post(x_webhook::events))
        .route("/webhooks/connect", post(connect_webhook::sns))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
