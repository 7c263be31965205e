//! `GET /healthz` and `GET /metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use xdm_core::jobs::{JobState, Queue};
use xdm_core::ports::Store;

use super::AppState;

/// 200 when the bridge can deliver in both directions and its store answers; 503 with the
/// reasons otherwise.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let mut problems: Vec<String> = state
        .missing
        .iter()
        .map(|s| format!("{s} is not set"))
        .collect();
    if let Err(e) = state
        .bridge
        .store()
        .jobs(Queue::Inbound, Some(JobState::Failed), 1)
        .await
    {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "problems": problems})),
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
        None => super::reject(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        ),
    }
}
