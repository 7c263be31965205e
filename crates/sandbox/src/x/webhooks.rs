//! The app's webhooks: webhooks v2 (`/2/webhooks`) with a real CRC round trip, and the
//! registration a correctly set-up bridge has (`set_webhook`, `XConfig::webhook_url`). Replays of
//! their events are [`crate::x::replay`].
//!
//! * Create `{"url"}`: https without a port and at most 200 characters (an emulator also accepts
//!   `http://127.0.0.1:PORT/…` and `http://localhost:PORT/…`), not a duplicate
//!   (`DuplicateUrlFailed`), within `max_webhooks` (`WebhookLimitExceeded`), then a CRC whose
//!   `response_token` must match ([`crate::XConfig::crc_key`]), else `CrcValidationFailed`.
//! * `PUT /{id}` re-runs the CRC and sets `valid`; `DELETE /{id}` removes the webhook (its
//!   subscriptions keep no webhook); an unknown id ⇒ `WebhookIdInvalid`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{post, put};
use serde_json::{Value, json};

use crate::clock;
use crate::error::SandboxError;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::problem::{self, XReply};
use crate::x::records::{
    ActivitySubscription, CrcOutcome, SubscriptionFilter, WebhookRegistration, XOp,
};
use crate::x::state::{RateInfo, XState};
use crate::x::webhook_client;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2/webhooks", post(create).get(list))
        .route("/2/webhooks/{id}", put(validate).delete(remove))
}

/// A refused webhook call: X's `refusal` problem, recorded as `<reason>: <message>`.
pub(crate) fn refused(reason: &str, message: &str, rate: RateInfo) -> XReply {
    XReply::new(
        StatusCode::BAD_REQUEST,
        problem::refusal(reason, message),
        rate,
    )
    .rejected(format!("{reason}: {message}"))
}

/// `WebhookIdInvalid`: no webhook `id`.
pub(crate) fn unknown_webhook(id: &str, rate: RateInfo) -> XReply {
    refused(
        "WebhookIdInvalid",
        &format!("webhook {id} does not exist"),
        rate,
    )
}

fn webhook_json(hook: &WebhookRegistration) -> Value {
    json!({"id": hook.id, "url": hook.url, "valid": hook.valid, "created_at": hook.created_at})
}

/// Why X would refuse `url` as a webhook, if it would.
pub(crate) fn url_problem(url: &str) -> Option<String> {
    if url.is_empty() || url.chars().count() > 200 {
        return Some("the URL must have 1 to 200 characters".into());
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return Some("the URL is not valid".into());
    };
    let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost"));
    match parsed.scheme() {
        "https" if parsed.port().is_none() || local => None,
        "https" => Some("the URL must not name a port".into()),
        "http" if local => None,
        _ => Some("the URL must use https".into()),
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = create_reply(&shared, &req, &body).await;
    finish(&shared, XOp::CreateWebhook, &req, reply)
}

async fn create_reply(shared: &Shared, req: &XRequest, body: &[u8]) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::CreateWebhook,
        FaultOp::Webhooks,
        Accept::APP_OR_OAUTH1,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let url = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => match obj.get("url").and_then(Value::as_str) {
            Some(url) => url.to_owned(),
            None => {
                return XReply::new(
                    StatusCode::BAD_REQUEST,
                    problem::invalid_request(vec![problem::body_error(
                        "$.url: is missing but it is required",
                    )]),
                    rate,
                )
                .rejected("no url");
            }
        },
        _ => {
            return XReply::new(
                StatusCode::BAD_REQUEST,
                problem::invalid_request(vec![problem::body_error("$: must be a JSON object")]),
                rate,
            )
            .rejected("body is not a JSON object");
        }
    };
    if let Some(why) = url_problem(&url) {
        return refused("UrlValidationFailed", &why, rate);
    }
    {
        let x = lock(&shared.x);
        if x.webhooks.iter().any(|w| w.url == url) {
            return refused("DuplicateUrlFailed", "a webhook with this URL exists", rate);
        }
        if x.webhooks.len() >= shared.cfg.x.max_webhooks {
            return refused(
                "WebhookLimitExceeded",
                &format!("the app may have {} webhooks", shared.cfg.x.max_webhooks),
                rate,
            );
        }
    }
    let outcome = match webhook_client::fresh_crc(shared, &url).await {
        Ok(outcome) => outcome,
        Err(e) => return refused("CrcValidationFailed", &e.to_string(), rate),
    };
    if !outcome.ok {
        let why = outcome.error.unwrap_or_else(|| "CRC failed".into());
        return refused("CrcValidationFailed", &why, rate);
    }
    let hook = WebhookRegistration {
        id: shared.snowflake.next(),
        url,
        valid: true,
        created_at: clock::now_iso_ms(),
        outage: false,
    };
    lock(&shared.x).webhooks.push(hook.clone());
    tracing::info!(webhook_id = %hook.id, "webhook created");
    XReply::new(StatusCode::OK, json!({"data": webhook_json(&hook)}), rate)
}

