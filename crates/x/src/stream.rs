//! The X Activity API stream: `GET /2/activity/stream?backfill_minutes=N` with the app bearer
//! token, the alternative to webhook delivery (nothing to expose to the internet).
//!
//! * The body is newline-delimited JSON: each line one event envelope `{"data":{…}}`, the same
//!   document a webhook POST carries; a bare `\r\n` is a keep-alive, sent at least every 20 s.
//!   Lines may be split across chunks and several may share one; one line longer than
//!   [`MAX_LINE_BYTES`] ends the stream with an error (a hostile or broken server cannot make it
//!   buffer without bound).
//! * An error object in the stream (`{"errors":[{"title":"operational-disconnect",…}]}`) is
//!   [`StreamError::Disconnect`]; nothing at all (not even a keep-alive) for the caller's
//!   `silence` is [`StreamError::Silent`]: either way the caller reconnects.
//! * Opening: 429 with `connection_issue` (or the `streaming-connection` problem type) is
//!   [`StreamError::TooManyConnections`] (X allows 2 connections), other 429s
//!   [`StreamError::RateLimited`].
//! * [`reconnect_delay`] is X's reconnect guidance (handling-disconnections): network errors back
//!   off linearly by 250 ms up to 16 s, HTTP errors exponentially from 5 s up to 320 s, 429s
//!   exponentially from 60 s.
//!
//! Event bodies are never logged.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{StatusCode, header};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::manage::AppClient;
use crate::problem::{Problem, one_line, status_reason};
use crate::rate_limit;
use crate::transport::read_prefix;

/// The longest event line accepted.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// The most `backfill_minutes` X accepts.
pub const MAX_BACKFILL_MINUTES: u8 = 5;
/// How long to wait for the answer head when opening.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error answer is read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why the stream gave no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("the activity stream was silent for too long (no event, no keep-alive)")]
    Silent,
    #[error("X closed the activity stream")]
    Closed,
    #[error("X disconnected the activity stream: {0}")]
    Disconnect(String),
    #[error("X refused the activity stream: too many connections for this app")]
    TooManyConnections { reset_at_s: Option<i64> },
    #[error("X rate-limited the activity stream")]
    RateLimited { reset_at_s: Option<i64> },
    #[error("X refused the bearer token for the activity stream: {0}")]
    Unauthorized(String),
    #[error("X answered the activity stream with HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the activity stream connection failed: {0}")]
    Transport(String),
    #[error("an activity stream line is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("{0}")]
    Invalid(String),
}

/// What a reconnect waits out (see [`reconnect_delay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconnectKind {
    /// Connection refused or reset, timeouts, silence, a closed or disconnected stream.
    Network,
    /// An HTTP error answer worth retrying (5xx, 401/403 after a fix, …).
    Http,
    /// 429 (rate limit or too many connections).
    RateLimited,
}

impl ReconnectKind {
    /// The kind of wait after `error`.
    pub fn of(error: &StreamError) -> Self {
        match error {
            StreamError::TooManyConnections { .. } | StreamError::RateLimited { .. } => {
                Self::RateLimited
            }
            StreamError::Http { .. } | StreamError::Unauthorized(_) | StreamError::Invalid(_) => {
                Self::Http
            }
            _ => Self::Network,
        }
    }
}

/// How long to wait before reconnect attempt `attempt` (1 = the first after a failed reconnect;
/// 0 counts as 1), with `jitter` in `[0, 1)` adding up to 20 % so that instances spread out.
pub fn reconnect_delay(kind: ReconnectKind, attempt: u32, jitter: f64) -> Duration {
    let n = attempt.max(1);
    let doublings = (n - 1).min(16);
    let base = match kind {
        ReconnectKind::Network => {
            Duration::from_millis(250_u64.saturating_mul(u64::from(n))).min(Duration::from_secs(16))
        }
        ReconnectKind::Http => {
            Duration::from_secs(5_u64 << doublings).min(Duration::from_secs(320))
        }
        // X gives no ceiling; 16 minutes outlasts its 15-minute windows.
        ReconnectKind::RateLimited => {
            Duration::from_secs(60_u64 << doublings).min(Duration::from_secs(960))
        }
    };
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    base + base.mul_f64(0.2 * jitter)
}

/// An open activity stream.
#[derive(Debug)]
pub struct ActivityStream {
    response: reqwest::Response,
    buffer: BytesMut,
    /// Bytes of `buffer` already searched for a newline.
    scanned: usize,
    ended: bool,
}

