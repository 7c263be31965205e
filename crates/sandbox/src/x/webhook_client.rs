//! The sandbox acting as X towards the bridge's webhook: CRC checks and signed event POSTs
//! (PROTOCOLS.md A1.1–A1.3). Deliveries are not retried: tests decide about retries.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock;
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::ids;
use crate::state::{Shared, lock};
use crate::x::payloads::{self, Activity, DmEventParts, DmSpec, MediaKind, MediaSpec, UrlSpec};
use crate::x::records::{
    CrcOutcome, DeliveredMedia, DeliveryKind, MediaCategory, SentDm, WebhookDelivery,
    WebhookRegistration,
};
use crate::x::users::SandboxUser;

/// The header X signs event POSTs with (its capitalisation in a real capture).
pub const SIGNATURE_HEADER: &str = "X-Twitter-Webhooks-Signature";

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

/// `GET url?crc_token=…&nonce=…` and the check of its answer. Does not change the registration.
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
    let expected = crc_response_token(&shared.cfg.x.consumer_secret, crc_token);
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

/// Registers `url` as the webhook and validates it with a CRC, like `POST /2/webhooks`.
pub(crate) async fn set_webhook(shared: &Shared, url: &str) -> Result<CrcOutcome, SandboxError> {
    let outcome = crc_check(shared, url, &new_crc_token()).await?;
    lock(&shared.x).webhook = Some(WebhookRegistration {
        url: url.to_owned(),
        valid: outcome.ok,
    });
    Ok(outcome)
}

/// The webhook URL, re-validated with a CRC when the last check did not pass.
async fn valid_webhook(shared: &Shared) -> Result<String, SandboxError> {
    let registration = lock(&shared.x)
        .webhook
        .clone()
        .ok_or(SandboxError::NoWebhook)?;
    if registration.valid {
        return Ok(registration.url);
    }
    let outcome = set_webhook(shared, &registration.url).await?;
    if outcome.ok {
        Ok(registration.url)
    } else {
        Err(SandboxError::WebhookInvalid {
            url: registration.url,
        })
    }
}

/// POSTs `payload` to the (valid) webhook and records the answer.
pub(crate) async fn deliver(
    shared: &Shared,
    kind: DeliveryKind,
    event_id: Option<String>,
    payload: Vec<u8>,
    signature: SignatureHeader,
) -> Result<WebhookDelivery, SandboxError> {
    deliver_with_media(shared, kind, event_id, payload, signature, None).await
}

async fn deliver_with_media(
    shared: &Shared,
    kind: DeliveryKind,
    event_id: Option<String>,
    payload: Vec<u8>,
    signature: SignatureHeader,
    media: Option<DeliveredMedia>,
) -> Result<WebhookDelivery, SandboxError> {
    let url = valid_webhook(shared).await?;
    let signature = match signature {
        SignatureHeader::Valid => Some(webhook_signature(&shared.cfg.x.consumer_secret, &payload)),
        SignatureHeader::Custom(value) => Some(value),
        SignatureHeader::Omit => None,
    };
    let mut request = shared
        .http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout(shared))
        .body(payload.clone());
    if let Some(value) = &signature {
        request = request.header(SIGNATURE_HEADER, value);
    }
    let (status, response_body, error) = match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (Some(status), resp.text().await.unwrap_or_default(), None)
        }
        Err(e) => (None, String::new(), Some(describe(&e))),
    };
    let delivery = WebhookDelivery {
        kind,
        event_id: event_id.clone(),
        url,
        payload: String::from_utf8_lossy(&payload).into_owned(),
        signature,
        status,
        response_body,
        error,
        media,
        at: clock::now_iso_ms(),
    };
    lock(&shared.x).deliveries.push(delivery.clone());
    shared.events.emit(SandboxEvent::WebhookDelivered {
        event_id,
        kind,
        status,
    });
    Ok(delivery)
}

fn users_for(shared: &Shared, activity: &Activity) -> Vec<SandboxUser> {
    let x = lock(&shared.x);
    activity
        .user_ids()
        .iter()
        .map(|id| x.user_or_placeholder(id))
        .collect()
}

