//! The HTTP face of `serve` (docs/architecture.md): X webhooks, the Connect SNS subscription, health
//! and metrics. Handlers only authenticate, parse and persist; delivery happens in the
//! dispatchers, so both platforms get their answer fast.

mod connect_webhook;
mod health;
mod x_webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use xdm_amazon_connect::sns::SnsVerifier;
use xdm_x::webhook::WebhookSecrets;

use crate::wiring::AppBridge;
use crate::x_events::seen::SeenLog;
use crate::x_events::stream::StreamHealth;
use crate::x_tokens::Tokens;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub bridge: Arc<AppBridge>,
    /// The X app's secrets (CRC answers, webhook signatures). Neither set: X webhooks answer 503.
    pub webhook_secrets: Option<WebhookSecrets>,
    /// `None` when the Connect topic is not configured: the SNS endpoint answers 503.
    pub sns: Option<SnsVerifier>,
    /// Settings missing for delivery, reported by `/healthz`.
    pub missing: Vec<&'static str>,
    pub metrics: Option<PrometheusHandle>,
    /// On AWS Lambda: the queue that wakes the delivery function for customers with new work.
    pub inbound_trigger: Option<crate::lambda::queue::InboundTrigger>,
    /// OAuth 2.0 user tokens (their state is part of `/healthz`).
    pub tokens: Option<Arc<Tokens>>,
    /// The X client the bridge delivers with (the catch-up and the webhook watch use it too),
    /// when X is configured.
    pub x_client: Option<xdm_x::XClient>,
    /// The activity stream's state, in stream delivery.
    pub stream: Option<Arc<StreamHealth>>,
    /// The newest DM seen per account (where a catch-up starts).
    pub seen: Option<Arc<SeenLog>>,
}

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

/// A one-line plain-text error answer.
pub(crate) fn reject(
    status: http::StatusCode,
    reason: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reason = reason.into();
    metrics::counter!("xdm_http_rejections_total", "status" => status.as_u16().to_string())
        .increment(1);
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}
