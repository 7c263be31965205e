//! `GET /2/dm_conversations/with/:participant_id/dm_events` over HTTP: the DMs the sandbox
//! accepted, newest first, paged, with t.co links and their entities; OAuth 1.0a user context
//! only; faults.

use serde_json::{Value, json};
use xdm_sandbox::x::oauth_verify::{Credentials, authorization_header};
use xdm_sandbox::{Fault, FaultOp, SandboxHandle, XOp};

use crate::support::{http, sandbox};

const CUSTOMER: &str = "55125386";
const FIELDS: &str = "id,text,sender_id,created_at,attachments,entities,event_type";

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

async fn send(sb: &SandboxHandle, to: &str, text: &str) -> String {
    let url = url::Url::parse(&format!(
        "{}/2/dm_conversations/with/{to}/messages",
        sb.base_url()
    ))
    .unwrap();
    let auth = authorization_header("POST", &url, &[], creds(sb), &nonce(), now());
    let resp = http()
        .post(url)
        .header("authorization", auth)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["data"]["dm_event_id"].as_str().unwrap().to_owned()
}

/// A signed GET of the conversation with `with`, with `query`.
async fn events(sb: &SandboxHandle, with: &str, query: &str) -> (u16, Value) {
    let url = url::Url::parse(&format!(
        "{}/2/dm_conversations/with/{with}/dm_events?{query}",
        sb.base_url()
    ))
    .unwrap();
    let auth = authorization_header("GET", &url, &[], creds(sb), &nonce(), now());
    let resp = http()
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn lists_the_conversation_newest_first_in_pages() {
    let sb = sandbox().await;
    let first = send(&sb, CUSTOMER, "first").await;
    let second = send(
        &sb,
        CUSTOMER,
        "Track it at https://example.com/t?o=42. Thanks",
    )
    .await;
    send(&sb, "1234", "to someone else").await;
    let third = send(&sb, CUSTOMER, "third").await;

    let (status, page1) = events(
        &sb,
        CUSTOMER,
        &format!("dm_event.fields={FIELDS}&max_results=2"),
    )
    .await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(ids(&page1), [third.clone(), second.clone()]);
    assert_eq!(page1["meta"]["result_count"], 2);
    let next = page1["meta"]["next_token"].as_str().unwrap().to_owned();
    let event = &page1["data"][1];
    assert_eq!(event["event_type"], "MessageCreate");
    assert_eq!(event["sender_id"], sb.config().x.business.id);
    let sent = sb.sent_dms();
    let recorded = sent.iter().find(|d| d.dm_event_id == second).unwrap();
    assert_eq!(event["created_at"], recorded.created_at);
    // The URL is shown as a t.co link, with the entity that expands it.
    let link = event["entities"]["urls"][0]["url"].as_str().unwrap();
    assert!(link.starts_with("https://t.co/"), "{link}");
    assert_eq!(
        event["text"].as_str().unwrap(),
        format!("Track it at {link}. Thanks")
    );
    assert_eq!(
        event["entities"]["urls"][0]["expanded_url"],
        "https://example.com/t?o=42"
    );
    assert_eq!(
        (
            &event["entities"]["urls"][0]["start"],
            &event["entities"]["urls"][0]["end"]
        ),
        (&json!(12), &json!(12 + link.chars().count()))
    );
    assert!(event.get("attachments").is_none());

    let (status, page2) = events(
        &sb,
        CUSTOMER,
        &format!("dm_event.fields={FIELDS}&max_results=2&pagination_token={next}"),
    )
    .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(ids(&page2), [first]);
    assert_eq!(page2["meta"]["result_count"], 1);
    assert!(page2["meta"].get("next_token").is_none());
    assert!(page2["meta"]["previous_token"].is_string());

    // Defaults: 100 a page; only `id`, `event_type` and `text`.
    let (_, all) = events(&sb, CUSTOMER, "").await;
    assert_eq!(all["meta"]["result_count"], 3);
    assert_eq!(all["data"][0]["text"], "third");
    assert!(all["data"][0].get("sender_id").is_none());
    // Nobody else's DMs; an empty conversation has no `data`.
    let (_, none) = events(&sb, "777", "").await;
    assert_eq!(none, json!({"meta": {"result_count": 0}}));
    let (_, joins) = events(&sb, CUSTOMER, "event_types=ParticipantsJoin").await;
    assert_eq!(joins["meta"]["result_count"], 0);

    let reads: Vec<_> = sb
        .x_requests()
        .into_iter()
        .filter(|r| r.op == XOp::ListDmEvents)
        .collect();
    assert_eq!(reads.len(), 5);
    assert!(reads.iter().all(|r| r.method == "GET" && r.status == 200));
    assert_eq!(
        reads[0].path,
        format!("/2/dm_conversations/with/{CUSTOMER}/dm_events")
    );
}

#[tokio::test]
async fn needs_a_signed_user_request_and_a_valid_query() {
    let sb = sandbox().await;
    send(&sb, CUSTOMER, "hello").await;
    let url = format!(
        "{}/2/dm_conversations/with/{CUSTOMER}/dm_events",
        sb.base_url()
    );
    let unsigned = http().get(&url).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let app_only = http()
        .get(&url)
        .bearer_auth(&sb.config().x.bearer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(app_only.status(), 403);
    // A signature over another query does not verify.
    let signed_for = url::Url::parse(&format!("{url}?max_results=5")).unwrap();
    let auth = authorization_header("GET", &signed_for, &[], creds(&sb), &nonce(), now());
    let tampered = http()
        .get(format!("{url}?max_results=50"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    for query in [
        "max_results=0",
        "max_results=101",
        "dm_event.fields=id,mood",
        "pagination_token=P123",
        "colour=blue",
    ] {
        let (status, body) = events(&sb, CUSTOMER, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["title"], "Invalid Request", "{query}");
    }
    let (status, _) = events(&sb, "not-an-id", "").await;
    assert_eq!(status, 400);
    let (status, body) = events(&sb, CUSTOMER, "max_results=1").await;
    assert_eq!(
        (status, body["meta"]["result_count"].clone()),
        (200, json!(1))
    );
}

#[tokio::test]
async fn can_be_faulted_on_its_own() {
    let sb = sandbox().await;
    send(&sb, CUSTOMER, "hello").await;
    sb.fail_next(FaultOp::DmEvents, 1, Fault::status(503));
    let (status, _) = events(&sb, CUSTOMER, "").await;
    assert_eq!(status, 503);
    let (status, body) = events(&sb, CUSTOMER, "").await;
    assert_eq!(
        (status, body["meta"]["result_count"].clone()),
        (200, json!(1))
    );
    // Sending is not affected by a fault of the read.
    sb.fail_next(FaultOp::DmEvents, 1, Fault::status(429));
    send(&sb, CUSTOMER, "still sent").await;
    assert_eq!(sb.pending_faults().len(), 1);
    let stats = sb.stats();
    assert_eq!(stats.op(FaultOp::DmEvents).faults.errors, 1);
}
