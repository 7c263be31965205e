//! `GET /2/activity/stream`: framing (`\r\n`-terminated JSON lines, bare `\r\n` keep-alives),
//! backfill, the connection limit, silence and abrupt drops.

use std::time::Duration;

use serde_json::Value;
use xdm_sandbox::{DmSpec, SandboxConfig, SandboxHandle, XConfig, XOp};

use crate::support::sandbox_with;

const CUSTOMER: &str = "55125386";

async fn open(sb: &SandboxHandle, query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/2/activity/stream{query}", sb.base_url()))
        .bearer_auth(&sb.config().x.bearer_token)
        .send()
        .await
        .unwrap()
}

/// Reads chunks until `buf` holds a `\r\n`-terminated line; returns the line (without it).
async fn next_line(resp: &mut reqwest::Response, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..at + 2).take(at).collect();
            return String::from_utf8(line).unwrap();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("a chunk within 5 s")
            .expect("stream open")
            .expect("not ended");
        buf.extend_from_slice(&chunk);
    }
}

/// The next line that is not a keep-alive.
async fn next_event(resp: &mut reqwest::Response, buf: &mut Vec<u8>) -> Value {
    loop {
        let line = next_line(resp, buf).await;
        if !line.is_empty() {
            return serde_json::from_str(&line).unwrap();
        }
    }
}

fn text(event: &Value) -> &str {
    event["data"]["payload"]["direct_message_events"][0]["message_create"]["message_data"]["text"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn stream_frames_backfills_limits_and_drops() {
    let sb = sandbox_with(SandboxConfig {
        x: XConfig {
            stream_keepalive_ms: 100,
            ..XConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let business = sb.config().x.business.id.clone();
    // A stream-only subscription (no webhook).
    sb.subscribe_activity("dm.received", &business, None, Some("stream"))
        .unwrap();
    let earlier = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "before"))
        .await
        .unwrap();
    assert_eq!(earlier.stream_connections, 0);

    // Only the app token opens a stream.
    let user = sb.issue_oauth2_token(&business, &["dm.read", "tweet.read", "users.read"]);
    let refused = reqwest::Client::new()
        .get(format!("{}/2/activity/stream", sb.base_url()))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(open(&sb, "?backfill_minutes=6").await.status(), 400);

    let mut first = open(&sb, "?backfill_minutes=1").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/json");
    let mut buf = Vec::new();
    let backfilled = next_event(&mut first, &mut buf).await;
    assert_eq!(text(&backfilled), "before");
    assert_eq!(backfilled["data"]["tag"], "stream");
    // Keep-alives are bare CRLFs.
    assert_eq!(next_line(&mut first, &mut buf).await, "");

    let mut second = open(&sb, "").await;
    assert_eq!(second.status(), 200);
    let third = open(&sb, "").await;
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["connection_issue"], "TooManyConnections");
    assert_eq!(body["title"], "ConnectionException");
    assert_eq!(sb.stream_connections().len(), 2);

    let live = sb.deliver_dm(DmSpec::text(CUSTOMER, "live")).await.unwrap();
    assert_eq!(live.stream_connections, 2);
    assert_eq!(text(&next_event(&mut first, &mut buf).await), "live");
    let mut buf2 = Vec::new();
    assert_eq!(text(&next_event(&mut second, &mut buf2).await), "live");

    // Silent: nothing is written (not even keep-alives) until resumed; events stay in the log.
    sb.set_streams_silent(true);
    let quiet = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "unheard"))
        .await
        .unwrap();
    assert_eq!(quiet.stream_connections, 0);
    // Keep-alives written before the switch may still be in flight: drain them.
    tokio::time::sleep(Duration::from_millis(150)).await;
    while let Ok(chunk) = tokio::time::timeout(Duration::from_millis(50), second.chunk()).await {
        assert_eq!(chunk.unwrap().unwrap().as_ref(), b"\r\n");
    }
    let waited = tokio::time::timeout(Duration::from_millis(400), second.chunk()).await;
    assert!(waited.is_err(), "a silent stream wrote {waited:?}");
    sb.set_streams_silent(false);
    assert_eq!(sb.x_events().len(), 3);

    // Dropped abruptly: the client sees an error, not a clean end.
    assert_eq!(sb.drop_streams(), 2);
    let mut ended_with_error = false;
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_secs(5), first.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => break,
            Ok(Err(_)) => {
                ended_with_error = true;
                break;
            }
            Err(_) => panic!("no end after the drop"),
        }
    }
    assert!(ended_with_error);
    sb.wait_until("connections closed", Duration::from_secs(5), |h| {
        h.stream_connections().is_empty().then_some(())
    })
    .await
    .unwrap();
    drop(second);
    let attempts: Vec<u16> = sb
        .x_requests()
        .iter()
        .filter(|r| r.op == XOp::ActivityStream)
        .map(|r| r.status)
        .collect();
    assert_eq!(attempts, [403, 400, 200, 200, 429]);
    assert!(
        sb.x_requests()
            .iter()
            .any(|r| r.op == XOp::ActivityStream && r.path.ends_with("?backfill_minutes=1"))
    );
}