async fn list(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = match admit_as(
        &shared,
        &req,
        XOp::ListWebhooks,
        FaultOp::Webhooks,
        Accept::APP,
    )
    .await
    {
        Err(reply) => reply,
        Ok((_, rate)) => {
            let hooks: Vec<Value> = lock(&shared.x).webhooks.iter().map(webhook_json).collect();
            let count = hooks.len();
            XReply::new(
                StatusCode::OK,
                json!({"data": hooks, "meta": {"result_count": count}}),
                rate,
            )
        }
    };
    finish(&shared, XOp::ListWebhooks, &req, reply)
}

async fn validate(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = validate_reply(&shared, &req, &id).await;
    finish(&shared, XOp::ValidateWebhook, &req, reply)
}

async fn validate_reply(shared: &Shared, req: &XRequest, id: &str) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::ValidateWebhook,
        FaultOp::Webhooks,
        Accept::APP_OR_OAUTH1,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let Some(url) = lock(&shared.x).webhook(id).map(|w| w.url.clone()) else {
        return unknown_webhook(id, rate);
    };
    let valid = webhook_client::fresh_crc(shared, &url)
        .await
        .is_ok_and(|o| o.ok);
    if let Some(hook) = lock(&shared.x).webhooks.iter_mut().find(|w| w.id == id) {
        hook.valid = valid;
    }
    XReply::new(StatusCode::OK, json!({"data": {"valid": valid}}), rate)
}

async fn remove(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = match admit_as(
        &shared,
        &req,
        XOp::DeleteWebhook,
        FaultOp::Webhooks,
        Accept::APP_OR_OAUTH1,
    )
    .await
    {
        Err(reply) => reply,
        Ok((_, rate)) => {
            let mut x = lock(&shared.x);
            let before = x.webhooks.len();
            x.webhooks.retain(|w| w.id != id);
            if x.webhooks.len() == before {
                unknown_webhook(&id, rate)
            } else {
                x.recheck_webhooks.remove(&id);
                for sub in &mut x.subscriptions {
                    if sub.webhook_id.as_deref() == Some(id.as_str()) {
                        sub.webhook_id = None;
                    }
                }
                x.aaa_subscriptions.retain(|(w, _)| *w != id);
                XReply::new(StatusCode::OK, json!({"data": {"deleted": true}}), rate)
            }
        }
    };
    finish(&shared, XOp::DeleteWebhook, &req, reply)
}

/// What a correctly set-up bridge would have (`SandboxHandle::set_webhook`): `url` registered as
/// the app's webhook (replacing others; their subscriptions follow it) and validated by CRC, and
/// the business account subscribed to `dm.received`, `dm.read` and `dm.indicate_typing` with it
/// (with `account_activity_api`: an Account Activity subscription instead).
pub(crate) async fn set_webhook(shared: &Shared, url: &str) -> Result<CrcOutcome, SandboxError> {
    let outcome = webhook_client::fresh_crc(shared, url).await?;
    let mut x = lock(&shared.x);
    register(shared, &mut x, url, outcome.ok);
    Ok(outcome)
}

/// The registration half of [`set_webhook`] (also used for `XConfig::webhook_url` at start, with
/// `valid: false` so that the first delivery runs the CRC).
pub(crate) fn register(shared: &Shared, x: &mut XState, url: &str, valid: bool) {
    let business = shared.cfg.x.business.id.clone();
    let id = match x.webhooks.iter().position(|w| w.url == url) {
        Some(at) => x.webhooks[at].id.clone(),
        None => shared.snowflake.next(),
    };
    x.webhooks.retain(|w| w.id == id);
    if x.webhooks.is_empty() {
        x.webhooks.push(WebhookRegistration {
            id: id.clone(),
            url: url.to_owned(),
            valid,
            created_at: clock::now_iso_ms(),
            outage: false,
        });
    } else if let Some(hook) = x.webhooks.first_mut() {
        hook.valid = valid;
    }
    x.recheck_webhooks.insert(id.clone());
    for sub in &mut x.subscriptions {
        if sub.webhook_id.is_some() {
            sub.webhook_id = Some(id.clone());
        }
    }
    for (hook, _) in &mut x.aaa_subscriptions {
        hook.clone_from(&id);
    }
    if shared.cfg.x.account_activity_api {
        if !x.aaa_subscriptions.iter().any(|(_, u)| *u == business) {
            x.aaa_subscriptions.push((id, business));
        }
        return;
    }
    for event_type in ["dm.received", "dm.read", "dm.indicate_typing"] {
        let exists = x.subscriptions.iter().any(|s| {
            s.event_type == event_type
                && s.filter.user_id.as_deref() == Some(business.as_str())
                && s.webhook_id.as_deref() == Some(id.as_str())
        });
        if !exists {
            x.subscriptions.push(ActivitySubscription::new(
                shared.snowflake.next(),
                event_type.to_owned(),
                SubscriptionFilter::user(&business),
                None,
                Some(id.clone()),
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_like_x_plus_loopback() {
        assert_eq!(url_problem("https://bridge.example.com/webhooks/x"), None);
        assert!(url_problem("https://bridge.example.com:8443/webhooks/x").is_some());
        assert!(url_problem("http://bridge.example.com/webhooks/x").is_some());
        assert_eq!(url_problem("http://127.0.0.1:8080/webhooks/x"), None);
        assert_eq!(url_problem("http://localhost:8080/webhooks/x"), None);
        assert!(url_problem(&format!("https://e.com/{}", "a".repeat(200))).is_some());
        assert!(url_problem("not a url").is_some());
    }
}
