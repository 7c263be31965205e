//! `GET /healthz` and `GET /metrics`.

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
use crate::x_events::stream::StreamState;

/// 200 when the bridge can deliver in both directions and its store answers; 503 with the
/// reasons otherwise (a setting missing, an OAuth 2.0 account that must log in again, the
/// activity stream down).
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
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
    if problems.is_empty() {
        Json(json!({"status": "ok", "stream": stream})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "problems": problems, "stream": stream})),
        )
            .into_response()
    }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => reject(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        ),
    }
}
