//! Replay jobs (`POST /2/webhooks/replay`, app Bearer): `{"webhook_id","from_date","to_date"}`
//! (`yyyymmddhhmm` UTC, inclusive minutes, within the last 24 h) ⇒ `{"data":{"job_id",
//! "created_at"}}`, then every logged event for that webhook in the window is re-POSTed, in order,
//! signed; the job counts what was replayed and delivered.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::problem::XReply;
use crate::x::records::{DeliveryKind, ReplayJob, ReplayState, XOp};
use crate::x::webhook_client::{self, SignatureHeader};
use crate::x::webhooks::{refused, unknown_webhook};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/2/webhooks/replay", post(replay))
}

/// `yyyymmddhhmm` UTC → Unix ms of the minute's start.
fn parse_minute(s: &str) -> Option<i64> {
    if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok());
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let t = date
        .with_hms(
            u8::try_from(n(8..10)?).ok()?,
            u8::try_from(n(10..12)?).ok()?,
            0,
        )
        .ok()?
        .assume_utc();
    Some(clock::unix_ms(t))
}

async fn replay(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = replay_reply(&shared, &req, &body).await;
    finish(&shared, XOp::ReplayWebhook, &req, reply)
}

async fn replay_reply(shared: &Arc<Shared>, req: &XRequest, body: &[u8]) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::ReplayWebhook,
        FaultOp::Webhooks,
        Accept::APP,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let bad = |message: &str| XReply::invalid_body(rate, message);
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return bad("$: must be a JSON object");
    };
    let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (webhook_id, from_date, to_date) =
        (field("webhook_id"), field("from_date"), field("to_date"));
    if !is_x_id(&webhook_id) {
        return bad("$.webhook_id: does not match the regex pattern ^[0-9]{1,19}$");
    }
    let (Some(from_ms), Some(to_start)) = (parse_minute(&from_date), parse_minute(&to_date)) else {
        return bad("$.from_date / $.to_date: must be yyyymmddhhmm UTC");
    };
    let to_ms = to_start + 60_000 - 1;
    let now = clock::now_unix_ms();
    if to_ms < from_ms || from_ms < now - DAY_MS {
        return refused(
            "ReplayWindowInvalid",
            "from_date must not be after to_date, and both within the last 24 hours",
            rate,
        );
    }
    if lock(&shared.x).webhook(&webhook_id).is_none() {
        return unknown_webhook(&webhook_id, rate);
    }
    let job = ReplayJob {
        job_id: shared.snowflake.next(),
        webhook_id: webhook_id.clone(),
        from_date,
        to_date,
        state: ReplayState::Running,
        events_replayed: 0,
        events_delivered: 0,
        created_at: clock::now_iso_ms(),
    };
    let answer = json!({"data": {"job_id": job.job_id, "created_at": job.created_at}});
    lock(&shared.x).replays.push(job.clone());
    let runner = Arc::clone(shared);
    shared
        .spawn(async move { run_replay(&runner, &job.job_id, &webhook_id, from_ms, to_ms).await });
    XReply::new(StatusCode::OK, answer, rate)
}

async fn run_replay(shared: &Shared, job_id: &str, webhook_id: &str, from_ms: i64, to_ms: i64) {
    let events: Vec<(Option<String>, String)> = lock(&shared.x)
        .event_log
        .iter()
        .filter(|e| {
            e.webhook_id.as_deref() == Some(webhook_id) && e.at_ms >= from_ms && e.at_ms <= to_ms
        })
        .map(|e| (e.event_id.clone(), e.body.clone()))
        .collect();
    for (event_id, body) in events {
        let delivered = webhook_client::post_to(
            shared,
            webhook_id,
            DeliveryKind::Replay,
            event_id,
            body.into_bytes(),
            SignatureHeader::Valid,
            None,
        )
        .await
        .is_ok_and(|d| d.status.is_some_and(|s| (200..300).contains(&s)));
        if let Some(job) = lock(&shared.x)
            .replays
            .iter_mut()
            .find(|j| j.job_id == job_id)
        {
            job.events_replayed += 1;
            job.events_delivered += u64::from(delivered);
        }
    }
    if let Some(job) = lock(&shared.x)
        .replays
        .iter_mut()
        .find(|j| j.job_id == job_id)
    {
        job.state = ReplayState::Complete;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn replay_minutes() {
        assert_eq!(parse_minute("202612041000"), Some(1_796_378_400_000));
        assert_eq!(parse_minute("202613041000"), None);
        assert_eq!(parse_minute("2026120410"), None);
    }
}