/// Enough of a line to tell an event from an error object.
#[derive(Deserialize)]
struct Probe {
    data: Option<IgnoredAny>,
    errors: Option<IgnoredAny>,
    title: Option<IgnoredAny>,
}

impl AppClient {
    /// Opens `GET /2/activity/stream` with up to 5 minutes of backfill (events X delivered while
    /// no stream was connected).
    pub async fn open_activity_stream(
        &self,
        backfill_minutes: u8,
    ) -> Result<ActivityStream, StreamError> {
        if backfill_minutes > MAX_BACKFILL_MINUTES {
            return Err(StreamError::Invalid(format!(
                "backfill_minutes must be 0 to {MAX_BACKFILL_MINUTES}, not {backfill_minutes}"
            )));
        }
        let mut url = self
            .endpoint("/2/activity/stream")
            .map_err(|e| StreamError::Invalid(e.to_string()))?;
        if backfill_minutes > 0 {
            url.query_pairs_mut()
                .append_pair("backfill_minutes", &backfill_minutes.to_string());
        }
        let authorization = self
            .bearer_header()
            .map_err(|e| StreamError::Unauthorized(e.to_string()))?;
        let send = self
            .stream_http
            .get(url)
            .header(header::AUTHORIZATION, authorization)
            .send();
        let response = match tokio::time::timeout(OPEN_TIMEOUT, send).await {
            Err(_) => {
                return Err(StreamError::Transport(
                    "X did not answer the stream request in time".into(),
                ));
            }
            Ok(r) => r.map_err(transport)?,
        };
        let status = response.status();
        if status == StatusCode::OK {
            tracing::info!("activity stream connected");
            return Ok(ActivityStream {
                response,
                buffer: BytesMut::new(),
                scanned: 0,
                ended: false,
            });
        }
        let headers = response.headers().clone();
        let body = read_bounded(response).await;
        Err(open_error(status, &headers, &body))
    }
}

fn transport(e: reqwest::Error) -> StreamError {
    StreamError::Transport(e.without_url().to_string())
}

async fn read_bounded(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let read = read_prefix(&mut response, ERROR_BODY_LIMIT, &mut body);
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    body
}

