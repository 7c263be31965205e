//! Chat streaming through SNS HTTP subscriptions: handshake, signed notifications in order,
//! retries and redelivery.

use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use x509_cert::der::DecodePem;
use xdm_sandbox::{SandboxConfig, SandboxHandle, SignatureVersion, content_types};

use crate::support::{
    Receiver, WAIT, connect_call, connect_customer, sandbox, sandbox_with, start_chat,
};

/// The string to sign, rebuilt from a received body (docs/protocols.md B4 step 2).
fn string_to_sign(body: &Value) -> String {
    let keys = [
        "Message",
        "MessageId",
        "Subject",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ];
    keys.iter()
        .filter_map(|k| body[*k].as_str().map(|v| format!("{k}\n{v}\n")))
        .collect()
}

/// Verifies a received SNS body with the certificate at its SigningCertURL.
async fn verify(body: &Value) -> bool {
    let pem = reqwest::get(body["SigningCertURL"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let signature = STANDARD
        .decode(body["Signature"].as_str().unwrap())
        .unwrap();
    let message = string_to_sign(body);
    match body["SignatureVersion"].as_str() {
        Some("1") => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, key)
            .verify(message.as_bytes(), &signature)
            .is_ok(),
        Some("2") => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
            .verify(message.as_bytes(), &signature)
            .is_ok(),
        _ => false,
    }
}

pub(crate) async fn subscribed(sb: &SandboxHandle) -> Receiver {
    let rx = Receiver::for_sandbox(sb).await;
    let sub = sb.subscribe(&rx.sns_url()).await.unwrap();
    assert_eq!(sub.confirmation_status, Some(200));
    sb.wait_confirmed(&sub.subscription_arn, WAIT)
        .await
        .unwrap();
    rx
}

pub(crate) async fn start_streaming(sb: &SandboxHandle, contact_id: &str) {
    let (status, _, body) = connect_call(
        sb,
        Method::POST,
        "/contact/start-streaming",
        json!({"InstanceId": sb.config().connect.instance_id, "ContactId": contact_id,
               "ChatStreamingConfiguration": {"StreamingEndpointArn": sb.sns_topic_arn()},
               "ClientToken": uuid::Uuid::new_v4().to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

pub(crate) async fn wait_notifications(sb: &SandboxHandle, rx: &Receiver, n: usize) -> Vec<Value> {
    sb.wait_until("notifications", WAIT, |_| {
        let got = rx.notifications();
        (got.len() >= n).then_some(got)
    })
    .await
    .unwrap()
}

async fn full_chat_is_streamed(version: SignatureVersion) {
    let mut cfg = SandboxConfig::default();
    cfg.sns.signature_version = version;
    let sb = sandbox_with(cfg).await;
    let rx = subscribed(&sb).await;

    let confirmation: Value = serde_json::from_str(&rx.inbox().sns_posts[0].1).unwrap();
    assert_eq!(confirmation["Type"], "SubscriptionConfirmation");
    assert!(verify(&confirmation).await, "confirmation signature");
    assert_eq!(confirmation["SigningCertURL"], sb.sns_cert_url());

    let (contact_id, participant_token) = start_chat(&sb, "Hola2").await;
    start_streaming(&sb, &contact_id).await;
    connect_customer(&sb, &participant_token).await;
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    sb.agent_send(&contact_id, "Connect con pago", "text/markdown")
        .unwrap();
    sb.agent_leave(&contact_id).unwrap();
    sb.system_message(&contact_id, "Please rate us").unwrap();
    sb.end_chat(&contact_id).unwrap();

    let notifications = wait_notifications(&sb, &rx, 7).await;
    assert_eq!(notifications.len(), 7);
    // The count the load generator samples: notifications only, not the confirmation.
    assert_eq!(sb.sns_notification_count(), 7);
    let items: Vec<Value> = rx.streamed_items();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["ContentType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "text/plain",
            content_types::PARTICIPANT_JOINED,
            content_types::PARTICIPANT_JOINED,
            "text/markdown",
            content_types::PARTICIPANT_LEFT,
            "text/plain",
            content_types::CHAT_ENDED,
        ]
    );
    assert_eq!(items[0]["Content"], "Hola2");
    assert_eq!(items[0]["ParticipantRole"], "CUSTOMER");
    assert_eq!(items[3]["DisplayName"], "Enrique");
    assert_eq!(items[5]["ParticipantRole"], "SYSTEM");
    assert!(items[6].get("ParticipantRole").is_none());
    for item in &items {
        assert_eq!(item["InitialContactId"], contact_id.as_str());
        assert!(item["AbsoluteTime"].as_str().unwrap().ends_with('Z'));
    }

    for n in &notifications {
        assert_eq!(n["SignatureVersion"], version.as_str());
        assert_eq!(n["TopicArn"], sb.sns_topic_arn());
        assert!(
            n["UnsubscribeURL"]
                .as_str()
                .unwrap()
                .contains("Action=Unsubscribe")
        );
        assert!(verify(n).await, "notification signature: {n}");
        let attributes = &n["MessageAttributes"];
        assert_eq!(attributes["InitialContactId"]["Value"], contact_id.as_str());
        assert_eq!(
            attributes["InstanceId"]["Value"],
            sb.config().connect.instance_id
        );
        assert_eq!(attributes["AccountId"]["Value"], "123456789012");
        assert_eq!(attributes["MessageVisibility"]["Value"], "ALL");
        assert_eq!(attributes["ContactId"]["Type"], "String");
    }
    assert_eq!(
        notifications[3]["MessageAttributes"]["ParticipantRole"]["Value"],
        "AGENT"
    );
    assert_eq!(
        notifications[3]["MessageAttributes"]["Type"]["Value"],
        "MESSAGE"
    );
    assert!(
        notifications[6]["MessageAttributes"]
            .get("ParticipantRole")
            .is_none()
    );

    // A tampered body no longer verifies.
    let mut tampered = notifications[3].clone();
    tampered["Message"] = json!(
        notifications[3]["Message"]
            .as_str()
            .unwrap()
            .replace("pago", "PAGO")
    );
    assert!(!verify(&tampered).await);

    let inbox = rx.inbox();
    let (headers, body) = &inbox.sns_posts[1];
    let parsed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(
        headers["x-amz-sns-message-id"].to_str().unwrap(),
        parsed["MessageId"]
    );
    assert_eq!(headers["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(
        headers["user-agent"],
        "Amazon Simple Notification Service Agent"
    );
    assert!(body.contains("\"Type\" : \"Notification\""));
}

#[tokio::test]
async fn a_whole_chat_is_streamed_signed_v1() {
    full_chat_is_streamed(SignatureVersion::V1).await;
}

#[tokio::test]
async fn a_whole_chat_is_streamed_signed_v2() {
    full_chat_is_streamed(SignatureVersion::V2).await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_redelivery_repeats_the_message() {
    let mut cfg = SandboxConfig::default();
    cfg.sns.retry_delay_ms = 20;
    let sb = sandbox_with(cfg).await;
    let rx = subscribed(&sb).await;
    rx.inbox().sns_statuses.extend([500, 503]);
    let (contact_id, _) = start_chat(&sb, "Hola").await;
    start_streaming(&sb, &contact_id).await;
    let delivered = sb
        .wait_until("delivery", WAIT, |h| {
            h.sns_deliveries()
                .into_iter()
                .find(|d| d.item_id.is_some() && d.delivered)
        })
        .await
        .unwrap();
    let statuses: Vec<Option<u16>> = delivered.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(503), Some(200)]);
    let bodies: Vec<String> = rx.inbox().sns_posts[1..]
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "retries resend the same body"
    );

    let attempts = sb.redeliver(&delivered.message_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, Some(200));
    let posts = rx.inbox().sns_posts.clone();
    assert_eq!(posts.last().unwrap().1, bodies[0]);
    assert!(sb.redeliver("no-such-message").await.is_err());
}

#[tokio::test]
async fn nothing_reaches_an_unconfirmed_subscription() {
    let sb = sandbox().await;
    let rx = Receiver::start("unused").await;
    rx.inbox().ignore_confirmations = true;
    let sub = sb.subscribe(&rx.sns_url()).await.unwrap();
    assert!(!sub.confirmed);
    let (contact_id, _) = start_chat(&sb, "Hola").await;
    start_streaming(&sb, &contact_id).await;
    sb.end_chat(&contact_id).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.notifications().is_empty());
    assert_eq!(
        sb.sns_deliveries().len(),
        1,
        "only the confirmation was sent"
    );
}
