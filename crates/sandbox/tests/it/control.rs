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
    // No subscription yet: recorded in the DM history, delivered nowhere.
    assert_eq!(resp.status(), 200);
    let undelivered: Value = resp.json().await.unwrap();
    assert_eq!(undelivered["status"], Value::Null);
    assert!(
        undelivered["error"]
            .as_str()
            .unwrap()
            .contains("no subscription")
    );
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

#[tokio::test]
async fn control_api_covers_media_and_attachments() {
    let sb = sandbox().await;
    let base = format!("{}/_sandbox", sb.base_url());
    let resp = http()
        .post(format!("{base}/media/files"))
        .json(&json!({"name": "s.pdf", "content_type": "application/pdf",
                      "content": {"generated": {"size": 5000, "seed": 3}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let file: Value = resp.json().await.unwrap();
    let file_id = file["file_id"].as_str().unwrap().to_owned();
    let generated: Value = http()
        .get(format!("{base}/media/generated?size=5000&seed=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(generated["sha256"], file["sha256"]);
    let content = http()
        .get(format!("{base}/media/files/{file_id}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(content.headers()["content-type"], "application/pdf");
    assert_eq!(
        xdm_sandbox::sha256_hex(&content.bytes().await.unwrap()),
        file["sha256"].as_str().unwrap()
    );
    let resp = http()
        .post(format!("{base}/media/files/{file_id}/serve"))
        .json(&json!({"omit_content_length": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sb.file(&file_id).unwrap().serve.omit_content_length);
    let small = http()
        .post(format!("{base}/media/files"))
        .json(&json!({"name": "a.txt", "content_type": "text/plain", "content": {"text": "hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 201);

    let (contact_id, participant_token) = crate::support::start_chat(&sb, "hi").await;
    crate::support::connect_customer(&sb, &participant_token).await;
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    let resp = http()
        .post(format!("{base}/connect/contacts/{contact_id}/attachment"))
        .json(&json!({"name": "s.pdf", "file_id": file_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let item: Value = resp.json().await.unwrap();
    assert_eq!(item["Type"], "ATTACHMENT");
    assert_eq!(item["Attachments"][0]["Status"], "APPROVED");
    assert_eq!(item["Attachments"][0]["ContentType"], "application/pdf");
    let attachments: Value = http()
        .get(format!("{base}/connect/attachments"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(attachments[0]["sha256"], file["sha256"]);
    let resp = http()
        .post(format!("{base}/connect/contacts/{contact_id}/attachment"))
        .json(&json!({"name": "x.pdf", "file_id": "file-999"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let scan: Value = http()
        .post(format!("{base}/connect/attachment-scan"))
        .json(&json!({"delay_ms": 100, "verdict": "REJECTED"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(scan, json!({"delay_ms": 100, "verdict": "REJECTED"}));
    for path in [
        "media/requests",
        "x/media",
        "connect/s3-requests",
        "media/files",
    ] {
        let resp = http().get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}
