//! `GET /2/activity/stream`: the X Activity API's persistent HTTP stream (app-only Bearer).
//!
//! * 200, chunked, `content-type: application/json`; each event is one JSON line ending `\r\n`;
//!   a bare `\r\n` keep-alive every `stream_keepalive_ms`.
//! * On connect, the logged events of the last `backfill_minutes` (0–5) come first, in order
//!   (`start_time` / `end_time`, RFC 3339, narrow them).
//! * More than `max_stream_connections` ⇒ 429 `ConnectionException` / `TooManyConnections`.
//! * Controls: drop every connection abruptly, go silent (no keep-alives and no events until
//!   resumed; events in between are only in the log and backfills).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::mpsc;

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, record_call};
use crate::x::problem::{self, XReply, rate_headed};
use crate::x::records::XOp;
use crate::x::stream_connections::Chunk;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/2/activity/stream", get(stream))
}

/// Removes its connection when the response body is dropped (the client went away).
struct Guard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock(&self.shared.x).streams.remove(self.id);
    }
}

/// RFC 3339 → Unix ms.
fn parse_time(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

struct StreamQuery {
    backfill_minutes: u32,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
}

fn parse_query(raw: &str) -> Result<StreamQuery, serde_json::Value> {
    let mut q = StreamQuery {
        backfill_minutes: 0,
        start_ms: None,
        end_ms: None,
    };
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let bad =
            |msg: String| problem::invalid_request(vec![problem::param_error(&name, &value, msg)]);
        match &*name {
            "backfill_minutes" => match value.parse::<u32>() {
                Ok(n) if n <= 5 => q.backfill_minutes = n,
                _ => {
                    return Err(bad(format!(
                        "The `backfill_minutes` query parameter value [{value}] is not between 0 and 5"
                    )));
                }
            },
            "start_time" | "end_time" => {
                let Some(ms) = parse_time(&value) else {
                    return Err(bad(format!(
                        "The `{name}` query parameter value [{value}] is not a valid RFC 3339 time"
                    )));
                };
                if name == "start_time" {
                    q.start_ms = Some(ms);
                } else {
                    q.end_ms = Some(ms);
                }
            }
            other => {
                return Err(bad(format!(
                    "The query parameter [{other}] is not one of [backfill_minutes,start_time,end_time]"
                )));
            }
        }
    }
    Ok(q)
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let rate = match admit_as(
        &shared,
        &req,
        XOp::ActivityStream,
        FaultOp::ActivityStream,
        Accept::APP,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return finish(&shared, XOp::ActivityStream, &req, reply),
    };
    let query = match parse_query(req.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(body) => {
            let reply = XReply::new(StatusCode::BAD_REQUEST, body, rate).rejected("invalid query");
            return finish(&shared, XOp::ActivityStream, &req, reply);
        }
    };
    let now_ms = clock::now_unix_ms();
    let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
    let id = {
        let mut x = lock(&shared.x);
        if x.streams.len() >= shared.cfg.x.max_stream_connections {
            drop(x);
            let reply = XReply::new(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "title": "ConnectionException",
                    "detail": "This stream is currently at the maximum allowed connection limit.",
                    "connection_issue": "TooManyConnections",
                    "type": "https://api.x.com/2/problems/streaming-connection",
                }),
                rate,
            )
            .rejected("too many stream connections");
            return finish(&shared, XOp::ActivityStream, &req, reply);
        }
        // Backfill: the logged events of the window, in order, before anything live.
        let from = now_ms - i64::from(query.backfill_minutes) * 60_000;
        let mut sent = 0;
        if query.backfill_minutes > 0 {
            for event in x.event_log.iter().filter(|e| {
                e.at_ms >= from.max(query.start_ms.unwrap_or(i64::MIN))
                    && e.at_ms <= query.end_ms.unwrap_or(i64::MAX)
            }) {
                let _ = tx.send(Ok(Bytes::from(format!("{}\r\n", event.body))));
                sent += 1;
            }
        }
        x.streams.open(query.backfill_minutes, sent, tx.clone())
    };
    record_call(&shared, XOp::ActivityStream, &req, 200, None);
    tracing::info!(
        connection = id,
        backfill_minutes = query.backfill_minutes,
        "activity stream opened"
    );
    let keepalive = Duration::from_millis(shared.cfg.x.stream_keepalive_ms.max(1));
    let ticker = Arc::clone(&shared);
    shared.spawn(async move {
        loop {
            tokio::time::sleep(keepalive).await;
            if tx.is_closed() {
                break;
            }
            let (open, silent) = {
                let x = lock(&ticker.x);
                (x.streams.is_open(id), x.streams.silent())
            };
            if !open {
                break;
            }
            if !silent && tx.send(Ok(Bytes::from_static(b"\r\n"))).is_err() {
                break;
            }
        }
    });
    let guard = Guard {
        shared: Arc::clone(&shared),
        id,
    };
    let body = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let chunk = rx.recv().await?;
        Some((chunk, (rx, guard)))
    });
    let mut response = Body::from_stream(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    rate_headed(response, rate)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_rules() {
        assert_eq!(
            parse_query("backfill_minutes=5").unwrap().backfill_minutes,
            5
        );
        assert!(parse_query("backfill_minutes=6").is_err());
        assert!(parse_query("other=1").is_err());
        let q = parse_query("start_time=2026-12-04T10:00:00Z").unwrap();
        assert_eq!(q.start_ms, Some(1_796_378_400_000));
        assert!(parse_query("end_time=yesterday").is_err());
    }
}
