//! `GET /webhooks/x` (CRC) and `POST /webhooks/x` (events).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::log_limit::REFUSALS;
use super::reject::{refuse, reject, unread_body};
use super::state::AppState;
use crate::monitoring::webhooks::{self, Handled, Refusal, Source};

/// Answers X's challenge-response check. Needs only the app's secrets (the OAuth 2.0 client
/// secret, or the consumer secret; `XDM_X_CRC_KEY`), so it works even when the rest of the
/// configuration is incomplete.
pub async fn crc(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let Some(secrets) = &state.webhook_secrets else {
        webhooks::refused(Source::X, Refusal::NotConfigured);
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "neither XDM_X_CLIENT_SECRET nor XDM_X_CONSUMER_SECRET is set: cannot answer the CRC",
        );
    };
    let Some(token) = crc_token(query.as_deref().unwrap_or("")) else {
        webhooks::refused(Source::X, Refusal::Malformed);
        return reject(
            StatusCode::BAD_REQUEST,
            "missing or undecodable crc_token query parameter",
        );
    };
    match xdm_x::webhook::crc_answer(secrets, &token) {
        Ok(answer) => {
            tracing::info!("answered an X CRC challenge");
            webhooks::handled(Source::X, Handled::Crc);
            Json(answer).into_response()
        }
        Err(e) if e.is_configuration() => {
            tracing::error!(error = %e, "cannot answer X's CRC");
            webhooks::refused(Source::X, Refusal::NotConfigured);
            reject(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => {
            webhooks::refused(Source::X, Refusal::Malformed);
            reject(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// Verifies, parses and persists a webhook delivery, then answers 200. Delivery to Connect
/// happens afterwards, in order per customer.
pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return unread_body(Source::X, e),
    };
    let Some(secrets) = &state.webhook_secrets else {
        webhooks::refused(Source::X, Refusal::NotConfigured);
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "neither XDM_X_CLIENT_SECRET nor XDM_X_CONSUMER_SECRET is set: cannot verify X webhooks",
        );
    };
    if let Err(e) = xdm_x::webhook::verify_delivery(secrets, &headers, &body) {
        if e.is_configuration() {
            tracing::error!(error = %e, "cannot verify X webhooks");
            webhooks::refused(Source::X, Refusal::NotConfigured);
            return reject(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        return refuse(
            Source::X,
            Refusal::BadSignature,
            "x_signature",
            "X webhook refused: bad signature",
            StatusCode::UNAUTHORIZED,
            &e,
        );
    }
    let batch = match xdm_x::payload::parse_delivery(&body) {
        Ok(parsed) => parsed.batch,
        Err(e) => {
            return refuse(
                Source::X,
                Refusal::Malformed,
                "x_malformed",
                "X webhook refused: malformed body",
                StatusCode::BAD_REQUEST,
                &e,
            );
        }
    };
    let newest = crate::x_events::seen::newest_per_account(&batch);
    match state.bridge.accept_inbound(batch).await {
        Ok(report) => {
            webhooks::handled(Source::X, webhooks::x_delivery_result(&report));
            if report.stale > 0 && REFUSALS.admit("x_stale") {
                // Signed by X, but older than the age bound: a replayed delivery. Answered 200
                // so that X does not retry it; anyone holding a captured one may send it again,
                // hence the limit on lines.
                tracing::warn!(
                    stale = report.stale,
                    "X webhook: DMs older than XDM_X_MAX_EVENT_AGE_HOURS acknowledged, not delivered (a replay?)"
                );
            }
            if let Some(seen) = &state.seen {
                seen.note(&newest);
            }
            if let Some(trigger) = &state.inbound_trigger {
                // The events are stored: if the wake-up fails, the periodic sweep delivers them.
                trigger.notify(&report.lanes).await;
            }
            Json(Answer {
                accepted: report.accepted,
                duplicates: report.duplicates,
                echoes: report.echoes,
                ignored: report.ignored,
                reads: report.reads,
                stale: report.stale,
                typing: report.typing,
            })
            .into_response()
        }
        Err(e) => {
            // Not persisted: X must deliver again.
            tracing::error!(error = %e, "could not persist an X delivery");
            webhooks::refused(Source::X, Refusal::StoreUnavailable);
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; deliver again later",
            )
        }
    }
}

/// The body of the 200 answer to a delivery: what became of its events. A struct, not a
/// `json!` map: the answer of every acknowledgement is written straight, without building a tree
/// of allocated keys first. Its members in the order the map had (alphabetical).
#[derive(serde::Serialize)]
struct Answer {
    accepted: usize,
    duplicates: usize,
    echoes: usize,
    ignored: usize,
    reads: usize,
    stale: usize,
    typing: usize,
}

/// The `crc_token` query parameter, percent-decoded only: a base64 token may carry a literal
/// `+`, which form decoding would turn into a space.
fn crc_token(query: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("crc_token="))?;
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|t| t.into_owned())
}

#[cfg(test)]
mod tests {
    use super::crc_token;

    #[test]
    fn crc_token_keeps_plus_and_decodes_percent() {
        assert_eq!(
            crc_token("crc_token=ab+c%2Bd%3D&nonce=x").as_deref(),
            Some("ab+c+d=")
        );
        assert_eq!(crc_token("nonce=1&crc_token=M2Rk").as_deref(), Some("M2Rk"));
        assert_eq!(crc_token("nonce=1"), None);
    }
}
