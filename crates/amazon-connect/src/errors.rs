//! Classification of Amazon Connect failures into [`ConnectError`], for both paths: the calls
//! made with reqwest (the hand-signed control plane, SendMessage and SendEvent) and the other
//! participant calls (AWS SDK).
//!
//! Error codes follow the rest-json protocol (docs/protocols.md B0): the `x-amzn-ErrorType` header,
//! else the body's `code` / `__type`, sanitised (anything after `:` dropped, anything before `#`
//! dropped); the message comes from the body's `message` / `Message`.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_connectparticipant::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use xdm_core::metric_names::{self, PLATFORM_CONNECT};
use xdm_core::ports::ConnectError;

/// Which Connect API a failure came from: the same code means different things on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// `connect` (StartChatContact, StartContactStreaming, StopContact): SigV4 authenticated.
    Control,
    /// `connectparticipant` (CreateParticipantConnection, SendMessage, …): authenticated by the
    /// participant/connection token, so an access denial means the chat is over.
    Participant,
}

/// The code and message of a rest-json error response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsErrorInfo {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Longest service message kept in an error (service messages can echo request fragments).
const MAX_MESSAGE_CHARS: usize = 256;

/// Reduces a raw error code to its bare name: `ValidationException:http://…` and
/// `com.amazonaws.connect#ValidationException` both become `ValidationException`.
pub fn sanitize_error_code(raw: &str) -> &str {
    let mut code = raw.trim();
    if let Some((head, _)) = code.split_once(',') {
        code = head;
    }
    if let Some((head, _)) = code.split_once(':') {
        code = head;
    }
    if let Some((_, tail)) = code.rsplit_once('#') {
        code = tail;
    }
    code.trim()
}

/// Resolves the error code and message of a rest-json error response.
pub fn parse_rest_json_error(headers: &http::HeaderMap, body: &[u8]) -> AwsErrorInfo {
    let json: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(body).ok();
    let body_str = |keys: &[&str]| -> Option<String> {
        let obj = json.as_ref()?;
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
            .map(str::to_owned)
    };

    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body_str(&["code", "Code", "__type"]))
        .map(|raw| sanitize_error_code(&raw).to_owned())
        .filter(|c| !c.is_empty());
    let message = body_str(&["message", "Message"]).filter(|m| !m.is_empty());
    AwsErrorInfo { code, message }
}

pub(crate) fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

fn describe(op: &str, status: Option<u16>, code: Option<&str>, message: Option<&str>) -> String {
    let mut out = String::from(op);
    match (code, status) {
        (Some(code), Some(status)) => out.push_str(&format!(": {code} (HTTP {status})")),
        (Some(code), None) => out.push_str(&format!(": {code}")),
        (None, Some(status)) => out.push_str(&format!(": HTTP {status}")),
        (None, None) => {}
    }
    if let Some(message) = message {
        out.push_str(": ");
        out.push_str(&truncate(message));
    }
    out
}

/// Maps a failed Connect call to what the bridge should do about it.
///
/// The error code wins over the HTTP status (e.g. `LimitExceededException` is a 429 on
/// StartChatContact but a quota, not a rate limit); the status decides when the code is unknown.
pub fn classify(
    plane: Plane,
    op: &str,
    status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
) -> ConnectError {
    let text = describe(op, status, code, message);
    let by_code = code.and_then(|code| match code {
        "AccessDeniedException" | "AccessDenied" => Some(match plane {
            Plane::Participant => ConnectError::ChatEnded(text.clone()),
            Plane::Control => ConnectError::Unauthorized(text.clone()),
        }),
        "ThrottlingException"
        | "TooManyRequestsException"
        | "Throttling"
        | "ThrottledException"
        | "RequestLimitExceeded" => Some(ConnectError::Throttled(text.clone())),
        "LimitExceededException" | "ServiceQuotaExceededException" => {
            Some(ConnectError::QuotaExceeded(text.clone()))
        }
        "ValidationException"
        | "InvalidRequestException"
        | "InvalidParameterException"
        | "ConflictException"
        | "SerializationException" => Some(ConnectError::Invalid(text.clone())),
        "ResourceNotFoundException" => Some(ConnectError::NotFound(text.clone())),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "UnauthorizedException" => Some(ConnectError::Unauthorized(text.clone())),
        "InternalServiceException"
        | "InternalServerException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => Some(ConnectError::Unavailable(text.clone())),
        _ => None,
    });
    // The metric's code: a code named above (a fixed set), else the HTTP status.
    let label = match (code, &by_code, status) {
        (Some(code), Some(_), _) => code.to_owned(),
        (_, _, Some(status)) => status.to_string(),
        _ => "unknown".to_owned(),
    };
    metric_names::platform_error(PLATFORM_CONNECT, label);
    let err = by_code.unwrap_or_else(|| by_status(plane, status, text));
    if matches!(err, ConnectError::Throttled(_)) {
        // The engine's backoff decides the wait: only the answer is counted.
        metric_names::rate_limit_wait(PLATFORM_CONNECT, 0);
    }
    err
}