/// Classifies a failed opening.
pub fn open_error(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> StreamError {
    let problem = Problem::parse(body);
    let summary = problem
        .as_ref()
        .and_then(Problem::summary)
        .unwrap_or_else(|| status_reason(status));
    let reset_at_s = rate_limit::reset_at_s(headers);
    match status.as_u16() {
        429 => {
            let connections = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .is_some_and(|v| v.get("connection_issue").is_some())
                || problem
                    .as_ref()
                    .is_some_and(|p| p.kind() == Some("streaming-connection"));
            crate::error::count_error_answer(status, headers, !connections);
            if connections {
                StreamError::TooManyConnections { reset_at_s }
            } else {
                StreamError::RateLimited { reset_at_s }
            }
        }
        401 | 403 => {
            crate::error::count_error_answer(status, headers, false);
            StreamError::Unauthorized(summary)
        }
        code => {
            crate::error::count_error_answer(status, headers, false);
            StreamError::Http {
                status: code,
                message: summary,
            }
        }
    }
}

impl ActivityStream {
    /// The next event line (raw bytes of one JSON document), skipping keep-alives;
    /// `Err(Silent)` when nothing (not even a keep-alive) arrived for `silence` (the caller
    /// reconnects); `Err(Closed)` at the end of the stream; `Err(Disconnect(reason))` for an
    /// in-stream error object.
    pub async fn next_event(&mut self, silence: Duration) -> Result<Bytes, StreamError> {
        loop {
            if let Some(line) = self.next_line() {
                if let Some(event) = classify_line(line)? {
                    return Ok(event);
                }
                continue;
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err(StreamError::LineTooLong {
                    limit: MAX_LINE_BYTES,
                });
            }
            if self.ended {
                // A last line without its newline.
                let rest = self.buffer.split().freeze();
                self.scanned = 0;
                if let Some(event) = classify_line(rest)? {
                    return Ok(event);
                }
                return Err(StreamError::Closed);
            }
            match tokio::time::timeout(silence, self.response.chunk()).await {
                Err(_) => return Err(StreamError::Silent),
                Ok(Err(e)) => return Err(transport(e)),
                Ok(Ok(None)) => self.ended = true,
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
            }
        }
    }

    /// The next complete line (without its end), if the buffer holds one.
    fn next_line(&mut self) -> Option<Bytes> {
        let at = self.buffer[self.scanned..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| self.scanned + i);
        match at {
            Some(i) => {
                let mut line = self.buffer.split_to(i + 1);
                line.truncate(i);
                self.scanned = 0;
                Some(line.freeze())
            }
            None => {
                self.scanned = self.buffer.len();
                None
            }
        }
    }
}

/// An event, `None` for a keep-alive or an unknown line, or the disconnect an error object
/// announces.
fn classify_line(line: Bytes) -> Result<Option<Bytes>, StreamError> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.len() > MAX_LINE_BYTES {
        return Err(StreamError::LineTooLong {
            limit: MAX_LINE_BYTES,
        });
    }
    let probe = serde_json::from_slice::<Probe>(trimmed).ok();
    match probe {
        Some(p) if p.data.is_some() => Ok(Some(line.slice_ref(trimmed))),
        Some(p) if p.errors.is_some() || p.title.is_some() => {
            let problem = Problem::parse(trimmed).unwrap_or_default();
            let first = problem.errors.first();
            let title = first
                .and_then(|e| e.title.clone())
                .or_else(|| problem.title.clone());
            let detail = first
                .and_then(|e| e.detail.clone().or_else(|| e.message.clone()))
                .or_else(|| problem.detail.clone());
            let reason = match (title, detail) {
                (Some(t), Some(d)) => format!("{t}: {d}"),
                (Some(s), None) | (None, Some(s)) => s,
                (None, None) => "no reason given".into(),
            };
            Err(StreamError::Disconnect(one_line(&reason, 300)))
        }
        _ => {
            tracing::debug!(
                bytes = trimmed.len(),
                "activity stream line that is not an event skipped"
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_follow_x_guidance() {
        let d = |k, a| reconnect_delay(k, a, 0.0);
        assert_eq!(d(ReconnectKind::Network, 1), Duration::from_millis(250));
        assert_eq!(d(ReconnectKind::Network, 0), Duration::from_millis(250));
        assert_eq!(d(ReconnectKind::Network, 4), Duration::from_secs(1));
        assert_eq!(d(ReconnectKind::Network, 1000), Duration::from_secs(16));
        assert_eq!(d(ReconnectKind::Http, 1), Duration::from_secs(5));
        assert_eq!(d(ReconnectKind::Http, 2), Duration::from_secs(10));
        assert_eq!(d(ReconnectKind::Http, 7), Duration::from_secs(320));
        assert_eq!(d(ReconnectKind::Http, u32::MAX), Duration::from_secs(320));
        assert_eq!(d(ReconnectKind::RateLimited, 1), Duration::from_secs(60));
        assert_eq!(d(ReconnectKind::RateLimited, 2), Duration::from_secs(120));
        assert_eq!(d(ReconnectKind::RateLimited, 50), Duration::from_secs(960));
        assert_eq!(
            reconnect_delay(ReconnectKind::Http, 1, 0.5),
            Duration::from_millis(5500)
        );
        assert_eq!(
            reconnect_delay(ReconnectKind::Http, 1, f64::NAN),
            Duration::from_secs(5)
        );
        assert_eq!(
            ReconnectKind::of(&StreamError::TooManyConnections { reset_at_s: None }),
            ReconnectKind::RateLimited
        );
        assert_eq!(
            ReconnectKind::of(&StreamError::Silent),
            ReconnectKind::Network
        );
    }

    #[test]
    fn lines_are_events_keepalives_or_disconnects() {
        let ev = Bytes::from_static(b" {\"data\":{\"event_type\":\"dm.received\"}}\r");
        assert_eq!(
            classify_line(ev).unwrap().unwrap(),
            Bytes::from_static(b"{\"data\":{\"event_type\":\"dm.received\"}}")
        );
        assert_eq!(classify_line(Bytes::from_static(b"\r")).unwrap(), None);
        let e = classify_line(Bytes::from_static(br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#)).unwrap_err();
        assert_eq!(
            e,
            StreamError::Disconnect("operational-disconnect: This stream has been disconnected upstream for operational reasons.".into())
        );
        assert_eq!(classify_line(Bytes::from_static(b"garbage")).unwrap(), None);
    }
}
