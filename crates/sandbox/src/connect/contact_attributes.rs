//! UpdateContactAttributes — `POST /contact/attributes` (docs/protocols.md B1): adds or
//! replaces attributes of a contact, addressed by its initial contact id; and the rules every
//! contact's attributes follow (StartChatContact checks them too).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connect::admission::{admit_contact_call, check_instance};
use crate::connect::errors::{AwsError, Service, parse, respond};
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;

/// Connect's limit on a contact's attributes (keys and values together), in bytes.
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 32_768;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/contact/attributes", post(update_contact_attributes))
}

/// Keys of letters, digits, `_` and `-`; everything together within [`MAX_ATTRIBUTE_BYTES`].
pub(crate) fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), AwsError> {
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if let Some(bad) = attributes.keys().find(|k| !valid_key(k)) {
        return Err(AwsError::invalid_parameter(format!(
            "Attribute key '{bad}' must match ^[A-Za-z0-9_-]+$"
        )));
    }
    let total: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ATTRIBUTE_BYTES {
        return Err(AwsError::invalid_parameter(format!(
            "Attributes total {total} bytes; the limit is {MAX_ATTRIBUTE_BYTES}"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateContactAttributesRequest {
    initial_contact_id: Option<String>,
    instance_id: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

async fn update_contact_attributes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(update_inner(&shared, &headers, &body).await)
}

async fn update_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit_contact_call(shared, headers, FaultOp::UpdateContactAttributes).await?;
    let req: UpdateContactAttributesRequest = parse(Service::Connect, body)?;
    let instance_id = req
        .instance_id
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AwsError::invalid_parameter("InstanceId is required"))?;
    check_instance(shared, instance_id)?;
    let initial = req
        .initial_contact_id
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AwsError::invalid_parameter("InitialContactId is required"))?;
    let attributes = req
        .attributes
        .ok_or_else(|| AwsError::invalid_parameter("Attributes is required"))?;
    let mut cs = lock(&shared.connect);
    let chat = cs
        .chats
        .iter_mut()
        .find(|c| c.initial_contact_id == initial)
        .ok_or_else(|| AwsError::not_found(format!("Contact {initial} does not exist")))?;
    let mut merged = chat.attributes.clone();
    merged.extend(attributes);
    check_attributes(&merged)?;
    chat.attributes = merged;
    Ok(json!({}))
}
