//! The sandbox acting as X towards the bridge's webhook: CRC checks and signed event POSTs
//! (docs/protocols.md A1.1–A1.3) to a registered, valid webhook, each recorded. Deliveries are not
//! retried: tests decide about retries (and replays).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock;
use crate::config::SignatureHeaders;
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::records::{
    CrcOutcome, DeliveredMedia, DeliveryKind, WebhookDelivery, WebhookRegistration,
};

/// The header X signs event POSTs with (its capitalisation in a real capture), keyed with the
/// consumer secret.
pub const SIGNATURE_HEADER: &str = "X-Twitter-Webhooks-Signature";
/// The same signature keyed with the OAuth 2.0 client secret (webhooks v2).
pub const SIGNATURE_HEADER_OAUTH2: &str = "X-Twitter-Webhooks-Signature-OAuth2";

/// Which `x-twitter-webhooks-signature` a raw delivery carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureHeader {
    /// The correct signature of the body.
    #[default]
    Valid,
    /// This exact header value.
    Custom(String),
    /// No signature header at all.
    Omit,
}

fn hmac_sha256_b64(key: &str, msg: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `sha256=<base64(HMAC-SHA256(consumer_secret, crc_token))>`.
pub fn crc_response_token(consumer_secret: &str, crc_token: &str) -> String {
    format!(
        "sha256={}",
        hmac_sha256_b64(consumer_secret, crc_token.as_bytes())
    )
}

/// `sha256=<base64(HMAC-SHA256(consumer_secret, raw_body))>`.
pub fn webhook_signature(consumer_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_b64(consumer_secret, body))
}

/// A token like X's: base64 of a UUID.
fn new_crc_token() -> String {
    STANDARD.encode(ids::uuid())
}

fn timeout(shared: &Shared) -> Duration {
    Duration::from_millis(shared.cfg.x.webhook_timeout_ms)
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        format!("connection failed: {err}")
    } else {
        err.to_string()
    }
}

/// `GET url?crc_token=…&nonce=…` and the check of its answer (keyed with
/// [`crate::XConfig::crc_key`]). Does not change any registration.
pub(crate) async fn crc_check(
    shared: &Shared,
    url: &str,
    crc_token: &str,
) -> Result<CrcOutcome, SandboxError> {
    let mut target =
        url::Url::parse(url).map_err(|e| SandboxError::invalid("webhook URL", e.to_string()))?;
    let nonce = STANDARD.encode(clock::now_unix_ms().to_string());
    target
        .query_pairs_mut()
        .append_pair("crc_token", crc_token)
        .append_pair("nonce", &nonce);
    let expected = crc_response_token(shared.cfg.x.crc_key(), crc_token);
    let mut outcome = CrcOutcome {
        url: url.to_owned(),
        crc_token: crc_token.to_owned(),
        status: None,
        body: None,
        expected_response_token: expected.clone(),
        ok: false,
        error: None,
    };
    match shared
        .http
        .get(target)
        .timeout(timeout(shared))
        .send()
        .await
    {
        Err(e) => outcome.error = Some(describe(&e)),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let body = resp.text().await.unwrap_or_default();
            let token = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("response_token")
                        .and_then(|t| t.as_str())
                        .map(str::to_owned)
                });
            outcome.error = if status != 200 {
                Some(format!("answered {status}, expected 200"))
            } else if !content_type.starts_with("application/json") {
                Some(format!(
                    "Content-Type is `{content_type}`, expected application/json"
                ))
            } else if token.is_none() {
                Some("the body has no JSON response_token".to_owned())
            } else if token.as_deref() != Some(expected.as_str()) {
                Some("wrong response_token".to_owned())
            } else {
                None
            };
            outcome.ok = outcome.error.is_none();
            outcome.status = Some(status);
            outcome.body = Some(body);
        }
    }
    shared.events.emit(SandboxEvent::WebhookCrc {
        url: url.to_owned(),
        ok: outcome.ok,
        status: outcome.status,
    });
    Ok(outcome)
}

/// A CRC with a fresh token, like X's registration and periodic checks.
pub(crate) async fn fresh_crc(shared: &Shared, url: &str) -> Result<CrcOutcome, SandboxError> {
    crc_check(shared, url, &new_crc_token()).await
}

/// The webhook `id`, valid: an invalid one registered by `set_webhook` or the configuration is
/// re-checked by CRC first, like X's periodic CRC.
async fn valid_webhook(shared: &Shared, id: &str) -> Result<WebhookRegistration, SandboxError> {
    let (registration, recheck) = {
        let x = lock(&shared.x);
        let registration = x.webhook(id).cloned().ok_or(SandboxError::NoWebhook)?;
        (registration, x.recheck_webhooks.contains(id))
    };
    if registration.valid {
        return Ok(registration);
    }
    if !recheck {
        return Err(SandboxError::WebhookInvalid {
            url: registration.url,
        });
    }
    let outcome = fresh_crc(shared, &registration.url).await?;
    if let Some(hook) = lock(&shared.x).webhooks.iter_mut().find(|w| w.id == id) {
        hook.valid = outcome.ok;
    }
    if outcome.ok {
        Ok(WebhookRegistration {
            valid: true,
            ..registration
        })
    } else {
        Err(SandboxError::WebhookInvalid {
            url: registration.url,
        })
    }
}

