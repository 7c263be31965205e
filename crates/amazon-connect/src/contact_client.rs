//! The Amazon Connect control plane: StartChatContact, StartContactStreaming, StopContact, and
//! the two read-only calls `xdm-connect doctor` checks the configuration with (DescribeInstance,
//! DescribeContactFlow).
//!
//! Why not `aws-sdk-connect`: it generates 404 operations (663 k lines of Rust) for the three we
//! call, takes ~205 s of a single core to compile and roughly doubles the workspace's clean build
//! time (docs/architecture.md, Build cost: 395 s → 167 s debug without it). These three rest-json calls are
//! therefore typed serde bodies sent with reqwest and signed with the official `aws-sigv4` crate
//! (service `connect`), with credentials from the same `aws_config::SdkConfig` the SDK clients use.

use std::collections::BTreeMap;
use std::fmt;

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};
use xdm_core::ports::ConnectError;

use crate::config::{ConfigError, settings};
use crate::endpoints::resolve_connect_endpoint;
use crate::rest_json::Failed;
use crate::signed_client::SignedClient;

/// SigV4 signing name of the Connect control plane.
pub const SERVICE_NAME: &str = "connect";

/// Content types the bridge can handle in a chat (`text/plain` is mandatory for Connect).
pub const SUPPORTED_MESSAGING_CONTENT_TYPES: [&str; 2] = ["text/plain", "text/markdown"];

/// `ParticipantDetails` of StartChatContact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParticipantDetails {
    pub display_name: String,
}

/// `InitialMessage` / chat message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChatMessageBody {
    pub content_type: String,
    pub content: String,
}

/// `PUT /contact/chat` request body (docs/protocols.md B1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartChatContactRequest {
    pub instance_id: String,
    pub contact_flow_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    pub participant_details: ParticipantDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_message: Option<ChatMessageBody>,
    pub client_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_duration_in_minutes: Option<u32>,
    pub supported_messaging_content_types: Vec<String>,
    /// A Customer Profiles `ProfileId` (or another customer identifier); sensitive: not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_chat: Option<PersistentChat>,
}

/// `PersistentChat` of StartChatContact: the ended chat whose history the new one carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PersistentChat {
    /// `ENTIRE_PAST_SESSION` (every segment of the source chat; `SourceContactId` is its
    /// InitialContactId) or `FROM_SEGMENT`.
    pub rehydration_type: String,
    pub source_contact_id: String,
}

impl PersistentChat {
    /// Rehydration of every segment of the ended chat `initial_contact_id`.
    pub fn entire_past_session(initial_contact_id: &str) -> Self {
        Self {
            rehydration_type: "ENTIRE_PAST_SESSION".to_owned(),
            source_contact_id: initial_contact_id.to_owned(),
        }
    }
}

/// StartChatContact response.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartChatContactResponse {
    pub contact_id: String,
    pub participant_id: String,
    pub participant_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_from_contact_id: Option<String>,
}

impl fmt::Debug for StartChatContactResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartChatContactResponse")
            .field("contact_id", &self.contact_id)
            .field("participant_id", &self.participant_id)
            .field("participant_token", &"…")
            .field("continued_from_contact_id", &self.continued_from_contact_id)
            .finish()
    }
}

/// `ChatStreamingConfiguration` of StartContactStreaming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChatStreamingConfiguration {
    pub streaming_endpoint_arn: String,
}

/// `POST /contact/start-streaming` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartContactStreamingRequest {
    pub instance_id: String,
    pub contact_id: String,
    pub chat_streaming_configuration: ChatStreamingConfiguration,
    pub client_token: String,
}

/// StartContactStreaming response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartContactStreamingResponse {
    pub streaming_id: String,
}

/// `POST /contact/stop` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StopContactRequest {
    pub contact_id: String,
    pub instance_id: String,
}

/// `POST /contact/attributes` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateContactAttributesRequest {
    pub initial_contact_id: String,
    pub instance_id: String,
    pub attributes: BTreeMap<String, String>,
}

/// What DescribeInstance says about the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub arn: Option<String>,
    /// `InstanceAlias` (the `https://{alias}.my.connect.aws` name).
    pub alias: Option<String>,
    /// `InstanceStatus`: `CREATION_IN_PROGRESS`, `ACTIVE` or `CREATION_FAILED`.
    pub status: String,
    /// `StatusReason.Message`, when the creation failed.
    pub status_reason: Option<String>,
}

impl InstanceInfo {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// What DescribeContactFlow says about the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFlowInfo {
    pub id: String,
    pub name: String,
    /// `Type`: StartChatContact needs `CONTACT_FLOW` (an inbound flow).
    pub flow_type: String,
    /// `State`: `ACTIVE` or `ARCHIVED`.
    pub state: String,
    /// `Status`: `PUBLISHED` or `SAVED` (absent on flows that predate it).
    pub status: Option<String>,
}

