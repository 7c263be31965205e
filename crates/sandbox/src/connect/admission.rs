//! How a Connect call gets in: the control plane's SigV4 (`connect`, shape only) and the
//! participant service's `X-Amz-Bearer` ConnectionToken, each followed by fault injection; the
//! live chat a ConnectionToken opens, and the instance id check.

use axum::http::HeaderMap;

use crate::clock;
use crate::connect::errors::{AwsError, Service};
use crate::connect::state::{ConnectState, TokenProblem};
use crate::faults::{self, FaultOp};
use crate::sigv4;
use crate::state::Shared;

/// Checks the SigV4 `Authorization` header's shape for service `connect` in the configured region.
pub(crate) fn check_sigv4(headers: &HeaderMap, region: &str) -> Result<(), AwsError> {
    sigv4::check(headers, region, "connect").map_err(AwsError::from)
}

/// Fault injection for a call of `op`: waits the injected delay, then fails the call with the
/// injected error (in `service`'s codes), if any.
pub(crate) async fn injected_fault(
    shared: &Shared,
    service: Service,
    op: FaultOp,
) -> Result<(), AwsError> {
    match faults::gate(shared, op).await {
        None => Ok(()),
        Some(injected) => Err(AwsError::from_fault(
            service,
            injected.status(),
            &injected.fault,
        )),
    }
}

/// A control-plane call (`/contact/*`): SigV4, then the fault for `op` (if any).
pub(crate) async fn admit_contact_call(
    shared: &Shared,
    headers: &HeaderMap,
    op: FaultOp,
) -> Result<(), AwsError> {
    faults::note_call(op);
    check_sigv4(headers, &shared.cfg.connect.region)?;
    injected_fault(shared, Service::Connect, op).await
}

/// A participant call (`/participant/*`): the ConnectionToken, then the fault for `op` (if any).
pub(crate) async fn admit_participant_call(
    shared: &Shared,
    headers: &HeaderMap,
    op: FaultOp,
) -> Result<String, AwsError> {
    faults::note_call(op);
    let token = bearer(headers)?;
    injected_fault(shared, Service::Participant, op).await?;
    Ok(token)
}

/// The `X-Amz-Bearer` token (required by the model: its absence is a validation error).
fn bearer(headers: &HeaderMap) -> Result<String, AwsError> {
    headers
        .get("x-amz-bearer")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            AwsError::validation(
                "1 validation error detected: Value null at 'connectionToken' failed to satisfy constraint: Member must not be null",
            )
        })
}

pub(crate) fn terminated(contact_id: &str) -> AwsError {
    AwsError::access_denied(format!(
        "Access denied: the chat {contact_id} has already been terminated"
    ))
}

pub(crate) fn no_access() -> AwsError {
    AwsError::access_denied("You do not have sufficient access to perform this action.")
}

/// The live chat a ConnectionToken belongs to.
pub(crate) fn chat_for_connection(cs: &ConnectState, token: &str) -> Result<usize, AwsError> {
    let idx = cs
        .by_connection_token(token, clock::now())
        .map_err(|problem| match problem {
            TokenProblem::Unknown => no_access(),
            TokenProblem::Expired => AwsError::access_denied("The connection token has expired"),
        })?;
    match cs.chats.get(idx) {
        Some(chat) if chat.is_ended() => Err(terminated(&chat.contact_id)),
        Some(_) => Ok(idx),
        None => Err(no_access()),
    }
}

pub(crate) fn check_instance(shared: &Shared, instance_id: &str) -> Result<(), AwsError> {
    if instance_id == shared.cfg.connect.instance_id {
        Ok(())
    } else {
        Err(AwsError::not_found(format!(
            "Instance with id {instance_id} does not exist"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h.insert("x-amz-date", HeaderValue::from_static("20261125T120000Z"));
        h
    }

    #[test]
    fn sigv4_shape_is_checked() {
        let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/connect/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert!(check_sigv4(&headers(good), "us-east-1").is_ok());
        assert_eq!(
            check_sigv4(&HeaderMap::new(), "us-east-1")
                .unwrap_err()
                .code,
            "MissingAuthenticationTokenException"
        );
        let wrong_service = good.replace("/connect/", "/execute-api/");
        assert_eq!(
            check_sigv4(&headers(&wrong_service), "us-east-1")
                .unwrap_err()
                .code,
            "InvalidSignatureException"
        );
        assert_eq!(
            check_sigv4(&headers(good), "eu-west-1").unwrap_err().code,
            "InvalidSignatureException"
        );
        let no_signature = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/connect/aws4_request, SignedHeaders=host";
        assert_eq!(
            check_sigv4(&headers(no_signature), "us-east-1")
                .unwrap_err()
                .code,
            "IncompleteSignatureException"
        );
    }
}