/// The signature headers of an event POST: (`x-twitter-webhooks-signature`,
/// `x-twitter-webhooks-signature-oauth2`).
fn signatures(
    shared: &Shared,
    payload: &[u8],
    signature: SignatureHeader,
) -> (Option<String>, Option<String>) {
    let x = &shared.cfg.x;
    match signature {
        SignatureHeader::Valid => {
            let legacy = || Some(webhook_signature(&x.consumer_secret, payload));
            let oauth2 = || Some(webhook_signature(&x.client_secret, payload));
            match x.signature_headers {
                SignatureHeaders::Both => (legacy(), oauth2()),
                SignatureHeaders::Legacy => (legacy(), None),
                SignatureHeaders::OAuth2 => (None, oauth2()),
            }
        }
        SignatureHeader::Custom(value) => (Some(value), None),
        SignatureHeader::Omit => (None, None),
    }
}

/// One signed POST of `payload` to the webhook `webhook_id` (validated first), recorded.
pub(crate) async fn post_to(
    shared: &Shared,
    webhook_id: &str,
    kind: DeliveryKind,
    event_id: Option<String>,
    payload: Vec<u8>,
    signature: SignatureHeader,
    media: Option<DeliveredMedia>,
) -> Result<WebhookDelivery, SandboxError> {
    let hook = valid_webhook(shared, webhook_id).await?;
    let (signature, signature_oauth2) = signatures(shared, &payload, signature);
    let started = std::time::Instant::now();
    let (status, response_body, error) = if hook.outage {
        (
            None,
            String::new(),
            Some("webhook outage (sandbox control): not sent".to_owned()),
        )
    } else {
        let mut request = shared
            .http
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout(shared))
            .body(payload.clone());
        if let Some(value) = &signature {
            request = request.header(SIGNATURE_HEADER, value);
        }
        if let Some(value) = &signature_oauth2 {
            request = request.header(SIGNATURE_HEADER_OAUTH2, value);
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (Some(status), resp.text().await.unwrap_or_default(), None)
            }
            Err(e) => (None, String::new(), Some(describe(&e))),
        }
    };
    let delivery = WebhookDelivery {
        kind,
        event_id: event_id.clone(),
        url: hook.url,
        payload: String::from_utf8_lossy(&payload).into_owned(),
        signature,
        signature_oauth2,
        status,
        response_body,
        error,
        media,
        at: clock::now_iso_ms(),
        stream_connections: 0,
    };
    lock(&shared.x).deliveries.push(delivery.clone());
    shared.events.emit(SandboxEvent::WebhookDelivered {
        event_id,
        kind,
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    Ok(delivery)
}

/// POSTs `payload` as-is to the app's first webhook (`deliver_raw`).
pub(crate) async fn deliver(
    shared: &Shared,
    kind: DeliveryKind,
    event_id: Option<String>,
    payload: Vec<u8>,
    signature: SignatureHeader,
) -> Result<WebhookDelivery, SandboxError> {
    let id = lock(&shared.x)
        .webhooks
        .first()
        .map(|w| w.id.clone())
        .ok_or(SandboxError::NoWebhook)?;
    post_to(shared, &id, kind, event_id, payload, signature, None).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DOC_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";

    /// docs/protocols.md A1.1 CRC vector.
    #[test]
    fn crc_vector() {
        assert_eq!(
            crc_response_token(
                DOC_SECRET,
                "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0"
            ),
            "sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="
        );
    }

    /// docs/protocols.md A1.2 signature vectors (the short body and the 1,570-byte real body).
    #[test]
    fn signature_vectors() {
        assert_eq!(
            webhook_signature(
                DOC_SECRET,
                br#"{"for_user_id":"2244994945","direct_message_events":[]}"#
            ),
            "sha256=U7PvFnq32kDoO+q6JA5eD3pbWDKp3OSyqEav+2NVku4="
        );
        let real = include_bytes!("../../testdata/x-aaa-text-dm-body.json");
        assert_eq!(real.len(), 1570);
        assert_eq!(
            webhook_signature(DOC_SECRET, real),
            "sha256=kUYYH+AYCEI4dWirsu4qSGy/k/ZkAah79MxUr9rXkCQ="
        );
    }

    #[test]
    fn crc_tokens_look_like_x() {
        let token = new_crc_token();
        let decoded = String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap();
        assert!(uuid::Uuid::parse_str(&decoded).is_ok());
    }
}