impl ContactFlowInfo {
    /// The type StartChatContact accepts.
    pub const INBOUND_TYPE: &'static str = "CONTACT_FLOW";

    /// What stops StartChatContact from using this flow, one sentence each (empty: usable).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.flow_type != Self::INBOUND_TYPE {
            out.push(format!(
                "its type is {}, not {} (an inbound contact flow)",
                self.flow_type,
                Self::INBOUND_TYPE
            ));
        }
        if self.state != "ACTIVE" {
            out.push(format!("its state is {}, not ACTIVE", self.state));
        }
        if let Some(status) = self.status.as_deref()
            && status != "PUBLISHED"
        {
            out.push(format!("its status is {status}, not PUBLISHED"));
        }
        out
    }
}

/// A failed Describe* call: what doctor must tell apart from a plain [`ConnectError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    /// `ResourceNotFoundException` or `ContactFlowNotPublishedException` (HTTP 404): wrong id,
    /// or a flow that was never published.
    #[error("not found in Amazon Connect: {0}")]
    NotFound(String),
    /// `AccessDeniedException` (HTTP 403): the credentials are valid but lack the `connect:Describe*`
    /// permission, so the check cannot be made (the bridge does not need it to run).
    #[error("access denied by Amazon Connect: {0}")]
    AccessDenied(String),
    /// Anything else, classified as for every control-plane call (bad credentials, throttling,
    /// unreachable endpoint, …).
    #[error(transparent)]
    Connect(ConnectError),
}

impl DescribeError {
    fn from_failed(failed: Failed) -> Self {
        match (failed.code.as_deref(), failed.err) {
            (Some("AccessDeniedException" | "AccessDenied"), ConnectError::Unauthorized(text)) => {
                Self::AccessDenied(text)
            }
            (_, ConnectError::NotFound(text)) => Self::NotFound(text),
            (_, err) => Self::Connect(err),
        }
    }
}

