//! X API v2 error bodies (docs/protocols.md A4.3–A4.4) and the response shape shared by every X route.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::x::state::RateInfo;

pub(crate) const INVALID_REQUEST: &str = "https://api.x.com/2/problems/invalid-request";
pub(crate) const RESOURCE_NOT_FOUND: &str = "https://api.x.com/2/problems/resource-not-found";
const UNSUPPORTED_AUTHENTICATION: &str = "https://api.x.com/2/problems/unsupported-authentication";

/// An X answer before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct XReply {
    pub status: StatusCode,
    pub body: Value,
    pub rate: RateInfo,
    /// Why the call was refused, for the request record (never sent).
    pub rejection: Option<String>,
}

impl XReply {
    pub(crate) fn new(status: StatusCode, body: Value, rate: RateInfo) -> Self {
        Self {
            status,
            body,
            rate,
            rejection: None,
        }
    }

    pub(crate) fn rejected(mut self, why: impl Into<String>) -> Self {
        self.rejection = Some(why.into());
        self
    }

    /// 400 invalid-request naming the parameter and its value; `message` is also the record's
    /// rejection.
    pub(crate) fn invalid_param(
        rate: RateInfo,
        parameter: &str,
        value: &str,
        message: String,
    ) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            invalid_request(vec![param_error(parameter, value, message.clone())]),
            rate,
        )
        .rejected(message)
    }

    /// 400 invalid-request about the body; `message` is also the record's rejection.
    pub(crate) fn invalid_body(rate: RateInfo, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            invalid_request(vec![body_error(message.clone())]),
            rate,
        )
        .rejected(message)
    }
}

impl IntoResponse for XReply {
    fn into_response(self) -> Response {
        rate_headed(
            (self.status, axum::Json(self.body)).into_response(),
            self.rate,
        )
    }
}

/// `response` with the three `x-rate-limit-*` headers of `rate`.
pub(crate) fn rate_headed(mut response: Response, rate: RateInfo) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", i64::from(rate.limit)),
        ("x-rate-limit-remaining", i64::from(rate.remaining)),
        ("x-rate-limit-reset", rate.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

fn problem(status: StatusCode, title: &str, kind: &str, detail: &str) -> Value {
    json!({"title": title, "type": kind, "status": status.as_u16(), "detail": detail})
}

/// `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`.
pub(crate) fn unauthorized() -> Value {
    problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "about:blank",
        "Unauthorized",
    )
}

/// `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`.
pub(crate) fn too_many_requests() -> Value {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "about:blank",
        "Too Many Requests",
    )
}

pub(crate) fn forbidden(detail: &str) -> Value {
    problem(StatusCode::FORBIDDEN, "Forbidden", "about:blank", detail)
}

/// A principal the route does not accept (`kind`), naming those it does.
pub(crate) fn unsupported_authentication_for(kind: &str, supported: &str) -> Value {
    problem(
        StatusCode::FORBIDDEN,
        "Unsupported Authentication",
        UNSUPPORTED_AUTHENTICATION,
        &format!(
            "Authenticating with {kind} is forbidden for this endpoint.  Supported authentication types are [{supported}]."
        ),
    )
}

/// An OAuth 2.0 user token without the scopes the endpoint needs.
pub(crate) fn missing_scopes(missing: &[&str]) -> Value {
    json!({
        "title": "Forbidden",
        "type": "about:blank",
        "status": 403,
        "detail": format!("Missing required OAuth 2.0 scopes: {}", missing.join(" ")),
    })
}

/// A refused webhook / subscription request: `reason` (X's code, e.g. `CrcValidationFailed`) and
/// a `detail` starting with it.
pub(crate) fn refusal(reason: &str, message: &str) -> Value {
    json!({
        "title": "Invalid Request",
        "detail": format!("{reason}: {message}"),
        "type": INVALID_REQUEST,
        "errors": [{"message": reason}],
    })
}

/// Private activity (DMs, chat, likes, mutes, blocks) requested with app-only authentication.
pub(crate) fn not_authorized_for_resource(detail: &str) -> Value {
    json!({
        "title": "Forbidden",
        "type": "https://api.x.com/2/problems/not-authorized-for-resource",
        "status": 403,
        "detail": detail,
    })
}

/// One entry of an invalid-request `errors` list.
pub(crate) fn param_error(parameter: &str, value: &str, message: String) -> Value {
    json!({"parameters": {parameter: [value]}, "message": message})
}

pub(crate) fn body_error(message: impl Into<String>) -> Value {
    json!({"parameters": {}, "message": message.into()})
}

/// `{"errors":[…],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":…}`.
pub(crate) fn invalid_request(errors: Vec<Value>) -> Value {
    json!({
        "errors": errors,
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": INVALID_REQUEST,
    })
}

/// The body of an injected fault: a problem with the fault's type (default by status).
pub(crate) fn fault_body(status: StatusCode, fault: &Fault) -> Value {
    let kind = fault.code.clone().unwrap_or_else(|| {
        match status {
            StatusCode::BAD_REQUEST => INVALID_REQUEST,
            StatusCode::NOT_FOUND => RESOURCE_NOT_FOUND,
            _ => "about:blank",
        }
        .to_owned()
    });
    if kind.ends_with("/usage-capped") {
        return json!({
            "title": "UsageCapExceeded",
            "detail": fault.message.clone().unwrap_or_else(|| "Usage cap exceeded: Monthly product cap".into()),
            "type": kind,
            "period": "Monthly",
            "scope": "Product",
            "status": status.as_u16(),
        });
    }
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = fault.message.clone().unwrap_or_else(|| title.to_owned());
    problem(status, title, &kind, &detail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_matches_x() {
        assert_eq!(
            unauthorized(),
            json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})
        );
    }

    #[test]
    fn usage_capped_fault_is_recognisable() {
        let fault = Fault::error(429, "https://api.x.com/2/problems/usage-capped");
        let body = fault_body(StatusCode::TOO_MANY_REQUESTS, &fault);
        assert_eq!(body["title"], "UsageCapExceeded");
        assert_eq!(body["period"], "Monthly");
        let plain = fault_body(StatusCode::TOO_MANY_REQUESTS, &Fault::status(429));
        assert_eq!(plain, too_many_requests());
    }
}