/// What an error answer whose code is unknown (or missing) means, by its HTTP status.
fn by_status(plane: Plane, status: Option<u16>, text: String) -> ConnectError {
    match status {
        Some(429) => ConnectError::Throttled(text),
        Some(403) => match plane {
            Plane::Participant => ConnectError::ChatEnded(text),
            Plane::Control => ConnectError::Unauthorized(text),
        },
        Some(401) => ConnectError::Unauthorized(text),
        Some(402) => ConnectError::QuotaExceeded(text),
        Some(404) => ConnectError::NotFound(text),
        Some(408) => ConnectError::Unavailable(text),
        Some(s) if (400..500).contains(&s) => ConnectError::Invalid(text),
        _ => ConnectError::Unavailable(text),
    }
}

/// Maps a credentials-provider failure (no credentials, provider down, …).
pub(crate) fn from_credentials(op: &str, err: &CredentialsError) -> ConnectError {
    metric_names::platform_error(PLATFORM_CONNECT, "credentials");
    let text = format!(
        "{op}: could not resolve AWS credentials: {}",
        DisplayErrorContext(err)
    );
    match err {
        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_) => {
            ConnectError::Unavailable(text)
        }
        _ => ConnectError::Unauthorized(text),
    }
}

fn find_credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// Maps an AWS SDK (participant API) failure.
pub(crate) fn from_sdk_error<E>(
    plane: Plane,
    op: &str,
    err: &SdkError<E, HttpResponse>,
) -> ConnectError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let meta = ctx.err();
            let code = meta.code().map(sanitize_error_code);
            classify(plane, op, Some(status), code, meta.message())
        }
        SdkError::TimeoutError(_) => {
            metric_names::platform_error(PLATFORM_CONNECT, "timeout");
            ConnectError::Unavailable(format!("{op}: timed out"))
        }
        SdkError::ConstructionFailure(_) => ConnectError::Invalid(format!(
            "{op}: could not build the request: {}",
            DisplayErrorContext(err)
        )),
        SdkError::DispatchFailure(_) => match find_credentials_error(err) {
            Some(cred) => from_credentials(op, cred),
            None => {
                metric_names::platform_error(PLATFORM_CONNECT, "connect");
                ConnectError::Unavailable(format!("{op}: {}", DisplayErrorContext(err)))
            }
        },
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            if status >= 400 {
                classify(
                    plane,
                    op,
                    Some(status),
                    None,
                    Some("unreadable error response"),
                )
            } else {
                metric_names::platform_error(PLATFORM_CONNECT, "unexpected_answer");
                ConnectError::Unavailable(format!("{op}: unreadable response (HTTP {status})"))
            }
        }
        _ => {
            metric_names::platform_error(PLATFORM_CONNECT, "transport");
            ConnectError::Unavailable(format!("{op}: {}", DisplayErrorContext(err)))
        }
    }
}

