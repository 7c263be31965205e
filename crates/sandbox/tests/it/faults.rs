//! Probabilistic faults, dropped connections, throttling bursts, the down switch and the counters,
//! over real sockets.

use std::sync::OnceLock;

use serde_json::{Value, json};
use xdm_sandbox::{
    DownMode, DropMode, FaultError, FaultOp, FaultProfile, ItemType, SandboxConfig, SandboxHandle,
    Side, ThrottleBurst,
};

use crate::support::{
    connect_customer, http, sandbox, sandbox_with, sigv4, start_chat, start_chat_body, unix_now,
    x_auth, x_creds,
};

/// One client for the whole module: building a reqwest client (its TLS roots) costs tens of
/// milliseconds in a debug build, too much for hundreds of calls. Without pooling: a pooled
/// connection belongs to the runtime of the test that opened it.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
    })
}

/// StartChatContact → status and `{"body","error_type"}`.
async fn start_chat_status(sb: &SandboxHandle) -> (u16, Value) {
    let mut req = client()
        .put(format!("{}/contact/chat", sb.base_url()))
        .json(&start_chat_body(sb, "Elizabeth Fuentes", "hi"));
    for (name, value) in sigv4(&sb.config().connect.region) {
        req = req.header(name, value);
    }
    let resp = req.send().await.expect("answered");
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, json!({"body": body, "error_type": error_type}))
}

