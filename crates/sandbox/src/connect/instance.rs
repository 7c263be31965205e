//! The Connect instance and its contact flows, as `xdm-connect doctor` reads them:
//! DescribeInstance (`GET /instance/{InstanceId}`) and DescribeContactFlow
//! (`GET /contact-flows/{InstanceId}/{ContactFlowId}`), rest-json with SigV4 `connect` (shape
//! checked as for the contact routes). The instance has the configured contact flow until a
//! control removes it; controls add others (any type, state, status). StartChatContact accepts
//! the flows listed here. These two are not fault operations: only the Connect down switch
//! applies (503 `ServiceUnavailableException`, whatever its mode).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::connect::admission::{check_instance, check_sigv4};
use crate::connect::errors::{AwsError, respond};
use crate::faults::Side;
use crate::state::Shared;
use crate::sync::lock;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/instance/{instance_id}", get(describe_instance))
        .route(
            "/contact-flows/{instance_id}/{flow_id}",
            get(describe_contact_flow),
        )
}

/// The SigV4 shape, then the Connect down switch.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), AwsError> {
    check_sigv4(headers, &shared.cfg.connect.region)?;
    if lock(&shared.faults).down(Side::Connect).is_some() {
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
    let flow = lock(&shared.connect)
        .flows(&shared.cfg.connect.contact_flow_id)
        .get(flow_id)
        .cloned();
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
