//! The Connect instance and its contact flows, as `xdm-connect doctor` reads them:
//! DescribeInstance (`GET /instance/{InstanceId}`) and DescribeContactFlow
//! (`GET /contact-flows/{InstanceId}/{ContactFlowId}`), rest-json with SigV4 `connect` (shape
//! checked as for the contact routes). The instance has the configured contact flow until a
//! control removes it; controls add others (any type, state, status). StartChatContact accepts
//! the flows listed here. These two are not fault operations: only the Connect down switch
//! applies (503 `ServiceUnavailableException`, whatever its mode).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connect::contact::{check_instance, check_sigv4};
use crate::connect::errors::{AwsError, respond};
use crate::faults::Side;
use crate::handle::SandboxHandle;
use crate::state::{Shared, lock};

/// A contact flow of the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactFlowSpec {
    pub id: String,
    /// Default `Inbound chat`.
    pub name: String,
    /// `Type` (default `CONTACT_FLOW`, the inbound kind StartChatContact needs; also
    /// `CUSTOMER_QUEUE`, `AGENT_TRANSFER`, …).
    #[serde(rename = "type")]
    pub flow_type: String,
    /// `State`: `ACTIVE` (default) or `ARCHIVED`.
    pub state: String,
    /// `Status`: `PUBLISHED` (default) or `SAVED`. DescribeContactFlow of a `SAVED` flow answers
    /// 404 `ContactFlowNotPublishedException`, as Connect does for a flow never published.
    pub status: String,
    pub description: String,
    /// The flow language JSON, as a string (default: a minimal start → disconnect flow).
    pub content: String,
}

impl Default for ContactFlowSpec {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: "Inbound chat".into(),
            flow_type: "CONTACT_FLOW".into(),
            state: "ACTIVE".into(),
            status: "PUBLISHED".into(),
            description: String::new(),
            content: DEFAULT_CONTENT.into(),
        }
    }
}

/// A flow that only disconnects (the sandbox does not run flows).
const DEFAULT_CONTENT: &str = r#"{"Version":"2019-10-30","StartAction":"disconnect","Metadata":{},"Actions":[{"Identifier":"disconnect","Type":"DisconnectParticipant","Parameters":{},"Transitions":{}}]}"#;

impl ContactFlowSpec {
    /// A published, active inbound flow with this id.
    pub fn inbound(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/instance/{instance_id}", get(describe_instance))
        .route(
            "/contact-flows/{instance_id}/{flow_id}",
            get(describe_contact_flow),
        )
}

/// `/_sandbox/connect/flows…` (merged into the control API).
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/connect/flows", get(list_flows).post(add_flow))
        .route("/connect/flows/{id}", delete(remove_flow))
}

/// The flows, seeded with the configured one on first use.
fn table<'a>(
    shared: &Shared,
    flows: &'a mut Option<BTreeMap<String, ContactFlowSpec>>,
) -> &'a mut BTreeMap<String, ContactFlowSpec> {
    flows.get_or_insert_with(|| {
        let id = shared.cfg.connect.contact_flow_id.clone();
        BTreeMap::from([(id.clone(), ContactFlowSpec::inbound(id))])
    })
}

/// Whether the instance has this flow (StartChatContact's check).
pub(crate) fn flow_exists(shared: &Shared, flow_id: &str) -> bool {
    let mut cs = lock(&shared.connect);
    table(shared, &mut cs.flows).contains_key(flow_id)
}

/// The SigV4 shape, then the Connect down switch.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), AwsError> {
    check_sigv4(headers, &shared.cfg.connect.region)?;
    if shared.down(Side::Connect).is_some() {
        return Err(AwsError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Amazon Connect is down (sandbox down switch)",
        ));
    }
    Ok(())
}

fn instance_arn(shared: &Shared) -> String {
    let c = &shared.cfg.connect;
    format!(
        "arn:aws:connect:{}:{}:instance/{}",
        c.region, c.account_id, c.instance_id
    )
}

async fn describe_instance(
    State(shared): State<Arc<Shared>>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(describe_instance_inner(&shared, &headers, &instance_id))
}

