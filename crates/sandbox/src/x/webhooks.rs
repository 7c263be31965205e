//! Webhooks v2 (`/2/webhooks`) with a real CRC round trip, and replay jobs
//! (`POST /2/webhooks/replay`).
//!
//! * Create `{"url"}`: https without a port and at most 200 characters (an emulator also accepts
//!   `http://127.0.0.1:PORT/…` and `http://localhost:PORT/…`), not a duplicate
//!   (`DuplicateUrlFailed`), within `max_webhooks` (`WebhookLimitExceeded`), then a CRC whose
//!   `response_token` must match ([`crate::XConfig::crc_key`]), else `CrcValidationFailed`.
//! * `PUT /{id}` re-runs the CRC and sets `valid`; `DELETE /{id}` removes the webhook (its
//!   subscriptions keep no webhook); an unknown id ⇒ `WebhookIdInvalid`.
//! * Replay: `{"webhook_id","from_date","to_date"}` (`yyyymmddhhmm` UTC, inclusive minutes, within
//!   the last 24 h) ⇒ `{"data":{"job_id","created_at"}}`, then every logged event for that webhook
//!   in the window is re-POSTed, in order, signed.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{post, put};
use serde_json::{Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::{Shared, lock};
use crate::x::api::{XRequest, admit_as, finish, is_x_id};
use crate::x::auth::Accept;
use crate::x::problem::{self, XReply};
use crate::x::records::{DeliveryKind, ReplayJob, ReplayState, WebhookRegistration, XOp};
use crate::x::state::RateInfo;
use crate::x::webhook_client::{self, SignatureHeader};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2/webhooks", post(create).get(list))
        .route("/2/webhooks/replay", post(replay))
        .route("/2/webhooks/{id}", put(validate).delete(remove))
}

fn x_request(method: Method, uri: Uri, headers: HeaderMap) -> XRequest {
    XRequest {
        method,
        uri,
        headers,
        body: Bytes::new(),
    }
}

fn refused(reason: &str, message: &str, rate: RateInfo) -> XReply {
    XReply::new(
        StatusCode::BAD_REQUEST,
        problem::refusal(reason, message),
        rate,
    )
    .rejected(format!("{reason}: {message}"))
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
    let req = x_request(method, uri, headers);
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
    let req = x_request(method, uri, headers);
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
    let req = x_request(method, uri, headers);
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
        return refused(
            "WebhookIdInvalid",
            &format!("webhook {id} does not exist"),
            rate,
        );
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
    let req = x_request(method, uri, headers);
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
                refused(
                    "WebhookIdInvalid",
                    &format!("webhook {id} does not exist"),
                    rate,
                )
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

/// `yyyymmddhhmm` UTC → Unix ms of the minute's start.
fn parse_minute(s: &str) -> Option<i64> {
    if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok());
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let t = date
        .with_hms(
            u8::try_from(n(8..10)?).ok()?,
            u8::try_from(n(10..12)?).ok()?,
            0,
        )
        .ok()?
        .assume_utc();
    Some(clock::unix_ms(t))
}

async fn replay(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = x_request(method, uri, headers);
    let reply = replay_reply(&shared, &req, &body).await;
    finish(&shared, XOp::ReplayWebhook, &req, reply)
}

async fn replay_reply(shared: &Arc<Shared>, req: &XRequest, body: &[u8]) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::ReplayWebhook,
        FaultOp::Webhooks,
        Accept::APP,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let bad = |message: &str| {
        XReply::new(
            StatusCode::BAD_REQUEST,
            problem::invalid_request(vec![problem::body_error(message)]),
            rate,
        )
        .rejected(message.to_owned())
    };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return bad("$: must be a JSON object");
    };
    let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (webhook_id, from_date, to_date) =
        (field("webhook_id"), field("from_date"), field("to_date"));
    if !is_x_id(&webhook_id) {
        return bad("$.webhook_id: does not match the regex pattern ^[0-9]{1,19}$");
    }
    let (Some(from_ms), Some(to_start)) = (parse_minute(&from_date), parse_minute(&to_date)) else {
        return bad("$.from_date / $.to_date: must be yyyymmddhhmm UTC");
    };
    let to_ms = to_start + 60_000 - 1;
    let now = clock::now_unix_ms();
    if to_ms < from_ms || from_ms < now - DAY_MS {
        return refused(
            "ReplayWindowInvalid",
            "from_date must not be after to_date, and both within the last 24 hours",
            rate,
        );
    }
    if lock(&shared.x).webhook(&webhook_id).is_none() {
        return refused(
            "WebhookIdInvalid",
            &format!("webhook {webhook_id} does not exist"),
            rate,
        );
    }
    let job = ReplayJob {
        job_id: shared.snowflake.next(),
        webhook_id: webhook_id.clone(),
        from_date,
        to_date,
        state: ReplayState::Running,
        events_replayed: 0,
        events_delivered: 0,
        created_at: clock::now_iso_ms(),
    };
    let answer = json!({"data": {"job_id": job.job_id, "created_at": job.created_at}});
    lock(&shared.x).replays.push(job.clone());
    let runner = Arc::clone(shared);
    shared
        .spawn(async move { run_replay(&runner, &job.job_id, &webhook_id, from_ms, to_ms).await });
    XReply::new(StatusCode::OK, answer, rate)
}

async fn run_replay(shared: &Shared, job_id: &str, webhook_id: &str, from_ms: i64, to_ms: i64) {
    let events: Vec<(Option<String>, String)> = lock(&shared.x)
        .event_log
        .iter()
        .filter(|e| {
            e.webhook_id.as_deref() == Some(webhook_id) && e.at_ms >= from_ms && e.at_ms <= to_ms
        })
        .map(|e| (e.event_id.clone(), e.body.clone()))
        .collect();
    for (event_id, body) in events {
        let delivered = webhook_client::post_to(
            shared,
            webhook_id,
            DeliveryKind::Replay,
            event_id,
            body.into_bytes(),
            SignatureHeader::Valid,
            None,
        )
        .await
        .is_ok_and(|d| d.status.is_some_and(|s| (200..300).contains(&s)));
        if let Some(job) = lock(&shared.x)
            .replays
            .iter_mut()
            .find(|j| j.job_id == job_id)
        {
            job.events_replayed += 1;
            job.events_delivered += u64::from(delivered);
        }
    }
    if let Some(job) = lock(&shared.x)
        .replays
        .iter_mut()
        .find(|j| j.job_id == job_id)
    {
        job.state = ReplayState::Complete;
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

    #[test]
    fn replay_minutes() {
        assert_eq!(parse_minute("202612041000"), Some(1_796_378_400_000));
        assert_eq!(parse_minute("202613041000"), None);
        assert_eq!(parse_minute("2026120410"), None);
    }
}
