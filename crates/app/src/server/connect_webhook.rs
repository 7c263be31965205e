//! `POST /webhooks/connect`: the SNS HTTP(S) subscription Amazon Connect streams chat items to.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use xdm_amazon_connect::sns::{
    ConfirmError, SnsMessage, SnsMessageType, VerifyError, chat_item_from_notification,
};
use xdm_core::ItemAcceptance;

use super::reject::{refuse, reject, unread_body};
use super::state::AppState;
use crate::monitoring::webhooks::{self, Handled, Refusal, Source};

pub async fn sns(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return unread_body(Source::Connect, e),
    };
    let Some(verifier) = &state.sns else {
        webhooks::refused(Source::Connect, Refusal::NotConfigured);
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "XDM_CONNECT_TOPIC_ARN is not set: SNS messages are refused",
        );
    };
    let msg = match SnsMessage::from_http_body(&body) {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                Source::Connect,
                Refusal::Malformed,
                "sns_malformed",
                "SNS request refused: not an SNS message",
                StatusCode::BAD_REQUEST,
                &e,
            );
        }
    };
    if msg.message_type == SnsMessageType::SubscriptionConfirmation {
        return match verifier.confirm_subscription(&msg).await {
            Ok(()) => {
                tracing::info!(topic = %msg.topic_arn, "SNS subscription confirmed");
                webhooks::handled(Source::Connect, Handled::Confirmed);
                Json(json!({"confirmed": true})).into_response()
            }
            Err(e) => refuse(
                Source::Connect,
                webhooks::confirmation_refusal(&e),
                match &e {
                    ConfirmError::Verify(v) => log_key(v),
                    _ => "sns_confirmation",
                },
                "SNS subscription confirmation refused",
                if e.is_retryable() {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::FORBIDDEN
                },
                &e,
            ),
        };
    }
    if let Err(e) = verifier.verify(&msg).await {
        // 502 when the certificate could not be fetched (SNS retries); else a 4xx: a replayed
        // message (not recent) is refused like a forged one, and nothing is stored.
        let status = match &e {
            _ if e.is_retryable() => StatusCode::BAD_GATEWAY,
            VerifyError::ForeignTopic { .. } | VerifyError::NotFresh(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return refuse(
            Source::Connect,
            webhooks::sns_refusal(&e),
            log_key(&e),
            "SNS message refused",
            status,
            &e,
        );
    }
    match msg.message_type {
        SnsMessageType::Notification => {}
        other => {
            tracing::warn!(kind = other.as_str(), topic = %msg.topic_arn, "SNS says the subscription changed");
            webhooks::handled(Source::Connect, Handled::Ignored);
            return Json(json!({"ok": true})).into_response();
        }
    }
    let item = match chat_item_from_notification(&msg) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(error = %e, message_id = %msg.message_id, "SNS notification is not a chat item");
            webhooks::refused(Source::Connect, Refusal::Malformed);
            return reject(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match state.bridge.accept_chat_item(item).await {
        Ok(outcome) => {
            webhooks::handled(Source::Connect, webhooks::chat_item_result(outcome));
            Json(json!({"result": match outcome {
                ItemAcceptance::Accepted => "accepted",
                ItemAcceptance::Duplicate => "duplicate",
                ItemAcceptance::Filtered => "filtered",
            }}))
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not persist a chat item");
            webhooks::refused(Source::Connect, Refusal::StoreUnavailable);
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; deliver again later",
            )
        }
    }
}

/// What the log limiter counts a verification failure as (one budget of lines per kind).
fn log_key(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::ForeignTopic { .. } => "sns_foreign_topic",
        VerifyError::UntrustedCertUrl { .. } => "sns_untrusted_cert_url",
        VerifyError::CertFetch { .. } | VerifyError::BadCertificate { .. } => "sns_certificate",
        VerifyError::NotFresh(_) => "sns_stale",
        VerifyError::SignatureVersionRefused | VerifyError::UnsupportedVersion(_) => {
            "sns_signature_version"
        }
        VerifyError::BadSignature => "sns_signature",
    }
}
