//! Reading one segment body of an upload: multipart (`media` + small fields) or JSON (base64
//! `media`), the media streamed into the upload's running hash within the segment and total limits.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::media::files::HashSink;
use crate::media::stream::{BodyError, collect_body};

/// Small multipart fields (`segment_index`, `media_category`…) larger than this are refused.
const MAX_FIELD_BYTES: usize = 1024;
/// Room for the JSON around a base64 segment.
const JSON_SLACK: u64 = 64 * 1024;

/// Non-media fields of a segment body.
pub(super) type Fields = HashMap<String, String>;

/// Reads a segment body (multipart with `media` + small fields, or JSON with base64 `media`),
/// streaming the media into `sink` with at most `segment_limit` bytes for this body and
/// `total_limit` for the sink. Returns the other fields and the media's length.
pub(super) async fn read_segment(
    headers: &HeaderMap,
    body: Body,
    sink: &mut HashSink,
    segment_limit: u64,
    total_limit: u64,
) -> Result<(Fields, u64), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let start = sink.len();
    let check = |sink: &HashSink, more: usize| -> Result<(), String> {
        let segment = sink.len() - start + more as u64;
        if segment > segment_limit {
            return Err(format!(
                "The segment exceeds the maximum segment size of {segment_limit} bytes"
            ));
        }
        if sink.len() + more as u64 > total_limit {
            return Err(format!(
                "The appended bytes exceed total_bytes ({total_limit})"
            ));
        }
        Ok(())
    };
    let mut fields = Fields::new();
    let mut media_seen = false;
    if content_type.starts_with("multipart/form-data") {
        let mut request = Request::new(body);
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, ct.clone());
        }
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("Invalid multipart body: {e}"))?;
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            if name == "media" {
                if media_seen {
                    return Err("Only one `media` field is allowed".into());
                }
                media_seen = true;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
                {
                    check(sink, chunk.len())?;
                    sink.push(&chunk);
                }
            } else {
                let mut value = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
                {
                    value.extend_from_slice(&chunk);
                    if value.len() > MAX_FIELD_BYTES {
                        return Err(format!("The `{name}` field is too long"));
                    }
                }
                fields.insert(name, String::from_utf8_lossy(&value).trim().to_owned());
            }
        }
    } else if content_type.starts_with("application/json") {
        let limit = segment_limit.saturating_mul(4) / 3 + JSON_SLACK;
        let raw = collect_body(body, limit).await.map_err(|e| match e {
            BodyError::TooLarge { .. } => {
                format!("The segment exceeds the maximum segment size of {segment_limit} bytes")
            }
            BodyError::Broken(why) => format!("The body could not be read: {why}"),
        })?;
        let obj: Map<String, Value> = match serde_json::from_slice(&raw) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err("$: must be a JSON object".into()),
            Err(e) => return Err(format!("Request body is not valid JSON: {e}")),
        };
        for (name, value) in obj {
            if name == "media" {
                let text = value.as_str().ok_or("$.media: string expected")?;
                let bytes = STANDARD
                    .decode(text)
                    .map_err(|e| format!("$.media is not valid base64: {e}"))?;
                check(sink, bytes.len())?;
                sink.push(&bytes);
                media_seen = true;
            } else {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                fields.insert(name, text);
            }
        }
    } else {
        return Err(format!(
            "Content-Type must be multipart/form-data or application/json, not `{content_type}`"
        ));
    }
    if !media_seen {
        return Err("The `media` field is required".into());
    }
    Ok((fields, sink.len() - start))
}
