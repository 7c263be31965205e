//! The shape of every control call (`/_sandbox/…`): JSON bodies in, JSON answers out, failures as
//! `{"error": "…"}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::SandboxError;

/// A control call's failure, as `{"error": "…"}` with its status.
#[derive(Debug)]
pub(crate) struct ControlError(pub StatusCode, pub String);

impl ControlError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<SandboxError> for ControlError {
    fn from(err: SandboxError) -> Self {
        let status = match &err {
            SandboxError::UnknownContact(_)
            | SandboxError::UnknownSubscription(_)
            | SandboxError::UnknownMessage(_)
            | SandboxError::UnknownFile(_) => StatusCode::NOT_FOUND,
            SandboxError::Invalid { .. } | SandboxError::FilterPolicy(_) => StatusCode::BAD_REQUEST,
            SandboxError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            SandboxError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            SandboxError::NoWebhook
            | SandboxError::WebhookInvalid { .. }
            | SandboxError::ContactEnded(_)
            | SandboxError::CustomerNotConnected(_)
            | SandboxError::NoAgent(_)
            | SandboxError::AgentAlreadyJoined(_)
            | SandboxError::SupervisorAlreadyJoined(_)
            | SandboxError::NoSupervisor(_)
            | SandboxError::ReceiptsRefused(_) => StatusCode::CONFLICT,
            SandboxError::Bind { .. } | SandboxError::Crypto(_) | SandboxError::HttpClient(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self(status, err.to_string())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

/// What a control handler answers.
pub(crate) type Reply = Result<Response, ControlError>;

/// 200 with `value` as JSON.
pub(crate) fn ok<T: Serialize>(value: T) -> Reply {
    Ok(axum::Json(value).into_response())
}

/// `status` with `value` as JSON (e.g. 201 for what a call created).
pub(crate) fn with_status<T: Serialize>(status: StatusCode, value: T) -> Reply {
    Ok((status, axum::Json(value)).into_response())
}

/// The JSON body; an empty one counts as `{}`.
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ControlError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    json_body(bytes)
}

/// The JSON body as it is (an empty one is not JSON).
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ControlError::bad_request(format!("invalid JSON body: {e}")))
}
