//! SendMessage and SendEvent, the participant API's two calls on the hot path (one per message
//! the customer writes, one per typing or read event), sent with reqwest instead of
//! `aws-sdk-connectparticipant` (docs/protocols.md B0, B2: `POST /participant/message` and
//! `POST /participant/event`, authenticated by the `X-Amz-Bearer` connection token alone).
//!
//! Why they bypass the SDK: its orchestrator costs more per call than the call itself, and none
//! of it buys anything here — a config bag and a chain of interceptors, a user agent, retry
//! scaffolding, an identity cache and a SigV4 signature of a request the service authenticates
//! by the bearer token. Measured with `cargo bench -p xdm-amazon-connect --bench send_message`
//! (one SendMessage to a loopback stand-in answering a fixed 200; release build, 2-vCPU VM,
//! 2026-12-05, three runs of three alternating rounds), the client's own CPU per call:
//!
//! | client | CPU per call | wall per call |
//! |---|---|---|
//! | `aws-sdk-connectparticipant` as the bridge configured it | 71–75 µs | 104–126 µs |
//! | the SDK as lean as its configuration goes (no retries, no stalled-stream protection, no identity cache, no-auth scheme: unsigned) | 56–59 µs | 87–92 µs |
//! | this client (reqwest) | **29 µs** | 60–66 µs |
//!
//! The lean SDK still costs ~28 µs more than a plain request, so the call is a JSON body and
//! a header here. The answer is classified by the same code as every other Connect call
//! ([`crate::errors::classify`] for [`Plane::Participant`]: `AccessDeniedException` ⇒ the chat is
//! over, throttling, validation, 5xx, timeouts). The other participant calls (connection,
//! disconnect, attachments) are rare and stay on the SDK ([`crate::participant_client`]).
//!
//! No retries inside the call: a failed send is the job engine's to retry, with its backoff and
//! the same `ClientToken`, which Connect deduplicates (the SDK's three attempts only hid failures
//! from the engine and its metrics).

use std::time::Duration;

use aws_config::SdkConfig;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use xdm_core::ids::ConnectionToken;
use xdm_core::ports::ConnectError;

use crate::config::{ConfigError, settings, validate_endpoint};
use crate::endpoints::resolve_participant_endpoint;
use crate::errors::Plane;
use crate::participant_client::iso8601_to_ms;
use crate::rest_json::{exchange, http_client};

/// What SendMessage returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The chat item id Connect gave the message (it comes back in the SNS stream).
    pub id: Option<String>,
    /// `AbsoluteTime` in ms since the epoch, when Connect said.
    pub absolute_time_ms: Option<i64>,
}

/// `POST /participant/message` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBody<'a> {
    content_type: &'a str,
    content: &'a str,
    client_token: &'a str,
}

/// `POST /participant/event` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendEventBody<'a> {
    content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    client_token: &'a str,
}

/// The answer of both calls (`MessageMetadata` of SendMessage is not used).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendAnswer {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    absolute_time: Option<String>,
}

/// SendMessage and SendEvent over reqwest. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ParticipantSendClient {
    http: reqwest::Client,
    /// Endpoint without a trailing slash.
    endpoint: String,
    message_url: reqwest::Url,
    event_url: reqwest::Url,
}

impl ParticipantSendClient {
    /// Builds the client once: the endpoint resolved as for the SDK's participant client
    /// ([`resolve_participant_endpoint`]: `endpoint_override`,
    /// `AWS_ENDPOINT_URL_CONNECTPARTICIPANT`, `AWS_ENDPOINT_URL`, the `SdkConfig` endpoint, the
    /// regional one), `timeout` for each whole call. `env` is the environment lookup.
    pub fn with_env(
        sdk: &SdkConfig,
        endpoint_override: Option<&str>,
        timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let region = crate::endpoints::sdk_region(sdk)?;
        let endpoint =
            resolve_participant_endpoint(endpoint_override, sdk.endpoint_url(), &region, env);
        validate_endpoint(settings::ENDPOINT_PARTICIPANT, &endpoint)?;
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let url = |path: &str| {
            validate_endpoint(settings::ENDPOINT_PARTICIPANT, &format!("{endpoint}{path}"))
        };
        Ok(Self {
            http: http_client(timeout)?,
            message_url: url("/participant/message")?,
            event_url: url("/participant/event")?,
            endpoint,
        })
    }

