//! The SigV4 check of the AWS emulators (Connect and the SNS Query API): the `Authorization`
//! header's presence and shape — algorithm, `Credential` scope naming the service and the
//! configured region, `SignedHeaders`, `Signature`, a date header. The signature itself is not
//! recomputed.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};

/// Why a request's SigV4 `Authorization` was refused (each service words and codes it its way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigV4Refusal {
    /// No `Authorization` header.
    Missing,
    /// Not AWS4-HMAC-SHA256, a parameter or the date missing, a malformed scope.
    Incomplete(String),
    /// A scope naming another service or region, or a wrong terminator.
    Invalid(String),
}

impl SigV4Refusal {
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Missing => "Missing Authentication Token",
            Self::Incomplete(m) | Self::Invalid(m) => m,
        }
    }
}

/// Checks the SigV4 `Authorization` header's shape for `service_name` in `region`.
pub(crate) fn check(
    headers: &HeaderMap,
    region: &str,
    service_name: &str,
) -> Result<(), SigV4Refusal> {
    let incomplete = SigV4Refusal::Incomplete;
    let invalid = |m: &str| SigV4Refusal::Invalid(m.to_owned());
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(SigV4Refusal::Missing);
    };
    let Some(params) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete(format!(
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm. Authorization={value}"
        )));
    };
    let mut fields = BTreeMap::new();
    for part in params.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            fields.insert(k.trim(), v.trim());
        }
    }
    for required in ["Credential", "SignedHeaders", "Signature"] {
        if fields.get(required).is_none_or(|v| v.is_empty()) {
            return Err(incomplete(format!(
                "Authorization header requires '{required}' parameter."
            )));
        }
    }
    if !headers.contains_key("x-amz-date") && !headers.contains_key(header::DATE) {
        return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        ));
    }
    let scope: Vec<&str> = fields
        .get("Credential")
        .copied()
        .unwrap_or("")
        .split('/')
        .collect();
    let [_access_key, _date, scope_region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term".into(),
        ));
    };
    if *service != service_name {
        return Err(invalid(&format!(
            "Credential should be scoped to correct service: '{service_name}'."
        )));
    }
    if *scope_region != region {
        return Err(invalid(&format!(
            "Credential should be scoped to a valid region, not '{scope_region}'."
        )));
    }
    if *terminator != "aws4_request" {
        return Err(invalid(
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
        ));
    }
    Ok(())
}