/// Maps a transport failure of the hand-signed control-plane path.
pub(crate) fn from_reqwest(op: &str, err: &reqwest::Error) -> ConnectError {
    let (what, code) = if err.is_timeout() {
        ("timed out", "timeout")
    } else if err.is_connect() {
        ("could not connect", "connect")
    } else {
        ("request failed", "transport")
    };
    metric_names::platform_error(PLATFORM_CONNECT, code);
    // reqwest's Display includes the URL (no secrets: tokens travel in headers/bodies).
    ConnectError::Unavailable(format!("{op}: {what}: {err}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn sanitizes_codes() {
        assert_eq!(
            sanitize_error_code(
                "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/"
            ),
            "ValidationException"
        );
        assert_eq!(
            sanitize_error_code("com.amazonaws.connect#ResourceNotFoundException"),
            "ResourceNotFoundException"
        );
        assert_eq!(
            sanitize_error_code("aws.protocoltests#FooError:http://x/"),
            "FooError"
        );
        assert_eq!(
            sanitize_error_code("ThrottlingException"),
            "ThrottlingException"
        );
        assert_eq!(sanitize_error_code(" A, B"), "A");
    }

    #[test]
    fn header_wins_over_body() {
        let info = parse_rest_json_error(
            &headers(&[("x-amzn-ErrorType", "AccessDeniedException:http://x/")]),
            br#"{"__type":"com.amazonaws.connect#Other","message":"denied"}"#,
        );
        assert_eq!(info.code.as_deref(), Some("AccessDeniedException"));
        assert_eq!(info.message.as_deref(), Some("denied"));
    }

    #[test]
    fn body_code_then_type() {
        let info = parse_rest_json_error(
            &http::HeaderMap::new(),
            br#"{"code":"ThrottlingException","__type":"X","Message":"slow down"}"#,
        );
        assert_eq!(info.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(info.message.as_deref(), Some("slow down"));

        let info = parse_rest_json_error(
            &http::HeaderMap::new(),
            br#"{"__type":"com.amazonaws.connect#InvalidRequestException","Message":"bad","Reason":{}}"#,
        );
        assert_eq!(info.code.as_deref(), Some("InvalidRequestException"));
        assert_eq!(info.message.as_deref(), Some("bad"));
    }

    #[test]
    fn garbage_body_gives_nothing() {
        let info = parse_rest_json_error(&http::HeaderMap::new(), b"<html>502</html>");
        assert_eq!(info, AwsErrorInfo::default());
        let info = parse_rest_json_error(&http::HeaderMap::new(), b"");
        assert_eq!(info, AwsErrorInfo::default());
        let info = parse_rest_json_error(&http::HeaderMap::new(), br#"[1,2]"#);
        assert_eq!(info, AwsErrorInfo::default());
    }

    #[test]
    fn classification_by_code() {
        use ConnectError as E;
        let c = |plane, status, code| classify(plane, "Op", Some(status), Some(code), None);
        assert!(matches!(
            c(Plane::Participant, 403, "AccessDeniedException"),
            E::ChatEnded(_)
        ));
        assert!(matches!(
            c(Plane::Control, 403, "AccessDeniedException"),
            E::Unauthorized(_)
        ));
        assert!(matches!(
            c(Plane::Control, 429, "ThrottlingException"),
            E::Throttled(_)
        ));
        assert!(matches!(
            c(Plane::Control, 429, "TooManyRequestsException"),
            E::Throttled(_)
        ));
        assert!(matches!(
            c(Plane::Control, 429, "LimitExceededException"),
            E::QuotaExceeded(_)
        ));
        assert!(matches!(
            c(Plane::Participant, 402, "ServiceQuotaExceededException"),
            E::QuotaExceeded(_)
        ));
        for code in [
            "ValidationException",
            "InvalidRequestException",
            "InvalidParameterException",
            "ConflictException",
        ] {
            assert!(
                matches!(c(Plane::Control, 400, code), E::Invalid(_)),
                "{code}"
            );
        }
        assert!(matches!(
            c(Plane::Control, 404, "ResourceNotFoundException"),
            E::NotFound(_)
        ));
        for code in [
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "MissingAuthenticationToken",
        ] {
            assert!(
                matches!(c(Plane::Control, 403, code), E::Unauthorized(_)),
                "{code}"
            );
        }
        assert!(matches!(
            c(Plane::Control, 500, "InternalServiceException"),
            E::Unavailable(_)
        ));
        assert!(matches!(
            c(Plane::Participant, 500, "InternalServerException"),
            E::Unavailable(_)
        ));
    }

    #[test]
    fn classification_by_status() {
        use ConnectError as E;
        let s = |plane, status| classify(plane, "Op", Some(status), None, None);
        assert!(matches!(s(Plane::Control, 429), E::Throttled(_)));
        assert!(matches!(s(Plane::Control, 403), E::Unauthorized(_)));
        assert!(matches!(s(Plane::Participant, 403), E::ChatEnded(_)));
        assert!(matches!(s(Plane::Control, 404), E::NotFound(_)));
        assert!(matches!(s(Plane::Control, 400), E::Invalid(_)));
        assert!(matches!(s(Plane::Control, 500), E::Unavailable(_)));
        assert!(matches!(s(Plane::Control, 503), E::Unavailable(_)));
        assert!(matches!(
            classify(Plane::Control, "Op", Some(418), Some("SomethingNew"), None),
            E::Invalid(_)
        ));
    }

    #[test]
    fn messages_name_the_operation_and_are_bounded() {
        let long = "x".repeat(1000);
        let e = classify(
            Plane::Control,
            "StartChatContact",
            Some(400),
            Some("ValidationException"),
            Some(&long),
        );
        let text = e.to_string();
        assert!(text.contains("StartChatContact: ValidationException (HTTP 400): xxx"));
        assert!(text.chars().count() < 400);
    }
}
