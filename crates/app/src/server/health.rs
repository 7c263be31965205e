//! `GET /healthz` (the public listener: its status only; the admin listener: with the reasons
//! and the stream's state) and `GET /metrics` (the admin listener).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;

use super::reject::reject;
use super::state::AppState;
use crate::monitoring::allocations;
use crate::x_events::stream::StreamState;

/// The public `/healthz`: 200 `{"status":"ok"}` when the bridge can deliver in both directions
/// and its store answers, else 503 `{"status":"degraded"}`. The reasons name settings, accounts
/// and the stream: they are for the operator, on the admin listener ([`healthz_details`]).
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let health = check(&state).await;
    if health.problems.is_empty() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded"})),
        )
            .into_response()
    }
}

/// The admin `/healthz`: as [`healthz`], with the reasons (a setting missing, an OAuth 2.0
/// account that must log in again, the activity stream down) and the stream's state.
pub async fn healthz_details(State(state): State<Arc<AppState>>) -> Response {
    let (healthy, body) = details(&state).await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The admin `/healthz`'s body (the operator page shows it too), and whether all is well.
pub(super) async fn details(state: &AppState) -> (bool, serde_json::Value) {
    let Health { problems, stream } = check(state).await;
    if problems.is_empty() {
        (true, json!({"status": "ok", "stream": stream}))
    } else {
        (
            false,
            json!({"status": "degraded", "problems": problems, "stream": stream}),
        )
    }
}

/// What `/healthz` found.
struct Health {
    /// Empty when healthy.
    problems: Vec<String>,
    /// The activity stream's state, in stream delivery.
    stream: Option<StreamState>,
}

async fn check(state: &AppState) -> Health {
    let mut problems: Vec<String> = state
        .missing
        .iter()
        .map(|s| format!("{s} is not set"))
        .collect();
    if let Some(tokens) = &state.tokens {
        match tokens.status().await {
            Ok(statuses) => {
                for s in statuses {
                    if let Some(reason) = &s.needs_login {
                        problems.push(format!(
                            "X account {} cannot be used ({reason}): run `xdm-connect x login`",
                            s.business
                        ));
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let stream = state.stream.as_ref().map(|h| h.state());
    if let Some(s) = &stream
        && !matches!(
            s,
            StreamState::Connected { .. } | StreamState::CatchingUp { .. }
        )
    {
        problems.push("the X activity stream is not connected".to_owned());
    }
    if let Err(e) = state
        .bridge
        .store()
        .jobs(JobQueue::Inbound, Some(JobState::Failed), 1)
        .await
    {
        problems.push(e.to_string());
    }
    Health { problems, stream }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => {
            // Counted in the allocator, not by the recorder: read now.
            allocations::record();
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => reject(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        ),
    }
}
