//! The shapes of management requests and answers: ids safe in a path, answers that must be JSON
//! objects, `data` as an object or a list, and text fields that may be strings or numbers.

use serde_json::Value;

use super::error::ManageError;
use crate::problem::one_line;

/// A text field: a non-empty string, or a number written out.
pub(super) fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` as a list of objects: an object alone, a list, or nothing.
pub(super) fn data_items(answer: &Value) -> Vec<&Value> {
    match answer.get("data") {
        Some(Value::Array(items)) => items.iter().filter(|i| i.is_object()).collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

/// A successful answer to `what`, which must be a JSON object.
pub(super) fn parse_json(what: &str, body: &[u8]) -> Result<Value, ManageError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(ManageError::unexpected(what, body)),
    }
}

/// An id that is safe in a path: X's ids are digits.
pub(super) fn path_id(id: &str) -> Result<&str, ManageError> {
    let id = id.trim();
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(ManageError::new(
            None,
            format!("{:?} is not an X id", one_line(id, 40)),
        ))
    }
}
