//! API Gateway (REST v1, HTTP API v2) and function-URL events ⇄ HTTP requests and responses, so
//! the very router of `serve` answers them.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use axum::body::Body;
use base64::Engine;
use http::{HeaderMap, Request, Response};
use serde_json::{Value, json};

use super::event::EventError;

/// Largest response body the bridge produces (its answers are small JSON or text).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub fn request_v1(ev: &ApiGatewayProxyRequest) -> Result<Request<Body>, EventError> {
    let path = ev.path.clone().unwrap_or_else(|| "/".to_owned());
    let mut query = String::new();
    // The iterator yields every (key, value) pair, repeated keys included.
    for (k, v) in ev.multi_value_query_string_parameters.iter() {
        push_query(&mut query, k, v);
    }
    if query.is_empty() {
        for (k, v) in ev.query_string_parameters.iter() {
            push_query(&mut query, k, v);
        }
    }
    // multiValueHeaders carries every value; headers only the last of each.
    let headers = if ev.multi_value_headers.is_empty() {
        &ev.headers
    } else {
        &ev.multi_value_headers
    };
    build(
        ev.http_method.clone(),
        &path,
        &query,
        headers,
        ev.body.as_deref(),
        ev.is_base64_encoded,
        "API Gateway (REST)",
    )
}

pub fn request_v2(ev: &ApiGatewayV2httpRequest) -> Result<Request<Body>, EventError> {
    let mut path = ev.raw_path.clone().unwrap_or_else(|| "/".to_owned());
    // HTTP APIs with a named stage put it in front of the path.
    if let Some(stage) = ev
        .request_context
        .stage
        .as_deref()
        .filter(|s| *s != "$default")
        && let Some(rest) = path.strip_prefix(&format!("/{stage}/"))
    {
        path = format!("/{rest}");
    }
    let query = ev.raw_query_string.clone().unwrap_or_default();
    let method = ev.request_context.http.method.clone();
    build(
        method,
        &path,
        &query,
        &ev.headers,
        ev.body.as_deref(),
        ev.is_base64_encoded,
        "HTTP API / function URL",
    )
}

fn push_query(query: &mut String, k: &str, v: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(
        &percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC).to_string(),
    );
    query.push('=');
    query.push_str(
        &percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string(),
    );
}

fn build(
    method: http::Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<&str>,
    base64: bool,
    kind: &'static str,
) -> Result<Request<Body>, EventError> {
    let malformed = |reason: String| EventError::Malformed { kind, reason };
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    // The body as API Gateway received it: the X signature covers these exact bytes.
    let bytes = match (body, base64) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.as_bytes().to_vec(),
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| malformed(format!("body is not base64: {e}")))?,
    };
    let mut req = Request::builder().method(method).uri(&uri);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.body(Body::from(bytes))
        .map_err(|e| malformed(e.to_string()))
}

/// The response in the shape API Gateway REST (v1) expects.
pub async fn response_v1(resp: Response<Body>) -> Value {
    let (status, headers, body) = parts(resp).await;
    let mut multi = serde_json::Map::new();
    for (name, value) in &headers {
        let entry = multi
            .entry(name.as_str().to_owned())
            .or_insert_with(|| json!([]));
        if let (Some(list), Ok(v)) = (entry.as_array_mut(), value.to_str()) {
            list.push(json!(v));
        }
    }
    json!({"statusCode": status, "multiValueHeaders": multi, "body": body, "isBase64Encoded": false})
}

/// The response in the shape API Gateway HTTP APIs (v2) and function URLs expect.
pub async fn response_v2(resp: Response<Body>) -> Value {
    let (status, headers, body) = parts(resp).await;
    let mut flat = serde_json::Map::new();
    for name in headers.keys() {
        let joined: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        flat.insert(name.as_str().to_owned(), json!(joined.join(",")));
    }
    json!({"statusCode": status, "headers": flat, "body": body, "isBase64Encoded": false})
}

async fn parts(resp: Response<Body>) -> (u16, HeaderMap, String) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    (
        parts.status.as_u16(),
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn v1_request_keeps_the_exact_body_and_headers() {
        let raw = std::fs::read_to_string(format!(
            "{}/../../testdata/apigw-x-webhook-text-dm.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let ev: ApiGatewayProxyRequest = serde_json::from_str(&raw).unwrap();
        let req = request_v1(&ev).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/webhooks");
        assert_eq!(
            req.headers()["x-twitter-webhooks-signature"],
            "sha256=8Ev9fXTQJqhkm3vqChsn77SaqsA3ZuZUEwvoghH8TUI="
        );
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body.len(), 1570);
    }

    #[tokio::test]
    async fn responses_have_the_shape_of_their_source() {
        let resp = || {
            Response::builder()
                .status(401)
                .header("content-type", "text/plain")
                .body(Body::from("no\n"))
                .unwrap()
        };
        let v1 = response_v1(resp()).await;
        assert_eq!(v1["statusCode"], 401);
        assert_eq!(v1["multiValueHeaders"]["content-type"][0], "text/plain");
        assert_eq!(v1["body"], "no\n");
        let v2 = response_v2(resp()).await;
        assert_eq!(v2["headers"]["content-type"], "text/plain");
    }
}
