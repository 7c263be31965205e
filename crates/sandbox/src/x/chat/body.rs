//! Reading X Chat request bodies (a JSON object, typed fields, X's `$.field:` messages) and the
//! chat routes' refusals in X's problem shape.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::x::problem::{self, XReply};
use crate::x::state::RateInfo;

pub(crate) type Object = Map<String, Value>;

/// The body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Object, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("$: must be a JSON object".into()),
        Err(e) => Err(format!("Request body is not valid JSON: {e}")),
    }
}

/// A required, non-empty string field.
pub(crate) fn required_str<'a>(obj: &'a Object, field: &str) -> Result<&'a str, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(format!("$.{field}: is missing but it is required")),
        Some(Value::String(s)) if s.is_empty() => {
            Err(format!("$.{field}: must be at least 1 characters long"))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("$.{field}: string expected")),
    }
}

/// An optional string field (absent or null ⇒ `None`).
pub(crate) fn optional_str<'a>(obj: &'a Object, field: &str) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("$.{field}: string expected")),
    }
}

/// A required object field.
pub(crate) fn required_object<'a>(obj: &'a Object, field: &str) -> Result<&'a Object, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(format!("$.{field}: is missing but it is required")),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(format!("$.{field}: object expected")),
    }
}

/// A required array field.
pub(crate) fn required_array<'a>(obj: &'a Object, field: &str) -> Result<&'a [Value], String> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(format!("$.{field}: is missing but it is required")),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("$.{field}: array expected")),
    }
}

/// A required non-negative integer given as a JSON number or a decimal string (X's examples
/// send `segment_index` and `num_parts` as strings, the schema says integer).
pub(crate) fn integer(obj: &Object, field: &str) -> Result<u64, String> {
    let parsed = match obj.get(field) {
        None | Some(Value::Null) => {
            return Err(format!("$.{field}: is missing but it is required"));
        }
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Some(_) => None,
    };
    parsed.ok_or_else(|| format!("$.{field}: must be a non-negative integer"))
}

/// Whether `s` is a decimal version / id string (1–19 digits).
pub(crate) fn is_version(s: &str) -> bool {
    crate::x::calls::is_x_id(s)
}

/// Whether `s` is a signature version the SDK still verifies (2 or more; it emits 7).
pub(crate) fn is_signature_version(s: &str) -> bool {
    is_version(s) && s.parse::<u64>().is_ok_and(|v| v >= 2)
}

/// Longest client message id accepted (the SDK's are 36-character UUIDs).
const MAX_MESSAGE_ID: usize = 128;

/// A client message id usable in a signed string: 1–128 printable ASCII characters, no comma
/// (the signed strings join their components with commas, unescaped).
pub(crate) fn message_id<'a>(obj: &'a Object, field: &str) -> Result<&'a str, String> {
    let id = required_str(obj, field)?;
    if id.len() > MAX_MESSAGE_ID || !id.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(format!(
            "$.{field}: must be 1-{MAX_MESSAGE_ID} printable ASCII characters without a comma"
        ));
    }
    Ok(id)
}

/// 400 with `title` naming what failed (e.g. `INVALID_SENDER_SIGNATURE`) and `detail` saying
/// why; the detail is also the record's rejection.
pub(crate) fn refused(rate: RateInfo, title: &str, detail: impl Into<String>) -> XReply {
    let detail = detail.into();
    XReply::new(
        StatusCode::BAD_REQUEST,
        json!({
            "title": title,
            "type": problem::INVALID_REQUEST,
            "status": 400,
            "detail": detail,
            "errors": [{"message": detail, "parameters": {}}],
        }),
        rate,
    )
    .rejected(detail)
}

/// 403 Forbidden with `detail`.
pub(crate) fn forbidden(rate: RateInfo, detail: impl Into<String>) -> XReply {
    let detail = detail.into();
    XReply::new(StatusCode::FORBIDDEN, problem::forbidden(&detail), rate).rejected(detail)
}

/// 404 resource-not-found with `detail`.
pub(crate) fn not_found(rate: RateInfo, detail: impl Into<String>) -> XReply {
    let detail = detail.into();
    XReply::new(
        StatusCode::NOT_FOUND,
        json!({
            "title": "Not Found Error",
            "type": problem::RESOURCE_NOT_FOUND,
            "status": 404,
            "detail": detail,
        }),
        rate,
    )
    .rejected(detail)
}

/// 409 Conflict with `detail`.
pub(crate) fn conflict(rate: RateInfo, detail: impl Into<String>) -> XReply {
    let detail = detail.into();
    XReply::new(
        StatusCode::CONFLICT,
        json!({
            "title": "Conflict",
            "type": "about:blank",
            "status": 409,
            "detail": detail,
        }),
        rate,
    )
    .rejected(detail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_typed_like_x_says() {
        let obj = object(br#"{"a":"x","n":3,"s":"12","e":"","bad":"1e3","o":{},"l":[]}"#).unwrap();
        assert_eq!(required_str(&obj, "a").unwrap(), "x");
        assert!(required_str(&obj, "e").unwrap_err().contains("at least 1"));
        assert!(required_str(&obj, "z").unwrap_err().contains("required"));
        assert!(
            required_str(&obj, "n")
                .unwrap_err()
                .contains("string expected")
        );
        assert_eq!(optional_str(&obj, "z").unwrap(), None);
        assert_eq!(integer(&obj, "n").unwrap(), 3);
        assert_eq!(integer(&obj, "s").unwrap(), 12);
        assert!(integer(&obj, "bad").is_err());
        assert!(required_object(&obj, "o").is_ok());
        assert!(required_array(&obj, "l").unwrap().is_empty());
        assert!(object(b"[1]").is_err());
        assert!(object(b"{").is_err());
    }
}