    /// The resolved endpoint (scheme, host, optional port and base path).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `SendMessage`: `content` of `content_type` (`text/plain`, `text/markdown`, …) into the
    /// chat of `connection`. A retry with the same `client_token` is answered with the first
    /// message's result and adds nothing to the chat.
    pub async fn send_message(
        &self,
        connection: &ConnectionToken,
        content_type: &str,
        content: &str,
        client_token: &str,
    ) -> Result<SentMessage, ConnectError> {
        const OP: &str = "SendMessage";
        let body = SendMessageBody {
            content_type,
            content,
            client_token,
        };
        let answer = self.post(OP, &self.message_url, connection, &body).await?;
        tracing::debug!(
            id = answer.id.as_deref().unwrap_or("-"),
            "message sent to the chat"
        );
        Ok(SentMessage {
            absolute_time_ms: answer.absolute_time.as_deref().and_then(iso8601_to_ms),
            id: answer.id,
        })
    }

    /// `SendEvent`: an event of `content_type` (typing, `message.delivered`, `message.read` with
    /// `{"messageId":"…"}` as `content`) into the chat of `connection`; the event's chat item
    /// id, when Connect answers one. `client_token` deduplicates retries as for SendMessage.
    pub async fn send_event(
        &self,
        connection: &ConnectionToken,
        content_type: &str,
        content: Option<&str>,
        client_token: &str,
    ) -> Result<Option<String>, ConnectError> {
        const OP: &str = "SendEvent";
        let body = SendEventBody {
            content_type,
            content,
            client_token,
        };
        let answer = self.post(OP, &self.event_url, connection, &body).await?;
        tracing::debug!(
            id = answer.id.as_deref().unwrap_or("-"),
            content_type,
            "event sent to the chat"
        );
        Ok(answer.id)
    }

    async fn post<B: Serialize>(
        &self,
        op: &'static str,
        url: &reqwest::Url,
        connection: &ConnectionToken,
        body: &B,
    ) -> Result<SendAnswer, ConnectError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ConnectError::Invalid(format!("{op}: could not encode the body: {e}")))?;
        let mut bearer = HeaderValue::from_str(connection.expose()).map_err(|_| {
            ConnectError::Invalid(format!(
                "{op}: the connection token is not a valid header value"
            ))
        })?;
        bearer.set_sensitive(true);
        let mut request = reqwest::Request::new(reqwest::Method::POST, url.clone());
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HeaderName::from_static("x-amz-bearer"), bearer);
        *request.body_mut() = Some(body.into());
        exchange(&self.http, Plane::Participant, op, request)
            .await
            .map_err(|failed| failed.err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_pascal_case() {
        let message = SendMessageBody {
            content_type: "text/plain",
            content: "hola",
            client_token: "t-1",
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({"ContentType": "text/plain", "Content": "hola", "ClientToken": "t-1"})
        );
        let typing = SendEventBody {
            content_type: "application/vnd.amazonaws.connect.event.typing",
            content: None,
            client_token: "t-2",
        };
        assert_eq!(
            serde_json::to_value(&typing).unwrap(),
            serde_json::json!({
                "ContentType": "application/vnd.amazonaws.connect.event.typing",
                "ClientToken": "t-2"
            })
        );
    }

    #[test]
    fn answers_may_lack_fields() {
        let a: SendAnswer = serde_json::from_str(
            r#"{"Id":"m-1","AbsoluteTime":"2026-04-01T22:20:13.466Z","MessageMetadata":{"MessageProcessingStatus":"PROCESSING"}}"#,
        )
        .unwrap();
        assert_eq!(a.id.as_deref(), Some("m-1"));
        let a: SendAnswer = serde_json::from_str("{}").unwrap();
        assert!(a.id.is_none() && a.absolute_time.is_none());
    }
}
