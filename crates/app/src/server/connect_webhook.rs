//! `POST /webhooks/connect`: the SNS HTTP(S) subscription Amazon Connect streams chat items to.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use xdm_amazon_connect::sns::{
    SnsMessage, SnsMessageType, VerifyError, chat_item_from_notification,
};
use xdm_core::ItemAcceptance;

use super::reject::reject;
use super::state::AppState;

pub async fn sns(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(verifier) = &state.sns else {
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "XDM_CONNECT_TOPIC_ARN is not set: SNS messages are refused",
        );
    };
    let msg = match SnsMessage::from_http_body(&body) {
        Ok(m) => m,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if msg.message_type == SnsMessageType::SubscriptionConfirmation {
        return match verifier.confirm_subscription(&msg).await {
            Ok(()) => {
                tracing::info!(topic = %msg.topic_arn, "SNS subscription confirmed");
                Json(json!({"confirmed": true})).into_response()
            }
            Err(e) if e.is_retryable() => reject(StatusCode::BAD_GATEWAY, e.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, "SNS subscription confirmation refused");
                reject(StatusCode::FORBIDDEN, e.to_string())
            }
        };
    }
    if let Err(e) = verifier.verify(&msg).await {
        tracing::warn!(error = %e, "SNS message refused");
        let status = match &e {
            _ if e.is_retryable() => StatusCode::BAD_GATEWAY,
            VerifyError::ForeignTopic { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return reject(status, e.to_string());
    }
    match msg.message_type {
        SnsMessageType::Notification => {}
        other => {
            tracing::warn!(kind = other.as_str(), topic = %msg.topic_arn, "SNS says the subscription changed");
            return Json(json!({"ok": true})).into_response();
        }
    }
    let item = match chat_item_from_notification(&msg) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(error = %e, message_id = %msg.message_id, "SNS notification is not a chat item");
            return reject(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match state.bridge.accept_chat_item(item).await {
        Ok(outcome) => Json(json!({"result": match outcome {
            ItemAcceptance::Accepted => "accepted",
            ItemAcceptance::Duplicate => "duplicate",
            ItemAcceptance::Filtered => "filtered",
        }}))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not persist a chat item");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; deliver again later",
            )
        }
    }
}
