//! The operator page on the admin listener: `GET /` (the page; without a session, the login
//! form with 401), `POST /login` (`{"token": XDM_ADMIN_TOKEN}` → a session cookie),
//! `POST /api/logout`, `GET /api/overview` (health and its reasons, the inbox per queue, the
//! failed events and those waiting for a retry with their last error) and `POST /api/retry`
//! (failed events back in line, as `inbox retry` does). The page reads the same store and health
//! checks as the CLI and `/healthz`: no second source of truth.
//!
//! Sessions live in this process's memory (a restart logs everyone out) and end after
//! [`SESSION_TTL`]. The cookie is `HttpOnly; SameSite=Strict`, and every state-changing call
//! takes a JSON body, which a page on another site cannot send without the browser asking
//! first: no cross-site request reaches them. Serve the admin listener on loopback or behind
//! TLS (docs/operations.md).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use xdm_core::engine::{FailedJobs, retry_failed_jobs};
use xdm_core::jobs::{Job, JobKey, JobQueue, JobState};
use xdm_core::ports::{Clock, Store, SystemClock};

use super::admin_auth::{AdminAuth, COOKIE, SESSION_TTL};
use super::health;
use super::reject::reject;
use super::state::AppState;

const PAGE: &str = include_str!("operator_page.html");
const LOGIN: &str = include_str!("operator_login.html");

/// Events listed per queue and kind.
const LISTED: usize = 100;

/// Lanes' heads read per queue to find the events waiting for a retry.
const HEADS_READ: usize = 1_000;

/// The operator page (behind the admin listener's authentication).
pub(super) async fn page() -> Response {
    html(StatusCode::OK, PAGE)
}

/// What an unauthenticated `GET /` gets: the login form, with 401.
pub(super) fn login_form() -> Response {
    html(StatusCode::UNAUTHORIZED, LOGIN)
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct Login {
    token: String,
}

/// `POST /login`: the admin token for a session cookie.
pub(super) async fn login(State(auth): State<Arc<AdminAuth>>, Json(body): Json<Login>) -> Response {
    if !auth.token_matches(&body.token) {
        return reject(StatusCode::UNAUTHORIZED, "wrong token");
    }
    let id = auth.sessions.open();
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /api/logout`.
pub(super) async fn logout(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    auth.sessions.close(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "xdm_admin_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

/// `GET /api/overview`.
pub(super) async fn overview(State(state): State<Arc<AppState>>) -> Response {
    let (healthy, health) = health::details(&state).await;
    let store = state.bridge.store();
    let now = SystemClock.now_ms();
    let mut queues = Vec::new();
    let mut failed = Vec::new();
    let mut retrying = Vec::new();
    for queue in JobQueue::ALL {
        let backlog = match store.backlog(queue, 10_000).await {
            Ok(b) => b,
            Err(e) => return store_unavailable(&e),
        };
        queues.push(json!({
            "queue": queue.as_str(),
            "pending": backlog.pending,
            "processing": backlog.processing,
            "failed": backlog.failed,
            "oldest_open_age_ms": backlog.oldest_open_accepted_ms.map(|at| (now - at).max(0)),
        }));
        match store.jobs(queue, Some(JobState::Failed), LISTED).await {
            Ok(jobs) => failed.extend(jobs.iter().map(job_view)),
            Err(e) => return store_unavailable(&e),
        }
        // Waiting for a retry: pending with an earlier attempt's error. Such a job keeps its
        // lane's head until it is done, so the lanes' heads (one per chat or customer) hold them
        // all: no listing of every pending job by age, which the SQLite store sorts afresh on
        // each of this page's refreshes (every 2 s).
        match store.lane_heads(queue, now, HEADS_READ).await {
            Ok(heads) => retrying.extend(
                heads
                    .iter()
                    .filter(|j| j.state == JobState::Pending && j.last_error.is_some())
                    .take(LISTED)
                    .map(job_view),
            ),
            Err(e) => return store_unavailable(&e),
        }
    }
    // Per business account, the newest DM seen from X (where a catch-up would start).
    let last_dm_seen = match &state.seen {
        Some(seen) => match seen.newest().await {
            Ok(accounts) => accounts
                .into_iter()
                .map(|(account, at_ms)| json!({"account": account.as_str(), "at_ms": at_ms}))
                .collect::<Vec<_>>(),
            Err(e) => return store_unavailable(&e),
        },
        None => Vec::new(),
    };
    Json(json!({
        "healthy": healthy,
        "x_delivery": if state.stream.is_some() { "stream" } else { "webhook" },
        "last_dm_seen": last_dm_seen,
        "health": health,
        "queues": queues,
        "failed": failed,
        "retrying": retrying,
        "now_ms": now,
    }))
    .into_response()
}

/// An event as the page lists it: never its payload (message bodies stay out of the page).
fn job_view(job: &Job) -> serde_json::Value {
    json!({
        "queue": job.queue.as_str(),
        "key": job.key.as_str(),
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "last_error": job.last_error,
        "accepted_at_ms": job.accepted_at_ms,
        "updated_at_ms": job.updated_at_ms,
        "not_before_ms": job.not_before_ms,
    })
}

fn store_unavailable(e: &xdm_core::ports::StoreError) -> Response {
    reject(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the store did not answer: {e}"),
    )
}

#[derive(Deserialize)]
pub(super) struct Retry {
    /// `inbound` or `outbound`.
    queue: String,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    all_failed: bool,
}

/// `POST /api/retry`: failed events back in line (`inbox retry`), and the queue's dispatcher
/// told at once.
pub(super) async fn retry(State(state): State<Arc<AppState>>, Json(body): Json<Retry>) -> Response {
    let queue = match body.queue.as_str() {
        "inbound" => JobQueue::Inbound,
        "outbound" => JobQueue::Outbound,
        other => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("unknown queue {other:?} (inbound or outbound)"),
            );
        }
    };
    let which = if body.all_failed {
        FailedJobs::All
    } else if body.keys.is_empty() {
        return reject(
            StatusCode::BAD_REQUEST,
            "name the events to retry, or all_failed",
        );
    } else {
        match body
            .keys
            .into_iter()
            .map(JobKey::parse)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(keys) => FailedJobs::Keys(keys),
            Err(e) => return reject(StatusCode::BAD_REQUEST, format!("not an event key: {e}")),
        }
    };
    let done =
        match retry_failed_jobs(state.bridge.store(), queue, which, SystemClock.now_ms()).await {
            Ok(done) => done,
            Err(e) => return store_unavailable(&e),
        };
    if !done.retried.is_empty() {
        tracing::info!(
            queue = queue.as_str(),
            count = done.retried.len(),
            "the operator put failed events back in line"
        );
        state.bridge.wake(queue);
    }
    let keys =
        |keys: &[JobKey]| -> Vec<String> { keys.iter().map(|k| k.as_str().to_owned()).collect() };
    Json(json!({"retried": keys(&done.retried), "left_alone": keys(&done.left_alone)}))
        .into_response()
}
