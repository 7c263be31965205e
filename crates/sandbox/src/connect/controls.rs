//! The Connect instance's contact flows as controls: `SandboxHandle` methods to list, add and
//! remove them, and their HTTP routes `/_sandbox/connect/flows…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};

use crate::connect::flows::ContactFlowSpec;
use crate::control::reply::{ControlError, Reply, json_body, ok, with_status};
use crate::handle::SandboxHandle;
use crate::state::Shared;
use crate::sync::lock;

impl SandboxHandle {
    // ----- Connect instance: contact flows -----

    /// The instance's contact flows, by id.
    pub fn contact_flows(&self) -> Vec<ContactFlowSpec> {
        let configured = &self.shared.cfg.connect.contact_flow_id;
        lock(&self.shared.connect)
            .flows(configured)
            .values()
            .cloned()
            .collect()
    }

    /// Adds (or replaces) a contact flow; StartChatContact and DescribeContactFlow then know it.
    pub fn add_contact_flow(&self, flow: ContactFlowSpec) -> ContactFlowSpec {
        let configured = &self.shared.cfg.connect.contact_flow_id;
        lock(&self.shared.connect)
            .flows(configured)
            .insert(flow.id.clone(), flow.clone());
        flow
    }

    /// Removes a contact flow (the configured one too); `false` if there was none.
    pub fn remove_contact_flow(&self, flow_id: &str) -> bool {
        let configured = &self.shared.cfg.connect.contact_flow_id;
        lock(&self.shared.connect)
            .flows(configured)
            .remove(flow_id)
            .is_some()
    }
}

/// `/_sandbox/connect/flows…` (merged into the control API).
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/connect/flows", get(list_flows).post(add_flow))
        .route("/connect/flows/{id}", delete(remove_flow))
}

async fn list_flows(State(shared): State<Arc<Shared>>) -> Reply {
    ok(SandboxHandle { shared }.contact_flows())
}

async fn add_flow(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let flow: ContactFlowSpec = json_body(&body)?;
    if flow.id.is_empty() || !flow.id.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(ControlError::bad_request(
            "id must be non-empty visible ASCII without '/'",
        ));
    }
    let flow = SandboxHandle { shared }.add_contact_flow(flow);
    with_status(StatusCode::CREATED, flow)
}

async fn remove_flow(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if (SandboxHandle { shared }).remove_contact_flow(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ControlError(StatusCode::NOT_FOUND, format!("no contact flow {id}")).into_response()
    }
}