/// A customer's DM to the business account.
pub(crate) async fn deliver_dm(
    shared: &Shared,
    spec: DmSpec,
) -> Result<WebhookDelivery, SandboxError> {
    if spec.sender_id.is_empty() {
        return Err(SandboxError::invalid("DM", "sender_id is empty"));
    }
    let business = shared.cfg.x.business.id.clone();
    let event_id = spec
        .event_id
        .clone()
        .unwrap_or_else(|| shared.snowflake.next());
    let (media, delivered) = match &spec.media {
        Some(m) => {
            let (resolved, delivered) = shared.resolve_dm_media(&event_id, m)?;
            (Some(resolved), Some(delivered))
        }
        None => (None, None),
    };
    let activity = Activity::Dm {
        event: Box::new(DmEventParts {
            id: event_id.clone(),
            created_timestamp_ms: spec.created_timestamp_ms.unwrap_or_else(clock::now_unix_ms),
            sender_id: spec.sender_id.clone(),
            recipient_id: spec
                .recipient_id
                .clone()
                .unwrap_or_else(|| business.clone()),
            source_app_id: None,
            text: spec.text.clone(),
            urls: spec.urls.iter().cloned().map(UrlSpec::completed).collect(),
            media,
        }),
        app: None,
    };
    let users = spec.include_users.then(|| users_for(shared, &activity));
    let payload = payloads::render(spec.shape, &business, &activity, users.as_deref());
    deliver_with_media(
        shared,
        DeliveryKind::Dm,
        Some(event_id),
        payload,
        SignatureHeader::Valid,
        delivered,
    )
    .await
}

/// The echo X sends for a DM sent through the API (`sender_id == for_user_id`, `source_app_id`, `apps`).
pub(crate) async fn deliver_echo(shared: &Shared, dm: &SentDm) {
    if lock(&shared.x).webhook.is_none() {
        return;
    }
    let x = &shared.cfg.x;
    let media = dm.media.as_ref().and_then(|m| {
        let spec = MediaSpec {
            kind: match m.category {
                MediaCategory::DmImage => MediaKind::Photo,
                MediaCategory::DmGif => MediaKind::AnimatedGif,
                MediaCategory::DmVideo => MediaKind::Video,
            },
            media_id: Some(m.media_id.clone()),
            file_id: Some(m.file_id.clone()),
            ..MediaSpec::default()
        };
        match shared.resolve_dm_media(&dm.dm_event_id, &spec) {
            Ok((resolved, _)) => Some(resolved),
            Err(e) => {
                tracing::warn!(error = %e, "echo without its media");
                None
            }
        }
    });
    let activity = Activity::Dm {
        event: Box::new(DmEventParts {
            id: dm.dm_event_id.clone(),
            created_timestamp_ms: dm.created_timestamp_ms,
            sender_id: dm.sender_id.clone(),
            recipient_id: dm.recipient_id.clone(),
            source_app_id: Some(x.app.id.clone()),
            text: dm.text.clone().unwrap_or_default(),
            urls: Vec::new(),
            media,
        }),
        app: Some(x.app.clone()),
    };
    let users = users_for(shared, &activity);
    let payload = payloads::render(x.echo_shape, &x.business.id, &activity, Some(&users));
    if let Err(e) = deliver(
        shared,
        DeliveryKind::Echo,
        Some(dm.dm_event_id.clone()),
        payload,
        SignatureHeader::Valid,
    )
    .await
    {
        tracing::warn!(error = %e, dm_event_id = %dm.dm_event_id, "echo not delivered");
    }
}

/// `direct_message_indicate_typing_events` from `sender_id` to the business account.
pub(crate) async fn deliver_typing(
    shared: &Shared,
    sender_id: &str,
) -> Result<WebhookDelivery, SandboxError> {
    let business = shared.cfg.x.business.id.clone();
    let activity = Activity::Typing {
        sender_id: sender_id.to_owned(),
        recipient_id: business.clone(),
        created_timestamp_ms: clock::now_unix_ms(),
    };
    let users = users_for(shared, &activity);
    let payload = payloads::render(
        payloads::PayloadShape::Aaa,
        &business,
        &activity,
        Some(&users),
    );
    deliver(
        shared,
        DeliveryKind::Typing,
        None,
        payload,
        SignatureHeader::Valid,
    )
    .await
}

/// `direct_message_mark_read_events` from `sender_id` up to `last_read_event_id`.
pub(crate) async fn deliver_read(
    shared: &Shared,
    sender_id: &str,
    last_read_event_id: &str,
) -> Result<WebhookDelivery, SandboxError> {
    let business = shared.cfg.x.business.id.clone();
    let activity = Activity::Read {
        sender_id: sender_id.to_owned(),
        recipient_id: business.clone(),
        last_read_event_id: last_read_event_id.to_owned(),
        created_timestamp_ms: clock::now_unix_ms(),
    };
    let users = users_for(shared, &activity);
    let payload = payloads::render(
        payloads::PayloadShape::Aaa,
        &business,
        &activity,
        Some(&users),
    );
    deliver(
        shared,
        DeliveryKind::Read,
        None,
        payload,
        SignatureHeader::Valid,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DOC_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";

    /// PROTOCOLS.md A1.1 CRC vector.
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

    /// PROTOCOLS.md A1.2 signature vectors (the short body and the 1,570-byte real body).
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
