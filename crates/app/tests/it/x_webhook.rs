//! `GET/POST /webhooks/x`: CRC, signatures, the captured delivery (docs/protocols.md A1).

use xdm_core::jobs::JobQueue;
use xdm_core::ports::Store;
use xdm_sandbox::SignatureHeader;

use crate::helpers::*;

#[tokio::test]
async fn crc_vector_is_answered_exactly_and_non_tokens_get_400() {
    let app = spawn_app_with(vector_sandbox(), |_| {}).await;
    let url = format!("{}/webhooks/x", app.base);
    let res = app
        .http
        .get(format!("{url}?crc_token=M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0&nonce=MTc2OTUxODI5MjkxNA"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"response_token":"sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="}"#
    );

    // The signing-oracle defence: a JSON body as "token" is refused.
    for bad in [
        "%7B%22for_user_id%22%3A%221%22%7D",
        "abc%20def",
        "%22quoted%22",
        "",
    ] {
        let res = app
            .http
            .get(format!("{url}?crc_token={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "crc_token={bad}");
    }
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 400, "missing crc_token");
    // X's own check, as the sandbox performs it, with a token that is a JSON document.
    let crc = app
        .sandbox
        .crc_check(&url, r#"{"for_user_id":"1"}"#)
        .await
        .unwrap();
    assert_eq!(crc.status, Some(400));
    app.stop().await;
}

#[tokio::test]
async fn signature_vectors_are_accepted_and_anything_else_gets_401_with_nothing_reaching_connect() {
    let app = spawn_app_with(vector_sandbox(), |_| {}).await;
    let url = format!("{}/webhooks/x", app.base);
    let post = |body: Vec<u8>, sig: Option<&str>| {
        let mut req = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("X-Twitter-Webhooks-Signature", sig);
        }
        req.send()
    };

    // Vector 1 (an empty batch).
    let empty = br#"{"for_user_id":"2244994945","direct_message_events":[]}"#.to_vec();
    let res = post(
        empty.clone(),
        Some("sha256=U7PvFnq32kDoO+q6JA5eD3pbWDKp3OSyqEav+2NVku4="),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);

    // Vector 2 (the captured 1,570-byte body) — tampered, unsigned, wrongly signed first.
    let body = captured_body();
    assert_eq!(body.len(), 1570);
    let good = "sha256=kUYYH+AYCEI4dWirsu4qSGy/k/ZkAah79MxUr9rXkCQ=";
    assert_eq!(x_signature(VECTOR_SECRET, body.as_bytes()), good);
    let mut altered = body.clone().into_bytes();
    let i = body.find("Hola2").unwrap();
    altered[i] = b'h';
    assert_eq!(
        post(altered, Some(good)).await.unwrap().status(),
        401,
        "one byte altered"
    );
    assert_eq!(
        post(body.clone().into_bytes(), None)
            .await
            .unwrap()
            .status(),
        401,
        "no signature header"
    );
    let wrong = x_signature("not-the-consumer-secret", body.as_bytes());
    assert_eq!(
        post(body.clone().into_bytes(), Some(&wrong))
            .await
            .unwrap()
            .status(),
        401,
        "wrong secret"
    );
    assert_eq!(
        post(body.clone().into_bytes(), Some("sha256=???"))
            .await
            .unwrap()
            .status(),
        401,
        "malformed"
    );
    // nothing was accepted, nothing reached Connect
    assert!(
        app.bridge
            .store()
            .jobs(JobQueue::Inbound, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(app.sandbox.contacts().is_empty());

    // A malformed but correctly signed body is a 400.
    let junk = b"{\"for_user_id\": [".to_vec();
    let sig = x_signature(VECTOR_SECRET, &junk);
    assert_eq!(post(junk, Some(&sig)).await.unwrap().status(), 400);

    assert_eq!(
        post(body.into_bytes(), Some(good)).await.unwrap().status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn the_captured_delivery_opens_exactly_one_chat_with_the_senders_name_and_handle() {
    // The published vector's DM is from 2026-04-01 and its signature fixes the body: the age
    // bound, which would acknowledge it without delivering it, is lifted for it.
    let app = spawn_app_with(vector_sandbox(), |c| c.delivery.max_event_age_ms = i64::MAX).await;
    let body = captured_body();
    let d = app
        .sandbox
        .deliver_raw(body.clone().into_bytes(), SignatureHeader::Valid)
        .await
        .unwrap();
    assert_eq!(d.status, Some(200));
    assert_eq!(
        d.signature.as_deref(),
        Some("sha256=kUYYH+AYCEI4dWirsu4qSGy/k/ZkAah79MxUr9rXkCQ=")
    );
    // X retries the same delivery: still one chat, one message.
    let again = app
        .sandbox
        .deliver_raw(body.into_bytes(), SignatureHeader::Valid)
        .await
        .unwrap();
    assert_eq!(again.status, Some(200));

    let chat = app
        .sandbox
        .wait_until("the chat", WAIT, |s| {
            s.contacts().into_iter().find(|c| c.customer_connected)
        })
        .await
        .unwrap();
    app.settle().await;
    let contacts = app.sandbox.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(chat.display_name, "Elizabeth Fuentes");
    let a = &chat.attributes;
    assert_eq!(a["Channel"], "X");
    assert_eq!(a["customerId"], "55125386");
    assert_eq!(a["customerName"], "Elizabeth Fuentes");
    assert_eq!(a["x_username"], "ElizabethFue12");
    assert_eq!(a["x_profile_url"], "https://x.com/ElizabethFue12");
    assert_eq!(a["x_business_account_id"], "40876567");
    assert_eq!(a["x_followers_count"], "1146");
    assert_eq!(
        a["x_profile_image_url"],
        "https://pbs.twimg.com/profile_images/1603384697035182080/iQFwc3l3_normal.jpg"
    );
    assert_eq!(customer_messages(&contacts[0]), vec!["Hola2"]);
    app.stop().await;
}
