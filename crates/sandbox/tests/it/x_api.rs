//! The X REST emulation driven over HTTP with OAuth 1.0a signed requests.

use serde_json::{Value, json};
use xdm_sandbox::x::oauth_verify::{Credentials, authorization_header};
use xdm_sandbox::{Fault, FaultOp, RateLimit, SandboxConfig, SandboxHandle, SandboxUser, XOp};

use crate::support::{http, sandbox, sandbox_with};

fn creds(sb: &SandboxHandle) -> Credentials<'_> {
    let x = &sb.config().x;
    Credentials {
        consumer_key: &x.consumer_key,
        consumer_secret: &x.consumer_secret,
        token: &x.access_token,
        token_secret: &x.access_token_secret,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn send_dm(
    sb: &SandboxHandle,
    creds: Credentials<'_>,
    to: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = url::Url::parse(&format!(
        "{}/2/dm_conversations/with/{to}/messages",
        sb.base_url()
    ))
    .unwrap();
    let auth = authorization_header("POST", &url, &[], creds, &nonce(), now());
    let resp = http()
        .post(url)
        .header("authorization", auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn signed_dm_is_accepted_recorded_and_rate_headed() {
    let sb = sandbox().await;
    let (status, headers, body) = send_dm(
        &sb,
        creds(&sb),
        "55125386",
        json!({"text": "Hello from Connect"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["dm_conversation_id"], "55125386-4337869213");
    let dm_event_id = body["data"]["dm_event_id"].as_str().unwrap();
    assert_eq!(dm_event_id.len(), 19);
    for h in [
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
    ] {
        assert!(headers.contains_key(h), "missing {h}");
    }
    let dms = sb.sent_dms();
    assert_eq!(dms.len(), 1);
    assert_eq!(dms[0].dm_event_id, dm_event_id);
    assert_eq!(dms[0].sender_id, "4337869213");
    assert_eq!(dms[0].recipient_id, "55125386");
    assert_eq!(dms[0].text.as_deref(), Some("Hello from Connect"));
}

#[tokio::test]
async fn dm_with_a_bad_signature_is_401_and_not_sent() {
    let sb = sandbox().await;
    let wrong = Credentials {
        consumer_secret: "not-the-consumer-secret",
        ..creds(&sb)
    };
    let (status, headers, body) = send_dm(&sb, wrong, "55125386", json!({"text": "hi"})).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})
    );
    assert!(headers.contains_key("x-rate-limit-reset"));
    assert!(sb.sent_dms().is_empty());
    let record = sb.x_requests().pop().unwrap();
    assert_eq!((record.op, record.status), (XOp::CreateDm, 401));
    assert!(record.rejection.unwrap().contains("signature mismatch"));

    // Another access token (someone else's user context) is refused too.
    let other_user = Credentials {
        token: "999-other-token",
        ..creds(&sb)
    };
    assert_eq!(
        send_dm(&sb, other_user, "55125386", json!({"text": "hi"}))
            .await
            .0,
        401
    );
    // No Authorization at all.
    let resp = http()
        .post(format!(
            "{}/2/dm_conversations/with/55125386/messages",
            sb.base_url()
        ))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn replayed_nonce_and_stale_timestamp_are_refused() {
    let sb = sandbox().await;
    let url = url::Url::parse(&format!("{}/2/users/55125386", sb.base_url())).unwrap();
    let auth = authorization_header("GET", &url, &[], creds(&sb), "same-nonce", now());
    for expected in [200, 401] {
        let resp = http()
            .get(url.clone())
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
    }
    let stale = authorization_header("GET", &url, &[], creds(&sb), &nonce(), now() - 301);
    let resp = http()
        .get(url)
        .header("authorization", stale)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let reasons: Vec<String> = sb
        .x_requests()
        .into_iter()
        .filter_map(|r| r.rejection)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("already used")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("server clock")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn dm_body_and_recipient_rules() {
    let sb = sandbox().await;
    let mut closed = SandboxUser::new("777", "Closed", "closed");
    closed.accepts_dms = false;
    sb.add_user(closed);

    let (status, _, body) = send_dm(
        &sb,
        creds(&sb),
        "55125386",
        json!({"text": "hi", "extra": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "https://api.x.com/2/problems/invalid-request");
    assert_eq!(send_dm(&sb, creds(&sb), "55125386", json!({})).await.0, 400);
    assert_eq!(
        send_dm(&sb, creds(&sb), "55125386", json!({"text": ""}))
            .await
            .0,
        400
    );
    let two = json!({"attachments": [{"media_id": "1"}, {"media_id": "2"}]});
    assert_eq!(send_dm(&sb, creds(&sb), "55125386", two).await.0, 400);
    let (status, _, body) = send_dm(&sb, creds(&sb), "not-a-number", json!({"text": "hi"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]["parameters"]["participant_id"][0],
        "not-a-number"
    );
    let (status, _, body) = send_dm(&sb, creds(&sb), "777", json!({"text": "hi"})).await;
    assert_eq!((status, body["title"].as_str()), (403, Some("Forbidden")));
    // A media id must name media this user uploaded (media_x.rs covers the uploads).
    let media_only = json!({"attachments": [{"media_id": "1547580751654203394"}]});
    let (status, _, body) = send_dm(&sb, creds(&sb), "55125386", media_only).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["parameters"]["attachments.media_id"][0],
        "1547580751654203394"
    );
    assert!(sb.sent_dms().is_empty());
}

#[tokio::test]
async fn user_lookup_renders_fields_accepts_bearer_and_reports_unknown_ids() {
    let sb = sandbox().await;
    let mut user = SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12");
    user.followers_count = 1146;
    user.verified = true;
    sb.add_user(user);
    let url = format!(
        "{}/2/users/55125386?user.fields=profile_image_url,verified,public_metrics",
        sb.base_url()
    );
    // Only the configured app token (or an issued OAuth 2.0 token) is a valid Bearer.
    let unknown = http()
        .get(&url)
        .bearer_auth("any-app-token")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let body: Value = http()
        .get(&url)
        .bearer_auth(&sb.config().x.bearer_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["username"], "ElizabethFue12");
    assert_eq!(body["data"]["verified"], true);
    assert_eq!(body["data"]["public_metrics"]["followers_count"], 1146);
    assert!(
        body["data"]["profile_image_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    let signed = url::Url::parse(&format!(
        "{}/2/users/1234?user.fields=description",
        sb.base_url()
    ))
    .unwrap();
    let auth = authorization_header("GET", &signed, &[], creds(&sb), &nonce(), now());
    let resp = http()
        .get(signed)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["detail"],
        "Could not find user with id: [1234]."
    );
    assert_eq!(
        body["errors"][0]["type"],
        "https://api.x.com/2/problems/resource-not-found"
    );

    let bad_field = format!("{}/2/users/55125386?user.fields=shoe_size", sb.base_url());
    let resp = http()
        .get(bad_field)
        .bearer_auth(&sb.config().x.bearer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // App-only auth is not enough to send DMs.
    let resp = http()
        .post(format!(
            "{}/2/dm_conversations/with/1/messages",
            sb.base_url()
        ))
        .bearer_auth(&sb.config().x.bearer_token)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn configured_rate_limit_answers_429_with_reset() {
    let mut cfg = SandboxConfig::default();
    cfg.x.rate_limit = Some(RateLimit {
        requests: 2,
        window_secs: 900,
    });
    let sb = sandbox_with(cfg).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) =
            send_dm(&sb, creds(&sb), "55125386", json!({"text": "hi"})).await;
        remaining.push((
            status,
            headers["x-rate-limit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        ));
    }
    assert_eq!(
        remaining,
        vec![(201, "1".into()), (201, "0".into()), (429, "0".into())]
    );
    assert_eq!(sb.sent_dms().len(), 2);
}

#[tokio::test]
async fn injected_faults_fail_then_recover() {
    let sb = sandbox().await;
    sb.fail_next(
        FaultOp::CreateDm,
        1,
        Fault::status(429).with_rate_limit_reset(1_893_456_000),
    );
    sb.fail_next(
        FaultOp::CreateDm,
        1,
        Fault::error(429, "https://api.x.com/2/problems/usage-capped"),
    );
    sb.fail_next(FaultOp::CreateDm, 1, Fault::delay(50));
    let (status, headers, body) = send_dm(&sb, creds(&sb), "55125386", json!({"text": "1"})).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-rate-limit-reset"], "1893456000");
    assert_eq!(body["title"], "Too Many Requests");
    let (status, _, body) = send_dm(&sb, creds(&sb), "55125386", json!({"text": "2"})).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (429, Some("https://api.x.com/2/problems/usage-capped"))
    );
    let started = std::time::Instant::now();
    assert_eq!(
        send_dm(&sb, creds(&sb), "55125386", json!({"text": "3"}))
            .await
            .0,
        201
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    assert_eq!(
        send_dm(&sb, creds(&sb), "55125386", json!({"text": "4"}))
            .await
            .0,
        201
    );
    assert!(sb.pending_faults().is_empty());
}