fn describe_instance_inner(
    shared: &Shared,
    headers: &HeaderMap,
    instance_id: &str,
) -> Result<Value, AwsError> {
    admit(shared, headers)?;
    check_instance(shared, instance_id)?;
    let c = &shared.cfg.connect;
    Ok(json!({
        "Instance": {
            "Id": c.instance_id,
            "Arn": instance_arn(shared),
            "IdentityManagementType": "CONNECT_MANAGED",
            "InstanceAlias": "xdm-sandbox",
            // rest-json timestamps are epoch seconds.
            "CreatedTime": 1_767_225_600,
            "ServiceRole": format!(
                "arn:aws:iam::{}:role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect_sandbox",
                c.account_id
            ),
            "InstanceStatus": "ACTIVE",
            "InboundCallsEnabled": true,
            "OutboundCallsEnabled": false,
            "InstanceAccessUrl": "https://xdm-sandbox.my.connect.aws",
        }
    }))
}

async fn describe_contact_flow(
    State(shared): State<Arc<Shared>>,
    Path((instance_id, flow_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(describe_contact_flow_inner(
        &shared,
        &headers,
        &instance_id,
        &flow_id,
    ))
}

fn describe_contact_flow_inner(
    shared: &Shared,
    headers: &HeaderMap,
    instance_id: &str,
    flow_id: &str,
) -> Result<Value, AwsError> {
    admit(shared, headers)?;
    check_instance(shared, instance_id)?;
    let flow = {
        let mut cs = lock(&shared.connect);
        table(shared, &mut cs.flows).get(flow_id).cloned()
    };
    let Some(flow) = flow else {
        return Err(AwsError::not_found(format!(
            "Contact flow with id {flow_id} does not exist"
        )));
    };
    if flow.status == "SAVED" {
        return Err(AwsError::new(
            StatusCode::NOT_FOUND,
            "ContactFlowNotPublishedException",
            format!("Contact flow {flow_id} is not published"),
        ));
    }
    Ok(json!({
        "ContactFlow": {
            "Arn": format!("{}/contact-flow/{}", instance_arn(shared), flow.id),
            "Id": flow.id,
            "Name": flow.name,
            "Type": flow.flow_type,
            "State": flow.state,
            "Status": flow.status,
            "Description": flow.description,
            "Content": flow.content,
            "Tags": {},
        }
    }))
}

impl SandboxHandle {
    // ----- Connect instance: contact flows -----

    /// The instance's contact flows, by id.
    pub fn contact_flows(&self) -> Vec<ContactFlowSpec> {
        let shared = &self.shared;
        let mut cs = lock(&shared.connect);
        table(shared, &mut cs.flows).values().cloned().collect()
    }

    /// Adds (or replaces) a contact flow; StartChatContact and DescribeContactFlow then know it.
    pub fn add_contact_flow(&self, flow: ContactFlowSpec) -> ContactFlowSpec {
        let shared = &self.shared;
        let mut cs = lock(&shared.connect);
        table(shared, &mut cs.flows).insert(flow.id.clone(), flow.clone());
        flow
    }

    /// Removes a contact flow (the configured one too); `false` if there was none.
    pub fn remove_contact_flow(&self, flow_id: &str) -> bool {
        let shared = &self.shared;
        let mut cs = lock(&shared.connect);
        table(shared, &mut cs.flows).remove(flow_id).is_some()
    }
}

fn control_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn list_flows(State(shared): State<Arc<Shared>>) -> Response {
    let h = SandboxHandle { shared };
    axum::Json(h.contact_flows()).into_response()
}

async fn add_flow(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let flow: ContactFlowSpec = match serde_json::from_slice(&body) {
        Ok(flow) => flow,
        Err(e) => {
            return control_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"));
        }
    };
    if flow.id.is_empty() || !flow.id.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return control_error(
            StatusCode::BAD_REQUEST,
            "id must be non-empty visible ASCII without '/'".into(),
        );
    }
    let h = SandboxHandle { shared };
    let flow = h.add_contact_flow(flow);
    (StatusCode::CREATED, axum::Json(flow)).into_response()
}

async fn remove_flow(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let h = SandboxHandle { shared };
    if h.remove_contact_flow(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        control_error(StatusCode::NOT_FOUND, format!("no contact flow {id}"))
    }
}
