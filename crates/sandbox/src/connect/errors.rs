//! AWS rest-json as the Connect services speak it (docs/protocols.md B0): JSON request bodies in
//! (an unparsable one is an error), errors out as status + `x-amzn-ErrorType` +
//! `{"__type","message"}` (Customer Profiles: `{"Message"}`, the only member of its error shapes)
//! + `x-amzn-RequestId`, successful JSON answers with a request id.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::ids;
use crate::sigv4::SigV4Refusal;

/// Which AWS service answers (their default error codes differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `connect` (`/contact/*`).
    Connect,
    /// `connectparticipant` (`/participant/*`).
    Participant,
    /// Customer Profiles, `profile` (`/domains/*`).
    Profiles,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    /// Customer Profiles' 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    /// 409: the call conflicts with the state of the chat.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ConflictException", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub(crate) fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            message,
        )
    }

    /// The error of an injected fault (code defaulted from the status, per service).
    pub(crate) fn from_fault(service: Service, status: StatusCode, fault: &Fault) -> Self {
        let code = fault
            .code
            .clone()
            .unwrap_or_else(|| default_code(service, status).to_owned());
        let message = fault
            .message
            .clone()
            .unwrap_or_else(|| format!("Injected fault: {code}"));
        Self {
            status,
            code,
            message,
        }
    }

    /// The body of a request that is not valid JSON.
    pub(crate) fn unparsable(service: Service, err: &serde_json::Error) -> Self {
        let message = format!("Unable to parse request body: {err}");
        match service {
            Service::Connect => Self::invalid_request(message),
            Service::Participant => Self::validation(message),
            Service::Profiles => Self::bad_request(message),
        }
    }

    /// The error as `service` sends it.
    pub(crate) fn render(self, service: Service) -> Response {
        let body = match service {
            Service::Profiles => json!({"Message": self.message}),
            Service::Connect | Service::Participant => {
                json!({"__type": self.code, "message": self.message})
            }
        };
        let mut response = with_request_id((self.status, axum::Json(body)).into_response());
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            response.headers_mut().insert("x-amzn-ErrorType", code);
        }
        response
    }
}

impl From<SigV4Refusal> for AwsError {
    fn from(refusal: SigV4Refusal) -> Self {
        let (status, code) = match &refusal {
            SigV4Refusal::Missing => (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException"),
            SigV4Refusal::Incomplete(_) => {
                (StatusCode::BAD_REQUEST, "IncompleteSignatureException")
            }
            SigV4Refusal::Invalid(_) => (StatusCode::FORBIDDEN, "InvalidSignatureException"),
        };
        Self::new(status, code, refusal.message())
    }
}

/// Parses a JSON body (an empty body counts as `{}`).
pub(crate) fn parse<T: DeserializeOwned>(service: Service, body: &[u8]) -> Result<T, AwsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| AwsError::unparsable(service, &e))
}

fn default_code(service: Service, status: StatusCode) -> &'static str {
    match (service, status.as_u16()) {
        (Service::Connect, 400) => "InvalidRequestException",
        (Service::Participant, 400) => "ValidationException",
        (Service::Participant, 402) => "ServiceQuotaExceededException",
        (Service::Profiles, 400) => "BadRequestException",
        (_, 403) => "AccessDeniedException",
        (_, 404) => "ResourceNotFoundException",
        (_, 409) => "ConflictException",
        (_, 429) => "ThrottlingException",
        (Service::Connect, 503) => "ServiceUnavailableException",
        (Service::Connect, _) => "InternalServiceException",
        (Service::Participant | Service::Profiles, _) => "InternalServerException",
    }
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&ids::uuid()) {
        response.headers_mut().insert("x-amzn-RequestId", id);
    }
    response
}

/// The Connect control plane's and participant service's shape (`{"__type","message"}`).
impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        self.render(Service::Connect)
    }
}

/// 200 with a JSON body and a request id.
pub(crate) fn aws_ok(body: Value) -> Response {
    with_request_id((StatusCode::OK, axum::Json(body)).into_response())
}

/// Renders a handler's outcome (Connect and participant service).
pub(crate) fn respond(result: Result<Value, AwsError>) -> Response {
    respond_as(Service::Connect, result)
}

/// Renders a handler's outcome as `service` answers.
pub(crate) fn respond_as(service: Service, result: Result<Value, AwsError>) -> Response {
    match result {
        Ok(body) => aws_ok(body),
        Err(err) => {
            tracing::info!(code = %err.code, status = err.status.as_u16(), message = %err.message, "AWS call refused");
            err.render(service)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn error_response_has_header_body_and_request_id() {
        let response = AwsError::access_denied("nope").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "AccessDeniedException"
        );
        assert!(response.headers().contains_key("x-amzn-RequestId"));
    }

    #[test]
    fn profiles_errors_carry_message_only() {
        let response = AwsError::bad_request("bad key").render(Service::Profiles);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "BadRequestException"
        );
        let fault = Fault::status(500);
        assert_eq!(
            AwsError::from_fault(Service::Profiles, StatusCode::INTERNAL_SERVER_ERROR, &fault).code,
            "InternalServerException"
        );
        assert_eq!(
            AwsError::from_fault(
                Service::Profiles,
                StatusCode::BAD_REQUEST,
                &Fault::status(400)
            )
            .code,
            "BadRequestException"
        );
    }

    #[test]
    fn fault_codes_default_per_service() {
        let fault = Fault::status(429);
        assert_eq!(
            AwsError::from_fault(Service::Participant, StatusCode::TOO_MANY_REQUESTS, &fault).code,
            "ThrottlingException"
        );
        let fault = Fault::status(500);
        assert_eq!(
            AwsError::from_fault(Service::Connect, StatusCode::INTERNAL_SERVER_ERROR, &fault).code,
            "InternalServiceException"
        );
        assert_eq!(
            AwsError::from_fault(
                Service::Participant,
                StatusCode::INTERNAL_SERVER_ERROR,
                &fault
            )
            .code,
            "InternalServerException"
        );
    }
}