impl From<DescribeError> for ConnectError {
    fn from(err: DescribeError) -> Self {
        match err {
            DescribeError::NotFound(text) => ConnectError::NotFound(text),
            DescribeError::AccessDenied(text) => ConnectError::Unauthorized(text),
            DescribeError::Connect(err) => err,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstanceResponse {
    #[serde(default)]
    instance: Option<InstanceWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceWire {
    id: Option<String>,
    arn: Option<String>,
    instance_alias: Option<String>,
    instance_status: Option<String>,
    status_reason: Option<StatusReasonWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusReasonWire {
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeContactFlowResponse {
    #[serde(default)]
    contact_flow: Option<ContactFlowWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContactFlowWire {
    id: Option<String>,
    name: Option<String>,
    r#type: Option<String>,
    state: Option<String>,
    status: Option<String>,
}

/// Responses without fields (`{}`); anything is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
struct Empty {}

/// The hand-signed Connect control-plane client.
#[derive(Debug, Clone)]
pub struct ContactClient {
    signed: SignedClient,
}

impl ContactClient {
    /// Builds the client once from the `SdkConfig` (region, credentials provider, endpoint) and
    /// the process environment (`AWS_ENDPOINT_URL_CONNECT`, `AWS_ENDPOINT_URL`).
    pub fn new(
        sdk: &SdkConfig,
        endpoint_override: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<Self, ConfigError> {
        Self::with_env(sdk, endpoint_override, timeout, |k| std::env::var(k).ok())
    }

    /// As [`ContactClient::new`], with an injected environment lookup.
    pub fn with_env(
        sdk: &SdkConfig,
        endpoint_override: Option<&str>,
        timeout: std::time::Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let signed = SignedClient::new(
            sdk,
            SERVICE_NAME,
            settings::ENDPOINT_CONNECT,
            |sdk_endpoint, region| {
                resolve_connect_endpoint(endpoint_override, sdk_endpoint, region, env)
            },
            timeout,
        )?;
        Ok(Self { signed })
    }

    /// The resolved endpoint (scheme, host, optional port and base path).
    pub fn endpoint(&self) -> &str {
        self.signed.endpoint()
    }

    pub fn region(&self) -> &str {
        self.signed.region()
    }

    /// `StartChatContact` — `PUT /contact/chat`.
    pub async fn start_chat_contact(
        &self,
        req: &StartChatContactRequest,
    ) -> Result<StartChatContactResponse, ConnectError> {
        self.signed
            .call("StartChatContact", http::Method::PUT, "/contact/chat", req)
            .await
    }

    /// `StartContactStreaming` — `POST /contact/start-streaming`.
    pub async fn start_contact_streaming(
        &self,
        req: &StartContactStreamingRequest,
    ) -> Result<StartContactStreamingResponse, ConnectError> {
        self.signed
            .call(
                "StartContactStreaming",
                http::Method::POST,
                "/contact/start-streaming",
                req,
            )
            .await
    }

    /// `StopContact` — `POST /contact/stop`.
    pub async fn stop_contact(&self, req: &StopContactRequest) -> Result<(), ConnectError> {
        let _: Empty = self
            .signed
            .call("StopContact", http::Method::POST, "/contact/stop", req)
            .await?;
        Ok(())
    }

    /// `UpdateContactAttributes` — `POST /contact/attributes`.
    pub async fn update_contact_attributes(
        &self,
        req: &UpdateContactAttributesRequest,
    ) -> Result<(), ConnectError> {
        let _: Empty = self
            .signed
            .call(
                "UpdateContactAttributes",
                http::Method::POST,
                "/contact/attributes",
                req,
            )
            .await?;
        Ok(())
    }

    /// `DescribeInstance` — `GET /instance/{InstanceId}`: whether the instance exists and is
    /// active, and its alias. Needs `connect:DescribeInstance` (not needed to run the bridge: an
    /// [`DescribeError::AccessDenied`] only means this check cannot be made).
    pub async fn describe_instance(
        &self,
        instance_id: &str,
    ) -> Result<InstanceInfo, DescribeError> {
        const OP: &str = "DescribeInstance";
        let path = format!("/instance/{}", path_segment(instance_id));
        let out: DescribeInstanceResponse = self
            .signed
            .send(OP, http::Method::GET, &path, None)
            .await
            .map_err(DescribeError::from_failed)?;
        let instance = out.instance.ok_or_else(|| {
            DescribeError::Connect(ConnectError::Unavailable(format!(
                "{OP}: no Instance in the response"
            )))
        })?;
        Ok(InstanceInfo {
            id: instance.id.unwrap_or_else(|| instance_id.to_owned()),
            arn: instance.arn,
            alias: instance.instance_alias,
            status: instance.instance_status.unwrap_or_default(),
            status_reason: instance.status_reason.and_then(|r| r.message),
        })
    }

    /// `DescribeContactFlow` — `GET /contact-flows/{InstanceId}/{ContactFlowId}`: the flow's
    /// name, type, state and status. Needs `connect:DescribeContactFlow` (not needed to run the
    /// bridge). An unknown or unpublished flow is [`DescribeError::NotFound`].
    pub async fn describe_contact_flow(
        &self,
        instance_id: &str,
        flow_id: &str,
    ) -> Result<ContactFlowInfo, DescribeError> {
        const OP: &str = "DescribeContactFlow";
        let path = format!(
            "/contact-flows/{}/{}",
            path_segment(instance_id),
            path_segment(flow_id)
        );
        let out: DescribeContactFlowResponse = self
            .signed
            .send(OP, http::Method::GET, &path, None)
            .await
            .map_err(DescribeError::from_failed)?;
        let flow = out.contact_flow.ok_or_else(|| {
            DescribeError::Connect(ConnectError::Unavailable(format!(
                "{OP}: no ContactFlow in the response"
            )))
        })?;
        Ok(ContactFlowInfo {
            id: flow.id.unwrap_or_else(|| flow_id.to_owned()),
            name: flow.name.unwrap_or_default(),
            flow_type: flow.r#type.unwrap_or_default(),
            state: flow.state.unwrap_or_default(),
            status: flow.status,
        })
    }
}

/// Percent-encodes one path segment (ids are ASCII; anything outside RFC 3986's unreserved set
/// is escaped so that a malformed id cannot change the path).
fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn start_chat_body_is_pascal_case() {
        let req = StartChatContactRequest {
            instance_id: "i".into(),
            contact_flow_id: "f".into(),
            attributes: BTreeMap::from([("Channel".to_owned(), "X".to_owned())]),
            participant_details: ParticipantDetails {
                display_name: "Elizabeth".into(),
            },
            initial_message: Some(ChatMessageBody {
                content_type: "text/plain".into(),
                content: "Hola".into(),
            }),
            client_token: "x-dm-1".into(),
            chat_duration_in_minutes: None,
            supported_messaging_content_types: SUPPORTED_MESSAGING_CONTENT_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            customer_id: None,
            persistent_chat: None,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "InstanceId": "i",
                "ContactFlowId": "f",
                "Attributes": {"Channel": "X"},
                "ParticipantDetails": {"DisplayName": "Elizabeth"},
                "InitialMessage": {"ContentType": "text/plain", "Content": "Hola"},
                "ClientToken": "x-dm-1",
                "SupportedMessagingContentTypes": ["text/plain", "text/markdown"]
            })
        );
    }

    #[test]
    fn response_debug_hides_the_token() {
        let r = StartChatContactResponse {
            contact_id: "c".into(),
            participant_id: "p".into(),
            participant_token: "secret".into(),
            continued_from_contact_id: None,
        };
        assert!(!format!("{r:?}").contains("secret"));
    }
}
