//! The HTTP control API under /_sandbox.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{connect_call, http, sandbox, start_chat_body};

#[tokio::test]
async fn control_api_drives_the_sandbox() {
    let sb = sandbox().await;
    let base = format!("{}/_sandbox", sb.base_url());
    let info: Value = http()
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["base_url"], sb.base_url());
    assert_eq!(info["sns_cert_url"], sb.sns_cert_url());

    let resp = http()
        .post(format!("{base}/x/users"))
        .json(&json!({"id": "55125386", "name": "Elizabeth", "username": "eli"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(
        sb.users()
            .iter()
            .any(|u| u.username == "eli" && u.accepts_dms)
    );

    let resp = http()
        .post(format!("{base}/faults"))
        .json(&json!({"op": "StartChatContact", "count": 1, "fault": {"status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, headers, _) = connect_call(
        &sb,
        Method::PUT,
        "/contact/chat",
        start_chat_body(&sb, "A", "hi"),
    )
    .await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (500, "InternalServiceException")
    );
    let (status, _, started) = connect_call(
        &sb,
        Method::PUT,
        "/contact/chat",
        start_chat_body(&sb, "A", "hi"),
    )
    .await;
    assert_eq!(status, 200);
    let contact_id = started["ContactId"].as_str().unwrap();

    let contacts: Value = http()
        .get(format!("{base}/connect/contacts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contacts[0]["contact_id"], contact_id);
    assert_eq!(contacts[0]["transcript"][0]["Content"], "hi");
    assert_eq!(contacts[0]["transcript"][0]["MessageVisibility"], "ALL");

    // The flow has not started: no agent can accept yet.
    let resp = http()
        .post(format!("{base}/connect/contacts/{contact_id}/accept"))
        .json(&json!({"agent_name": "Enrique"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = http()
        .post(format!("{base}/connect/contacts/{contact_id}/system"))
        .json(&json!({"text": "Queued"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http()
        .post(format!("{base}/connect/contacts/nope/end"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = http()
        .post(format!("{base}/connect/contacts/{contact_id}/end"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http()
        .post(format!("{base}/x/dm"))
        .json(&json!({"sender_id": "55125386", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409, "no webhook yet");
    let resp = http()
        .post(format!("{base}/x/dm"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let events: Vec<Value> = http()
        .get(format!("{base}/events?since=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for expected in [
        "fault_injected",
        "contact_started",
        "chat_item",
        "contact_ended",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let last_seq = events.last().unwrap()["seq"].as_u64().unwrap();
    let none: Vec<Value> = http()
        .get(format!("{base}/events?since={last_seq}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        http()
            .delete(format!("{base}/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

#[tokio::test]
async fn unknown_routes_answer_in_platform_style() {
    let sb = sandbox().await;
    let resp = http()
        .get(format!("{}/2/tweets", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-rate-limit-limit"));
    let resp = http()
        .post(format!("{}/contact/nothing", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "UnknownOperationException"
    );
    sb.shutdown();
    sb.stopped().await;
    let addr = sb.base_url().trim_start_matches("http://").to_owned();
    let mut closed = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(closed, "still accepting connections after shutdown");
}