/// A raw SendMessage: `Err` when the connection closed without an answer.
async fn send_message(
    sb: &SandboxHandle,
    connection_token: &str,
    content: &str,
    client_token: Option<&str>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut body = json!({"ContentType": "text/plain", "Content": content});
    if let Some(token) = client_token {
        body["ClientToken"] = json!(token);
    }
    let resp = client()
        .post(format!("{}/participant/message", sb.base_url()))
        .header("x-amz-bearer", connection_token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// Customer messages with this content in the contact's transcript.
fn messages_with(sb: &SandboxHandle, contact_id: &str, content: &str) -> Vec<String> {
    sb.contact(contact_id)
        .unwrap()
        .transcript
        .iter()
        .filter(|i| i.item.item_type == ItemType::Message)
        .filter(|i| i.item.content.as_deref() == Some(content))
        .map(|i| i.item.id.clone())
        .collect()
}

async fn chat_with_customer(sb: &SandboxHandle) -> (String, String) {
    let (contact_id, participant_token) = start_chat(sb, "Hola").await;
    let connection_token = connect_customer(sb, &participant_token).await;
    (contact_id, connection_token)
}

async fn create_dm(sb: &SandboxHandle, text: &str) -> Result<reqwest::Response, reqwest::Error> {
    let url = format!(
        "{}/2/dm_conversations/with/55125386/messages",
        sb.base_url()
    );
    client()
        .post(&url)
        .header("authorization", x_auth(x_creds(sb), "POST", &url))
        .json(&json!({"text": text}))
        .send()
        .await
}

#[tokio::test]
async fn error_rates_fail_always_never_or_about_as_often_as_asked() {
    let sb = sandbox().await;
    sb.set_fault_profile(FaultOp::StartChatContact, FaultProfile::errors(1.0))
        .unwrap();
    for _ in 0..5 {
        let (status, seen) = start_chat_status(&sb).await;
        assert_eq!(status, 503, "{seen}");
        assert_eq!(seen["error_type"], "ServiceUnavailableException");
    }
    sb.set_fault_profile(FaultOp::StartChatContact, FaultProfile::errors(0.0))
        .unwrap();
    assert!(sb.fault_profiles().is_empty(), "a no-op profile is removed");
    for _ in 0..5 {
        assert_eq!(start_chat_status(&sb).await.0, 200);
    }

    // 20 % of 200 calls, with a custom error: the seeded PRNG makes the count reproducible.
    sb.reset_stats();
    let profile = FaultProfile::errors(0.2)
        .with_error(FaultError::error(500, "InternalServiceException").with_message("flaky"))
        .with_seed(11);
    sb.set_fault_profile(FaultOp::StartChatContact, profile.clone())
        .unwrap();
    let mut failed = 0;
    for _ in 0..200 {
        let (status, seen) = start_chat_status(&sb).await;
        if status != 200 {
            assert_eq!(
                (status, seen["body"]["message"].as_str()),
                (500, Some("flaky"))
            );
            failed += 1;
        }
    }
    assert!((15..=65).contains(&failed), "{failed} of 200");
    let op = sb.stats().op(FaultOp::StartChatContact);
    assert_eq!(
        (op.calls, op.status_5xx, op.faults.errors),
        (200, failed, failed)
    );
    // Setting the profile again restarts its PRNG: the same calls fail.
    let first_run: Vec<bool> = {
        sb.set_fault_profile(FaultOp::StartChatContact, profile.clone())
            .unwrap();
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(start_chat_status(&sb).await.0 == 200);
        }
        v
    };
    sb.set_fault_profile(FaultOp::StartChatContact, profile)
        .unwrap();
    for ok in first_run {
        assert_eq!(start_chat_status(&sb).await.0 == 200, ok);
    }
}

#[tokio::test]
async fn drop_before_has_no_effect_and_the_client_sees_a_transport_error() {
    let sb = sandbox().await;
    let (contact_id, connection_token) = chat_with_customer(&sb).await;
    sb.set_fault_profile(
        FaultOp::SendMessage,
        FaultProfile::drops(1.0, DropMode::Before),
    )
    .unwrap();
    let err = send_message(&sb, &connection_token, "lost", Some("ct-1"))
        .await
        .expect_err("the connection is dropped");
    assert!(!err.is_status() && err.status().is_none(), "{err:?}");
    assert!(messages_with(&sb, &contact_id, "lost").is_empty());

    sb.clear_fault_profiles();
    let (status, body) = send_message(&sb, &connection_token, "lost", Some("ct-1"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        messages_with(&sb, &contact_id, "lost"),
        [body["Id"].as_str().unwrap()]
    );

    let stats = sb.stats();
    let op = stats.op(FaultOp::SendMessage);
    assert_eq!(
        (
            op.calls,
            op.dropped,
            op.status_2xx,
            op.faults.dropped_before
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(stats.connect.messages_created, 1);
    assert_eq!(stats.connect.client_token_replays, 0);
}

#[tokio::test]
async fn drop_after_keeps_the_effect_and_the_client_token_retry_gets_the_original() {
    let sb = sandbox().await;
    let (contact_id, connection_token) = chat_with_customer(&sb).await;
    sb.set_fault_profile(
        FaultOp::SendMessage,
        FaultProfile::drops(1.0, DropMode::After),
    )
    .unwrap();
    let err = send_message(&sb, &connection_token, "once", Some("ct-9"))
        .await
        .expect_err("the connection is dropped");
    assert!(err.status().is_none(), "{err:?}");
    let ids = messages_with(&sb, &contact_id, "once");
    assert_eq!(ids.len(), 1, "the message is in the transcript");

    sb.clear_fault_profiles();
    let (status, body) = send_message(&sb, &connection_token, "once", Some("ct-9"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Id"], ids[0], "the retry gets the original Id");
    assert_eq!(messages_with(&sb, &contact_id, "once"), ids);

    let stats = sb.stats();
    assert_eq!(stats.op(FaultOp::SendMessage).faults.dropped_after, 1);
    assert_eq!(
        (
            stats.connect.send_message_calls,
            stats.connect.messages_created,
            stats.connect.client_token_replays,
            stats.connect.calls_per_message
        ),
        (2, 1, 1, Some(2.0))
    );

    // X: the DM is recorded although its sender saw the connection close.
    sb.set_fault_profile(FaultOp::CreateDm, FaultProfile::drops(1.0, DropMode::After))
        .unwrap();
    let err = create_dm(&sb, "recorded").await.expect_err("dropped");
    assert!(err.status().is_none(), "{err:?}");
    assert!(
        sb.sent_dms()
            .iter()
            .any(|dm| dm.text.as_deref() == Some("recorded"))
    );
    let stats = sb.stats();
    assert_eq!((stats.x.create_dm_calls, stats.x.dms_created), (1, 1));
}

#[tokio::test]
async fn x_bursts_carry_rate_limit_headers_and_can_hold_the_window() {
    let sb = sandbox().await;
    sb.throttle_burst(FaultOp::CreateDm, 2, 60);
    for _ in 0..2 {
        let resp = create_dm(&sb, "throttled").await.unwrap();
        assert_eq!(resp.status(), 429);
        let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-rate-limit-limit"), "15");
        assert_eq!(header("x-rate-limit-remaining"), "0");
        let reset: i64 = header("x-rate-limit-reset").parse().unwrap();
        let now = unix_now();
        assert!(reset > now && reset <= now + 61, "{reset} vs {now}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429})
        );
    }
    assert_eq!(create_dm(&sb, "through").await.unwrap().status(), 201);
    assert!(sb.throttle_bursts().is_empty());

    // Held window: after the burst, calls before the reset stay throttled.
    sb.throttle_burst_with(
        FaultOp::CreateDm,
        ThrottleBurst::new(1, 30).holding_window().with_limit(200),
    );
    let mut resets = Vec::new();
    for _ in 0..3 {
        let resp = create_dm(&sb, "held").await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["x-rate-limit-limit"], "200");
        resets.push(resp.headers()["x-rate-limit-reset"].clone());
    }
    assert!(resets.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(sb.throttle_bursts()[0].remaining, 0);
    sb.clear_throttle_bursts();
    assert_eq!(create_dm(&sb, "free").await.unwrap().status(), 201);
    assert_eq!(sb.stats().op(FaultOp::CreateDm).faults.throttled, 5);
    assert_eq!(sb.stats().op(FaultOp::CreateDm).status_429, 5);

    // Connect: ThrottlingException.
    let (_, connection_token) = chat_with_customer(&sb).await;
    sb.throttle_burst(FaultOp::SendMessage, 1, 1);
    let (status, body) = send_message(&sb, &connection_token, "x", None)
        .await
        .unwrap();
    assert_eq!(
        (status, body["__type"].as_str()),
        (429, Some("ThrottlingException"))
    );
    assert_eq!(
        send_message(&sb, &connection_token, "x", None)
            .await
            .unwrap()
            .0,
        200
    );
}

#[tokio::test]
async fn down_switch_refuses_one_side_until_switched_back() {
    let sb = sandbox().await;
    sb.set_down(Side::Connect, true);
    assert_eq!(sb.is_down(Side::Connect), Some(DownMode::Unavailable));
    let (status, seen) = start_chat_status(&sb).await;
    assert_eq!(
        (status, seen["error_type"].as_str()),
        (503, Some("ServiceUnavailableException"))
    );
    // The other side is untouched.
    assert_eq!(create_dm(&sb, "x is up").await.unwrap().status(), 201);

    sb.set_down_with(Side::Connect, Some(DownMode::Drop));
    let mut req = http()
        .put(format!("{}/contact/chat", sb.base_url()))
        .json(&start_chat_body(&sb, "A", "hi"));
    for (name, value) in sigv4(&sb.config().connect.region) {
        req = req.header(name, value);
    }
    let err = req.send().await.expect_err("dropped");
    assert!(err.status().is_none());
    assert!(sb.contacts().is_empty());

    sb.set_down(Side::X, true);
    assert_eq!(create_dm(&sb, "x is down").await.unwrap().status(), 503);
    // Public media (served by the fallback) belongs to X as well.
    let media = format!("{}/dm_video/1/vid/avc1/clip.mp4", sb.base_url());
    assert_eq!(client().get(&media).send().await.unwrap().status(), 503);
    sb.set_down_with(Side::X, Some(DownMode::Drop));
    assert!(client().get(&media).send().await.is_err());
    sb.set_down(Side::Connect, false);
    sb.set_down(Side::X, false);
    assert_eq!(start_chat_status(&sb).await.0, 200);
    let stats = sb.stats();
    assert_eq!(stats.op(FaultOp::StartChatContact).faults.down, 2);
    assert_eq!(stats.op(FaultOp::StartChatContact).dropped, 1);
    assert_eq!(stats.op(FaultOp::CreateDm).faults.down, 1);
    let media = stats.op(FaultOp::MediaDownload);
    assert_eq!((media.calls, media.status_5xx, media.dropped), (2, 1, 1));
}

#[tokio::test]
async fn latency_delays_every_call() {
    let sb = sandbox_with(SandboxConfig {
        fault_seed: 3,
        ..SandboxConfig::default()
    })
    .await;
    sb.set_fault_profile(FaultOp::StartChatContact, FaultProfile::latency(40, 20))
        .unwrap();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(start_chat_status(&sb).await.0, 200);
        assert!(started.elapsed() >= std::time::Duration::from_millis(40));
    }
    let faults = sb.stats().op(FaultOp::StartChatContact).faults;
    assert_eq!(faults.delayed, 3);
    assert!(
        (120..=180).contains(&faults.delay_ms),
        "{}",
        faults.delay_ms
    );
    assert_eq!(faults.total(), 0);
}

#[tokio::test]
async fn control_routes_set_profiles_bursts_down_and_read_stats() {
    let sb = sandbox().await;
    let base = format!("{}/_sandbox", sb.base_url());
    let post = |path: &str, body: Value| {
        let url = format!("{base}{path}");
        async move { http().post(url).json(&body).send().await.unwrap() }
    };

    let resp = post(
        "/faults/profiles",
        json!({"side": "Connect", "profile": {"error_rate": 1.0, "seed": 5}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let profiles: Value = resp.json().await.unwrap();
    assert_eq!(profiles["SendMessage"]["error_rate"], 1.0);
    assert!(profiles.get("CreateDm").is_none());
    assert_eq!(start_chat_status(&sb).await.0, 503);
    assert_eq!(
        post(
            "/faults/profiles",
            json!({"op": "SendMessage", "profile": {"error_rate": 2}})
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        post("/faults/profiles", json!({"profile": {}}))
            .await
            .status(),
        400
    );
    let cleared = http()
        .delete(format!("{base}/faults/profiles"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(start_chat_status(&sb).await.0, 200);

    let bursts: Value = post(
        "/faults/burst",
        json!({"op": "StartChatContact", "count": 1, "reset_after_secs": 10}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(bursts[0]["remaining"], 1);
    let (status, seen) = start_chat_status(&sb).await;
    assert_eq!(
        (status, seen["error_type"].as_str()),
        (429, Some("ThrottlingException"))
    );

    let down: Value = post(
        "/faults/down",
        json!({"side": "X", "down": true, "mode": "Drop"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(down, json!({"X": "Drop", "Connect": null}));
    assert!(create_dm(&sb, "dropped").await.is_err());
    post("/faults/down", json!({"side": "X", "down": false})).await;
    assert_eq!(sb.is_down(Side::X), None);

    let stats: Value = http()
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat = &stats["ops"]["StartChatContact"];
    assert_eq!(
        (
            chat["calls"].as_u64(),
            chat["status_5xx"].as_u64(),
            chat["status_429"].as_u64(),
            chat["faults"]["errors"].as_u64(),
            chat["faults"]["throttled"].as_u64(),
        ),
        (Some(3), Some(1), Some(1), Some(1), Some(1))
    );
    assert_eq!(stats["ops"]["CreateDm"]["dropped"], 1);
    // Control calls are not counted.
    assert_eq!(stats["ops"].as_object().unwrap().len(), 2);
    let events = sb.event_log(0);
    assert!(events.iter().any(|e| matches!(
        e.event,
        xdm_sandbox::SandboxEvent::FaultInjected {
            kind: xdm_sandbox::FaultKind::Throttle,
            ..
        }
    )));
    // Every call of an operation is logged with its answer and timing; the dropped one has none.
    let calls: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            xdm_sandbox::SandboxEvent::ApiCall {
                op: FaultOp::CreateDm,
                status,
                duration_ms,
                method,
                ..
            } => Some((*status, *duration_ms, method.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls.iter().filter(|(status, ..)| status.is_none()).count(),
        1,
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|(_, ms, method)| *ms >= 0.0 && method == "POST"),
        "{calls:?}"
    );

    let reset = http().delete(format!("{base}/stats")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert!(sb.stats().ops.is_empty());

    // DELETE /faults clears every kind of fault.
    sb.set_down(Side::Connect, true);
    sb.throttle_burst(FaultOp::SendMessage, 3, 5);
    sb.set_fault_profile(FaultOp::GetUser, FaultProfile::errors(0.5))
        .unwrap();
    http()
        .delete(format!("{base}/faults"))
        .send()
        .await
        .unwrap();
    assert!(sb.is_down(Side::Connect).is_none());
    assert!(sb.throttle_bursts().is_empty() && sb.fault_profiles().is_empty());
}
