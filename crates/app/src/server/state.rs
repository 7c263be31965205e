//! [`AppState`]: what every handler of the router reads (the bridge, secrets, verifiers, health
//! sources).

use std::sync::Arc;

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
