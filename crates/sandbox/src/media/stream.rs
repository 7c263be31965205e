//! Moving file bytes without holding them: file responses streamed from their source, and request
//! bodies hashed chunk by chunk as they arrive.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::media::files::{CHUNK, Generator, HashSink, Source, StoredFile, generated_range_stream};

/// The file as a `200 OK` streamed from its source, with `Content-Type` and (unless the file's
/// serve options omit it) `Content-Length`. A file whose bytes were not retained answers 404.
pub(crate) fn file_response(file: &StoredFile, content_disposition: Option<&str>) -> Response {
    let omit_length = file.info.serve.omit_content_length;
    let body = match &file.source {
        Source::HashOnly => {
            return (
                StatusCode::NOT_FOUND,
                format!(
                    "the sandbox kept only the size and SHA-256 of {} ({} bytes)",
                    file.info.file_id, file.info.size
                ),
            )
                .into_response();
        }
        Source::Bytes(bytes) if !omit_length => Body::from(bytes.clone()),
        Source::Bytes(bytes) => {
            // A stream of unknown length makes hyper answer with chunked transfer encoding.
            let chunks: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
                .step_by(CHUNK)
                .map(|at| Ok(bytes.slice(at..(at + CHUNK).min(bytes.len()))))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        Source::Generated { size, seed } => {
            Body::from_stream(generated_range_stream(Generator::new(*seed), 0, *size))
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.info.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if omit_length {
        headers.remove(header::CONTENT_LENGTH);
    } else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.info.size));
    }
    if let Some(value) = content_disposition.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Why streaming a body stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the allowed number of bytes arrived (the count when it was noticed).
    TooLarge { limit: u64 },
    /// The connection failed or the client stopped sending.
    Broken(String),
}

/// Streams `body` into `sink`, failing as soon as `sink` would exceed `limit` bytes in total.
pub(crate) async fn hash_body(
    body: Body,
    sink: &mut HashSink,
    limit: u64,
) -> Result<(), BodyError> {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if sink.len() + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        sink.push(&chunk);
    }
    Ok(())
}

/// Reads and drops up to `limit` bytes of `body` (so that a refusal sent before the body was read
/// reaches a client that is still sending it). Returns how many bytes were read.
pub(crate) async fn drain_body(body: Body, limit: u64) -> u64 {
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while read < limit {
        match stream.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            _ => break,
        }
    }
    read
}

/// Collects a small body (JSON) up to `limit` bytes.
pub(crate) async fn collect_body(body: Body, limit: u64) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
