//! Webhooks v2 (CRC round trip with each key), X Activity API subscriptions (auth, duplicates,
//! limits, answer shapes), deliveries in XAA's envelope with both signatures, the retired Account
//! Activity API, replay jobs and `GET /2/dm_events`.

use serde_json::{Value, json};
use xdm_sandbox::{
    CrcSecret, DmSpec, MediaFile, MediaSpec, RateLimit, ReplayState, SandboxConfig, SandboxHandle,
    XConfig, XOp,
};

use crate::support::{
    Receiver, WAIT, hmac_b64, http, sandbox, sandbox_with, sandbox_with_webhook, venv_python,
    x_auth, x_creds,
};

const CUSTOMER: &str = "55125386";

fn with_x(x: XConfig) -> SandboxConfig {
    SandboxConfig {
        x,
        ..SandboxConfig::default()
    }
}

/// An X call with `auth` (a full `Authorization` value) → (status, body).
async fn call(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{}{path}", sb.base_url()))
        .header("authorization", auth);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.headers().contains_key("x-rate-limit-limit"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn app(sb: &SandboxHandle) -> String {
    format!("Bearer {}", sb.config().x.bearer_token)
}

fn oauth1(sb: &SandboxHandle, method: &str, path: &str) -> String {
    x_auth(x_creds(sb), method, &format!("{}{path}", sb.base_url()))
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn webhook_crc_uses_the_configured_key() {
    for (crc_secret, good_key) in [
        (CrcSecret::ClientSecret, "sandbox-client-secret"),
        (CrcSecret::ConsumerSecret, "sandbox-consumer-secret"),
    ] {
        let sb = sandbox_with(with_x(XConfig {
            crc_secret,
            ..XConfig::default()
        }))
        .await;
        let other_key = if good_key == "sandbox-client-secret" {
            "sandbox-consumer-secret"
        } else {
            "sandbox-client-secret"
        };
        let wrong = Receiver::with_keys("x", other_key).await;
        let (status, body) = call(
            &sb,
            reqwest::Method::POST,
            "/2/webhooks",
            &app(&sb),
            Some(json!({"url": wrong.webhook_url()})),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reason(&body), "CrcValidationFailed");
        assert_eq!(body["type"], "https://api.x.com/2/problems/invalid-request");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("CrcValidationFailed: ")
        );
        assert_eq!(wrong.inbox().crc_tokens.len(), 1);

        let right = Receiver::with_keys("x", good_key).await;
        let (status, body) = call(
            &sb,
            reqwest::Method::POST,
            "/2/webhooks",
            &app(&sb),
            Some(json!({"url": right.webhook_url()})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["valid"], true);
        assert_eq!(body["data"]["url"], right.webhook_url().as_str());
        assert!(body["data"]["created_at"].is_string());
        let id = body["data"]["id"].as_str().unwrap().to_owned();

        // Duplicates and the limit (one webhook per app by default).
        let (_, dup) = call(
            &sb,
            reqwest::Method::POST,
            "/2/webhooks",
            &app(&sb),
            Some(json!({"url": right.webhook_url()})),
        )
        .await;
        assert_eq!(reason(&dup), "DuplicateUrlFailed");
        let (_, limit) = call(
            &sb,
            reqwest::Method::POST,
            "/2/webhooks",
            &oauth1(&sb, "POST", "/2/webhooks"),
            Some(json!({"url": format!("{}/other", right.base)})),
        )
        .await;
        assert_eq!(reason(&limit), "WebhookLimitExceeded");
        let (_, bad_url) = call(
            &sb,
            reqwest::Method::POST,
            "/2/webhooks",
            &app(&sb),
            Some(json!({"url": "http://bridge.example.com/webhooks/x"})),
        )
        .await;
        assert_eq!(reason(&bad_url), "UrlValidationFailed");

        let (status, list) = call(&sb, reqwest::Method::GET, "/2/webhooks", &app(&sb), None).await;
        assert_eq!(status, 200);
        assert_eq!(list["meta"]["result_count"], 1);
        assert_eq!(list["data"][0]["id"], id.as_str());

        // PUT re-runs the CRC; a control marks it invalid meanwhile.
        sb.invalidate_webhook(&id).unwrap();
        assert!(!sb.webhooks()[0].valid);
        let (status, put) = call(
            &sb,
            reqwest::Method::PUT,
            &format!("/2/webhooks/{id}"),
            &app(&sb),
            None,
        )
        .await;
        assert_eq!((status, put["data"]["valid"].as_bool()), (200, Some(true)));
        assert_eq!(right.inbox().crc_tokens.len(), 2);
        let (status, gone) = call(
            &sb,
            reqwest::Method::DELETE,
            &format!("/2/webhooks/{id}"),
            &app(&sb),
            None,
        )
        .await;
        assert_eq!(
            (status, gone["data"]["deleted"].as_bool()),
            (200, Some(true))
        );
        let (status, unknown) = call(
            &sb,
            reqwest::Method::DELETE,
            &format!("/2/webhooks/{id}"),
            &app(&sb),
            None,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(reason(&unknown), "WebhookIdInvalid");
        let ops: Vec<XOp> = sb.x_requests().iter().map(|r| r.op).collect();
        for op in [
            XOp::CreateWebhook,
            XOp::ListWebhooks,
            XOp::ValidateWebhook,
            XOp::DeleteWebhook,
        ] {
            assert!(ops.contains(&op), "{op:?}");
        }
    }
}

#[tokio::test]
async fn subscriptions_check_authorization_duplicates_limits_and_shapes() {
    let sb = sandbox_with(with_x(XConfig {
        max_subscriptions: 3,
        ..XConfig::default()
    }))
    .await;
    let business = sb.config().x.business.id.clone();
    let path = "/2/activity/subscriptions";
    // None yet: only the count.
    let (status, empty) = call(&sb, reqwest::Method::GET, path, &app(&sb), None).await;
    assert_eq!(status, 200);
    assert_eq!(empty, json!({"meta": {"total_subscriptions": 0}}));

    let dm = json!({"event_type": "dm.received", "filter": {"user_id": business}, "tag": "bridge"});
    // Private events are not for app-only authentication, nor for another user's token.
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &app(&sb),
        Some(dm.clone()),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["type"],
        "https://api.x.com/2/problems/not-authorized-for-resource"
    );
    let other = sb.issue_oauth2_token(CUSTOMER, &["dm.read", "tweet.read", "users.read"]);
    let (status, _) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &format!("Bearer {}", other.access_token),
        Some(dm.clone()),
    )
    .await;
    assert_eq!(status, 403);
    // Unknown properties, unknown webhook ids.
    let (status, _) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &oauth1(&sb, "POST", path),
        Some(json!({"event_type": "dm.received", "filter": {"user_id": business}, "extra": 1})),
    )
    .await;
    assert_eq!(status, 400);
    let (_, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &oauth1(&sb, "POST", path),
        Some(json!({"event_type": "dm.received", "filter": {"user_id": business}, "webhook_id": "42"})),
    )
    .await;
    assert_eq!(reason(&body), "WebhookIdInvalid");

    // The user's own OAuth 1.0a authorization: the nested answer.
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &oauth1(&sb, "POST", path),
        Some(dm.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["data"]["subscription"];
    assert_eq!(sub["event_type"], "dm.received");
    assert_eq!(sub["filter"]["user_id"], business.as_str());
    assert_eq!(sub["tag"], "bridge");
    assert!(sub["subscription_id"].is_string() && sub["created_at"].is_string());
    assert_eq!(body["meta"]["total_subscriptions"], 1);
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &oauth1(&sb, "POST", path),
        Some(dm.clone()),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(reason(&body), "DuplicateSubscriptionFailed");
    // Public events take the app token; an OAuth 2.0 token of the user with dm.read may
    // subscribe the user's DMs.
    let (status, _) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &app(&sb),
        Some(json!({"event_type": "post.create", "filter": {"user_id": CUSTOMER}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &format!("Bearer {}", other.access_token),
        Some(json!({"event_type": "dm.read", "filter": {"user_id": CUSTOMER}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &app(&sb),
        Some(json!({"event_type": "post.delete", "filter": {"user_id": CUSTOMER}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reason(&body), "SubscriptionLimitExceeded");

    // Paging.
    let (_, page) = call(
        &sb,
        reqwest::Method::GET,
        &format!("{path}?max_results=2"),
        &app(&sb),
        None,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["meta"]["total_subscriptions"], 3);
    let next = page["meta"]["next_token"].as_str().unwrap();
    let (_, rest) = call(
        &sb,
        reqwest::Method::GET,
        &format!("{path}?max_results=2&pagination_token={next}"),
        &app(&sb),
        None,
    )
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["meta"].get("next_token").is_none());

    // Update and delete are app-only.
    let id = sub["subscription_id"].as_str().unwrap();
    let (status, _) = call(
        &sb,
        reqwest::Method::DELETE,
        &format!("{path}/{id}"),
        &oauth1(&sb, "DELETE", &format!("{path}/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &sb,
        reqwest::Method::PUT,
        &format!("{path}/{id}"),
        &app(&sb),
        Some(json!({"tag": "renamed"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["subscription"]["tag"], "renamed");
    let (status, body) = call(
        &sb,
        reqwest::Method::DELETE,
        &format!("{path}/{id}"),
        &app(&sb),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": {"deleted": true}, "meta": {"total_subscriptions": 2}})
    );
}

#[tokio::test]
async fn flat_answers_and_the_retired_account_activity_api() {
    let sb = sandbox_with(with_x(XConfig {
        flat_subscription_answers: true,
        ..XConfig::default()
    }))
    .await;
    let path = "/2/activity/subscriptions";
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        path,
        &app(&sb),
        Some(json!({"event_type": "post.create", "filter": {"user_id": CUSTOMER}})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["data"]["subscription_id"].is_string(), "{body}");
    assert!(body.get("meta").is_none());

    let aaa = "/2/account_activity/webhooks/1/subscriptions/all";
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        aaa,
        &oauth1(&sb, "POST", aaa),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("retired"),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("X Activity API"));
    assert!(sb.x_requests().iter().any(|r| r.op == XOp::AccountActivity));
}

#[tokio::test]
async fn account_activity_is_served_when_switched_on() {
    let sb = sandbox_with(with_x(XConfig {
        account_activity_api: true,
        ..XConfig::default()
    }))
    .await;
    let rx = Receiver::for_sandbox(&sb).await;
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        "/2/webhooks",
        &app(&sb),
        Some(json!({"url": rx.webhook_url()})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["id"].as_str().unwrap();
    let path = format!("/2/account_activity/webhooks/{id}/subscriptions/all");
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        &path,
        &oauth1(&sb, "POST", &path),
        None,
    )
    .await;
    assert_eq!(
        (status, body["data"]["subscribed"].as_bool()),
        (200, Some(true))
    );
    let list = format!("{path}/list");
    let (status, body) = call(&sb, reqwest::Method::GET, &list, &app(&sb), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["subscriptions"][0]["user_id"], "4337869213");
    let delivery = sb.deliver_dm(DmSpec::text(CUSTOMER, "hola")).await.unwrap();
    assert_eq!(delivery.status, Some(200));
    let v: Value = serde_json::from_str(&delivery.payload).unwrap();
    assert_eq!(v["for_user_id"], "4337869213");
}

#[tokio::test]
async fn deliveries_use_the_xaa_envelope_with_both_signatures() {
    let (sb, rx) = sandbox_with_webhook().await;
    sb.add_user(xdm_sandbox::SandboxUser::new(
        CUSTOMER,
        "Elizabeth Fuentes",
        "ElizabethFue12",
    ));
    let tags: Vec<_> = sb
        .activity_subscriptions()
        .iter()
        .map(|s| s.event_type.clone())
        .collect();
    assert_eq!(tags, ["dm.received", "dm.read", "dm.indicate_typing"]);
    let delivery = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "hola").with_event_id("2039459599745679612"))
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
    let (headers, body) = rx.inbox().webhook_posts[0].clone();
    let x = &sb.config().x;
    assert_eq!(
        headers["x-twitter-webhooks-signature"],
        format!("sha256={}", hmac_b64(&x.consumer_secret, body.as_bytes())).as_str()
    );
    assert_eq!(
        headers["x-twitter-webhooks-signature-oauth2"],
        format!("sha256={}", hmac_b64(&x.client_secret, body.as_bytes())).as_str()
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let data = &v["data"];
    assert!(data["event_uuid"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(data["event_type"], "dm.received");
    assert_eq!(data["filter"], json!({"user_id": "4337869213"}));
    let event = &data["payload"]["direct_message_events"][0];
    assert_eq!(event["id"], "2039459599745679612");
    assert_eq!(event["message_create"]["sender_id"], CUSTOMER);
    assert_eq!(
        data["payload"]["users"][CUSTOMER]["data"]["username"],
        "ElizabethFue12"
    );
    assert_eq!(sb.x_events().len(), 1);

    let typing = sb.deliver_typing(CUSTOMER).await.unwrap();
    let t: Value = serde_json::from_str(&typing.payload).unwrap();
    assert_eq!(t["data"]["event_type"], "dm.indicate_typing");
    assert!(
        t["data"]["payload"]["direct_message_indicate_typing_events"][0]["sender_id"] == CUSTOMER
    );

    // A tagged subscription carries its tag; DMs the business sends are `dm.sent` events only
    // for `dm.sent` subscriptions.
    let business = x.business.id.clone();
    let hook = sb.webhook().unwrap().id;
    sb.subscribe_activity("dm.sent", &business, Some(&hook), Some("outbound"))
        .unwrap();
    let url = format!(
        "{}/2/dm_conversations/with/{CUSTOMER}/messages",
        sb.base_url()
    );
    let resp = http()
        .post(&url)
        .header("authorization", x_auth(x_creds(&sb), "POST", &url))
        .json(&json!({"text": "An agent will be with you shortly."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sent = sb
        .wait_until("dm.sent", WAIT, |h| {
            h.x_events().into_iter().find(|e| e.event_type == "dm.sent")
        })
        .await
        .unwrap();
    let s: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(s["data"]["tag"], "outbound");
    assert_eq!(
        s["data"]["payload"]["direct_message_events"][0]["message_create"]["sender_id"],
        business.as_str()
    );

    // Only the legacy header when configured so.
    let legacy = sandbox_with(with_x(XConfig {
        signature_headers: xdm_sandbox::SignatureHeaders::Legacy,
        ..XConfig::default()
    }))
    .await;
    let rx2 = Receiver::for_sandbox(&legacy).await;
    legacy.set_webhook(&rx2.webhook_url()).await.unwrap();
    let d = legacy
        .deliver_dm(DmSpec::text(CUSTOMER, "x"))
        .await
        .unwrap();
    assert!(d.signature.is_some() && d.signature_oauth2.is_none());
    assert!(
        !rx2.inbox().webhook_posts[0]
            .0
            .contains_key("x-twitter-webhooks-signature-oauth2")
    );
}

#[tokio::test]
async fn without_a_subscription_a_dm_is_recorded_but_delivered_nowhere() {
    let sb = sandbox().await;
    let delivery = sb.deliver_dm(DmSpec::text(CUSTOMER, "hola")).await.unwrap();
    assert_eq!(delivery.status, None);
    assert!(delivery.error.unwrap().contains("no subscription"));
    assert_eq!(sb.dm_history().len(), 1);
    assert!(sb.webhook_deliveries().is_empty());
    assert!(sb.x_events().is_empty());
}

fn minute(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn replay_re_posts_the_events_of_an_outage_window() {
    let (sb, rx) = sandbox_with_webhook().await;
    let hook = sb.webhook().unwrap().id;
    sb.set_webhook_outage(&hook, true).unwrap();
    let start = now_ms();
    for text in ["one", "two"] {
        let d = sb.deliver_dm(DmSpec::text(CUSTOMER, text)).await.unwrap();
        assert_eq!(d.status, None);
        assert!(d.error.unwrap().contains("outage"));
    }
    assert!(rx.inbox().webhook_posts.is_empty());
    sb.set_webhook_outage(&hook, false).unwrap();

    let body = json!({"webhook_id": hook, "from_date": minute(start), "to_date": minute(now_ms())});
    let (status, job) = call(
        &sb,
        reqwest::Method::POST,
        "/2/webhooks/replay",
        &app(&sb),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["data"]["job_id"].as_str().unwrap().to_owned();
    assert!(job["data"]["created_at"].is_string());
    let done = sb
        .wait_until("replay", WAIT, |h| {
            h.replay_jobs()
                .into_iter()
                .find(|j| j.job_id == job_id && j.state == ReplayState::Complete)
        })
        .await
        .unwrap();
    assert_eq!((done.events_replayed, done.events_delivered), (2, 2));
    let posts = rx.inbox().webhook_posts.clone();
    let texts: Vec<Value> = posts
        .iter()
        .map(|(_, b)| {
            let v: Value = serde_json::from_str(b).unwrap();
            v["data"]["payload"]["direct_message_events"][0]["message_create"]["message_data"]["text"].clone()
        })
        .collect();
    assert_eq!(texts, [json!("one"), json!("two")]);

    // Outside the last 24 hours, or backwards: refused.
    let old = json!({"webhook_id": hook, "from_date": minute(start - 2 * 86_400_000), "to_date": minute(start)});
    let (status, body) = call(
        &sb,
        reqwest::Method::POST,
        "/2/webhooks/replay",
        &app(&sb),
        Some(old),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        &sb,
        reqwest::Method::POST,
        "/2/webhooks/replay",
        &oauth1(&sb, "POST", "/2/webhooks/replay"),
        Some(json!({"webhook_id": hook, "from_date": minute(start), "to_date": minute(start)})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn dm_events_lists_every_conversation_paged_with_includes_and_a_rate_limit() {
    let sb = sandbox_with(with_x(XConfig {
        dm_events_rate_limit: Some(RateLimit {
            requests: 4,
            window_secs: 900,
        }),
        ..XConfig::default()
    }))
    .await;
    let rx = Receiver::for_sandbox(&sb).await;
    sb.set_webhook(&rx.webhook_url()).await.unwrap();
    sb.add_user(xdm_sandbox::SandboxUser::new(
        CUSTOMER,
        "Elizabeth Fuentes",
        "ElizabethFue12",
    ));
    let file = sb.add_file(MediaFile::bytes(
        "r.jpg",
        "image/jpeg",
        b"\xff\xd8 tiny".to_vec(),
    ));
    sb.deliver_dm(DmSpec::text(CUSTOMER, "first"))
        .await
        .unwrap();
    sb.deliver_dm(DmSpec::text("3001969357", "other customer"))
        .await
        .unwrap();
    let url = format!(
        "{}/2/dm_conversations/with/{CUSTOMER}/messages",
        sb.base_url()
    );
    let resp = http()
        .post(&url)
        .header("authorization", x_auth(x_creds(&sb), "POST", &url))
        .json(&json!({"text": "reply"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let photo = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "look").with_media(MediaSpec::photo(&file.file_id)))
        .await
        .unwrap();

    let path = "/2/dm_events?max_results=3&dm_event.fields=id,text,sender_id,participant_ids,attachments,created_at&expansions=sender_id,attachments.media_keys";
    let (status, page) = call(
        &sb,
        reqwest::Method::GET,
        path,
        &oauth1(&sb, "GET", path),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(page["meta"]["result_count"], 3);
    // Newest first, received and sent.
    assert_eq!(data[0]["id"], photo.event_id.unwrap().as_str());
    assert_eq!(data[1]["text"], "reply");
    assert_eq!(data[1]["sender_id"], "4337869213");
    assert_eq!(data[2]["sender_id"], "3001969357");
    let key = data[0]["attachments"]["media_keys"][0].as_str().unwrap();
    let media = &page["includes"]["media"][0];
    assert_eq!(media["media_key"], key);
    assert_eq!(media["type"], "photo");
    assert!(media["url"].as_str().unwrap().contains("/1.1/ton/data/dm/"));
    let users = page["includes"]["users"].as_array().unwrap();
    assert!(users.iter().any(|u| u["username"] == "ElizabethFue12"));
    let next = page["meta"]["next_token"].as_str().unwrap();
    let path2 = format!("/2/dm_events?max_results=3&pagination_token={next}");
    let (status, rest) = call(
        &sb,
        reqwest::Method::GET,
        &path2,
        &oauth1(&sb, "GET", &path2),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rest["data"][0]["text"], "first");
    assert_eq!(rest["meta"]["result_count"], 1);

    // The photo through the OAuth 2.0 media route: the TON bytes.
    let reader = sb.issue_oauth2_token("4337869213", &["dm.read", "tweet.read", "users.read"]);
    let dm = sb
        .dm_history()
        .into_iter()
        .find(|d| d.media.is_some())
        .unwrap();
    let m = dm.media.unwrap();
    let resp = http()
        .get(format!(
            "{}/2/dm_conversations/media/{}/{}/r.jpg",
            sb.base_url(),
            dm.dm_event_id,
            m.media_id
        ))
        .bearer_auth(&reader.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\xff\xd8 tiny");

    // An OAuth 2.0 token of the business sees the same conversations.
    let (_, own) = call(
        &sb,
        reqwest::Method::GET,
        "/2/dm_events",
        &format!("Bearer {}", reader.access_token),
        None,
    )
    .await;
    assert_eq!(own["meta"]["result_count"], 4);
    // Window: 4 calls per user.
    let (status, _) = call(
        &sb,
        reqwest::Method::GET,
        "/2/dm_events",
        &oauth1(&sb, "GET", "/2/dm_events"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let resp = http()
        .get(format!("{}/2/dm_events", sb.base_url()))
        .header("authorization", oauth1(&sb, "GET", "/2/dm_events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    assert_eq!(resp.headers()["x-rate-limit-limit"], "4");
}

/// X's own Python SDK (`xdk`, from ./.venv: `./scripts/venv.sh`) against the sandbox: webhook
/// create and list, subscriptions list, DM events with an OAuth 2.0 user token.
#[tokio::test]
async fn x_python_sdk_talks_to_the_sandbox() {
    let (python, script) = venv_python("xdk_client.py", "X's Python SDK");
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    sb.add_user(xdm_sandbox::SandboxUser::new(
        CUSTOMER,
        "Elizabeth Fuentes",
        "ElizabethFue12",
    ));
    let business = sb.config().x.business.id.clone();
    sb.subscribe_activity("dm.received", &business, None, None)
        .unwrap();
    sb.deliver_dm(DmSpec::text(CUSTOMER, "hola desde xdk"))
        .await
        .unwrap();
    let token = sb.issue_oauth2_token(&business, &["dm.read", "tweet.read", "users.read"]);
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(sb.base_url())
        .arg(&sb.config().x.bearer_token)
        .arg(&token.access_token)
        .arg(rx.webhook_url())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "xdk script failed (is xdk in ./.venv? run ./scripts/venv.sh): {stderr}"
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["created"]["data"]["valid"], true, "{v}");
    assert_eq!(v["listed"]["data"][0]["url"], rx.webhook_url().as_str());
    assert_eq!(
        v["subscriptions"][0]["data"][0]["event_type"],
        "dm.received"
    );
    assert_eq!(v["events"]["data"][0]["text"], "hola desde xdk");
    assert_eq!(
        v["events"]["includes"]["users"][0]["username"],
        "ElizabethFue12"
    );
    assert_eq!(rx.inbox().crc_tokens.len(), 1);
}

#[tokio::test]
async fn x_activity_controls_over_http() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let ctl = format!("{}/_sandbox", sb.base_url());
    let hook = sb.webhook().unwrap().id;
    let resp = http()
        .post(format!("{ctl}/x/webhooks/{hook}/outage"))
        .json(&json!({"on": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sb.webhook().unwrap().outage);
    let issued: Value = http()
        .post(format!("{ctl}/x/oauth2/issue"))
        .json(&json!({"user_id": "4337869213", "scopes": ["dm.read", "offline.access"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(issued["refresh_token"].is_string());
    let tokens: Value = http()
        .post(format!("{ctl}/x/oauth2"))
        .json(&json!({"access_token_lifetime_secs": 5, "deny_next": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prefix = tokens[0]["access_token_prefix"].as_str().unwrap();
    assert!(issued["access_token"].as_str().unwrap().starts_with(prefix));
    assert!(prefix.len() < issued["access_token"].as_str().unwrap().len());
    let revoked: Value = http()
        .post(format!("{ctl}/x/oauth2/revoke-user"))
        .json(&json!({"user_id": "4337869213"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1);
    let subs: Value = http()
        .get(format!("{ctl}/x/subscriptions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subs["activity"].as_array().unwrap().len(), 3);
    let streams: Value = http()
        .post(format!("{ctl}/x/streams/silent"))
        .json(&json!({"on": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(streams["silent"], true);
    let streams: Value = http()
        .get(format!("{ctl}/x/streams"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(streams, json!({"silent": true, "connections": []}));
}
