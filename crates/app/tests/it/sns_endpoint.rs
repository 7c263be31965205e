//! `POST /webhooks/connect`: only signed, recent notifications of the configured topic get in,
//! and what is refused neither forges nor floods the log.

use serde_json::Value;
use xdm_core::jobs::{JobKey, JobQueue};
use xdm_core::ports::Store;
use xdm_sandbox::{SandboxConfig, SignatureVersion};

use crate::bridge_process::{BridgeLog, ServeOptions, free_port, serve_with, wait_healthy};
use crate::helpers::*;

#[tokio::test]
async fn tampered_messages_foreign_certificates_and_foreign_topics_are_refused() {
    let app = spawn_app().await;
    let chat = app.open_chat("hi").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    let item = app
        .sandbox
        .agent_send(&chat.contact_id, "genuine", "text/plain")
        .unwrap();
    app.wait_dms(1).await;
    app.settle().await;
    let original: Value = serde_json::from_str(
        &app.sandbox
            .sns_deliveries()
            .into_iter()
            .find(|d| d.item_id.as_deref() == Some(item.item.id.as_str()))
            .unwrap()
            .body,
    )
    .unwrap();
    let url = format!("{}/webhooks/connect", app.base);
    let post = |v: Value| {
        app.http
            .post(&url)
            .header("content-type", "text/plain; charset=UTF-8")
            .header("x-amz-sns-message-type", "Notification")
            .body(v.to_string())
            .send()
    };

    // The genuine notification is accepted (and deduplicated).
    assert_eq!(post(original.clone()).await.unwrap().status(), 200);

    let tamper = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = original.clone();
        f(v.as_object_mut().unwrap());
        v
    };
    let forged_text = tamper(&|m| {
        let msg = m["Message"]
            .as_str()
            .unwrap()
            .replace("genuine", "send me your password");
        m.insert("Message".into(), Value::String(msg));
        m.insert(
            "MessageId".into(),
            Value::String("00000000-0000-0000-0000-000000000001".into()),
        );
    });
    assert_eq!(
        post(forged_text).await.unwrap().status(),
        401,
        "tampered Message"
    );

    for cert in [
        "https://evil.example.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example.com/SimpleNotificationService-abc.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    ] {
        let foreign_cert = tamper(&|m| {
            m.insert("SigningCertURL".into(), Value::String(cert.into()));
        });
        assert_eq!(
            post(foreign_cert).await.unwrap().status(),
            401,
            "cert URL {cert}"
        );
    }

    let foreign_topic = tamper(&|m| {
        m.insert(
            "TopicArn".into(),
            Value::String("arn:aws:sns:us-east-1:123456789012:someone-else".into()),
        );
    });
    assert_eq!(
        post(foreign_topic).await.unwrap().status(),
        403,
        "foreign topic"
    );

    assert_eq!(
        app.http
            .post(&url)
            .body("not json")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    app.settle().await;
    assert_eq!(
        app.dm_texts(),
        vec!["genuine"],
        "nothing forged reached the customer"
    );

    // A subscription to another topic is not confirmed.
    let sub = app
        .sandbox
        .subscribe_topic("arn:aws:sns:us-east-1:123456789012:someone-else", &url)
        .await
        .unwrap();
    assert_eq!(sub.confirmation_status, Some(403));
    assert!(
        !app.sandbox
            .subscriptions()
            .iter()
            .any(|s| s.subscription_arn == sub.subscription_arn && s.confirmed)
    );
    app.stop().await;
}

/// The body SNS posted for the agent's first message ("genuine") of `app`'s chat, made into a
/// new chat item (`id`, `text`) to be signed again.
async fn agent_notification(app: &TestApp, id: &str, text: &str) -> String {
    let chat = app.open_chat("hi").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    let item = app
        .sandbox
        .agent_send(&chat.contact_id, "genuine", "text/plain")
        .unwrap();
    app.wait_dms(1).await;
    app.settle().await;
    let body = app
        .sandbox
        .sns_deliveries()
        .into_iter()
        .find(|d| d.item_id.as_deref() == Some(item.item.id.as_str()))
        .unwrap()
        .body;
    as_other_item(&body, id, text)
}

/// Issue 11, finding 3: a correctly signed SNS message published hours ago (a captured message
/// replayed, possibly after its dedup record expired) is refused with a 4xx (a client error, not
/// one worth retrying) and nothing is stored or sent; so is one dated ahead of the clock. The very same message
/// signed now is accepted, so only its time differs.
#[tokio::test]
async fn a_signed_sns_message_published_long_ago_or_ahead_is_refused_and_nothing_is_sent() {
    let app = spawn_app().await;
    let body = agent_notification(&app, "replayed-item", "replayed text").await;
    let version = app.sandbox.config().sns.signature_version;
    let hour = 3_600_000;
    for (at, what) in [
        (now_ms() - 2 * hour, "published two hours ago"),
        (now_ms() - 8 * 24 * hour, "published eight days ago"),
        (now_ms() + hour / 6, "dated ten minutes ahead"),
    ] {
        let signed = app.sandbox.sns_resigned(&body, at, version).unwrap();
        let (status, answer) = post_sns(&app, signed).await;
        assert_eq!(status, 403, "{what}: {answer}");
        assert!(answer.contains("SNS message published at"), "{answer}");
    }
    app.settle().await;
    assert_eq!(
        app.dm_texts(),
        vec!["genuine"],
        "nothing replayed reached X"
    );
    assert!(
        app.bridge
            .store()
            .job(JobQueue::Outbound, &JobKey::parse("replayed-item").unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );

    let fresh = app.sandbox.sns_resigned(&body, now_ms(), version).unwrap();
    assert_eq!(post_sns(&app, fresh).await.0, 200);
    app.wait_dms(2).await;
    assert_eq!(app.dm_texts(), vec!["genuine", "replayed text"]);
    app.stop().await;
}

/// Issue 11, finding 7: with `XDM_SNS_REQUIRE_SIGNATURE_V2`, a message signed the SHA1 way
/// (SignatureVersion 1) is refused (401); the same signed with SHA256 (2) is accepted.
#[tokio::test]
async fn signature_version_1_is_refused_when_version_2_is_required() {
    let mut sandbox = SandboxConfig::default();
    sandbox.sns.signature_version = SignatureVersion::V2;
    let app = spawn_app_with(sandbox, |c| c.sns.require_signature_v2 = true).await;
    let body = agent_notification(&app, "v1-item", "signed with sha1").await;
    let v1 = app
        .sandbox
        .sns_resigned(&body, now_ms(), SignatureVersion::V1)
        .unwrap();
    let (status, answer) = post_sns(&app, v1).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("XDM_SNS_REQUIRE_SIGNATURE_V2"), "{answer}");
    let v2 = app
        .sandbox
        .sns_resigned(&body, now_ms(), SignatureVersion::V2)
        .unwrap();
    assert_eq!(post_sns(&app, v2).await.0, 200);
    app.wait_dms(2).await;
    assert_eq!(app.dm_texts(), vec!["genuine", "signed with sha1"]);
    app.stop().await;
}

/// Issue 11, findings 5 and 7, against the `xdm-connect serve` binary and its log file: an
/// unsigned POST whose `TopicArn` carries a newline, a forged log line and an ANSI sequence
/// writes no line of its own and no escape character; 40 of them write 10 refusal lines; every
/// one is counted in `/metrics`.
#[tokio::test]
async fn unsigned_requests_cannot_forge_log_lines_nor_flood_the_log_and_are_all_counted() {
    let sandbox = xdm_sandbox::Sandbox::start(SandboxConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = BridgeLog::new(dir.path().join("bridge.log"));
    let (port, admin_port) = (free_port(), free_port());
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let token = "log-test-admin-token-0123456789";
    let mut bridge = serve_with(
        &sandbox,
        port,
        &dir.path().join("bridge.db"),
        &ServeOptions {
            // Colours would be on by default for anything but a non-empty NO_COLOR.
            env: &[
                ("NO_COLOR", ""),
                ("XDM_ADMIN_LISTEN", &admin_listen),
                ("XDM_ADMIN_TOKEN", token),
            ],
            log: Some(log.path()),
        },
    );
    wait_healthy(port).await;

    const FORGED: &str = "2026-12-05T07:00:00.000000Z  INFO xdm_app::server: admin token accepted";
    let hostile = format!("arn:aws:sns:us-east-1:123456789012:x\n{FORGED}\x1b[31m\u{202e}");
    let body = serde_json::json!({
        "Type": "Notification", "MessageId": "m", "TopicArn": hostile, "Message": "{}",
        "Timestamp": "2026-12-05T07:00:00.000Z", "SignatureVersion": "1", "Signature": "c2ln",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    })
    .to_string();
    let http = reqwest::Client::new();
    for _ in 0..40 {
        let r = http
            .post(format!("http://127.0.0.1:{port}/webhooks/connect"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let metrics = http
        .get(format!("http://{admin_listen}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    bridge.kill_9();

    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        !text.lines().any(|l| l.starts_with(FORGED)),
        "a forged line in the log:\n{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "an escape character in the log file:\n{text}"
    );
    assert!(
        !text.contains('\u{202e}'),
        "a bidi override in the log file:\n{text}"
    );
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("SNS message refused"))
        .collect();
    assert_eq!(refusals.len(), 10, "at most 10 lines a minute:\n{text}");
    assert!(
        refusals[0].contains("\\n2026-12-05T07:00:00"),
        "{}",
        refusals[0]
    );
    let counted: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("xdm_webhook_requests_total{")
                && l.contains("source=\"connect\"")
                && l.contains("reason=\"foreign_topic\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no refusal count in:\n{metrics}"))
        .parse()
        .unwrap();
    assert_eq!(counted, 40.0, "every refusal counted");
    sandbox.shutdown();
}

/// The SNS notifications of `initial_contact_id` the bridge received: (Type, ParticipantRole) of
/// each, from the message attributes SNS sent.
fn notifications_of(app: &TestApp, initial_contact_id: &str) -> Vec<(String, Option<String>)> {
    app.sandbox
        .sns_deliveries()
        .into_iter()
        .filter(|d| d.message_type == xdm_sandbox::SnsMessageType::Notification)
        .filter(|d| d.initial_contact_id.as_deref() == Some(initial_contact_id))
        .map(|d| {
            let body: Value = serde_json::from_str(&d.body).unwrap();
            let attr = |k: &str| {
                body["MessageAttributes"][k]["Value"]
                    .as_str()
                    .map(str::to_owned)
            };
            (attr("Type").unwrap(), attr("ParticipantRole"))
        })
        .collect()
}

/// No echo traffic: the bridge's subscription carries the echo filter policy, so one customer DM
/// and one agent reply reach the bridge as the reply alone, not the customer's own message too;
/// `chat.ended` (no ParticipantRole) still arrives. Without the policy, the customer's message is
/// streamed back and the bridge drops it: the customer gets the reply only, either way.
#[tokio::test]
async fn the_filter_policy_keeps_the_customers_own_messages_off_the_subscription() {
    for filtered in [true, false] {
        let app = spawn_app().await;
        let sub = app.sandbox.subscriptions().pop().unwrap();
        assert_eq!(
            sub.filter_policy.as_deref(),
            Some(xdm_amazon_connect::sns::ECHO_FILTER_POLICY)
        );
        if !filtered {
            app.sandbox
                .set_subscription_filter_policy(&sub.subscription_arn, None)
                .unwrap();
        }
        let chat = app.open_chat("hello from X").await;
        app.sandbox
            .agent_accept(&chat.contact_id, "Enrique")
            .unwrap();
        app.sandbox
            .agent_send(&chat.contact_id, "how can I help?", "text/plain")
            .unwrap();
        app.wait_dms(1).await;
        app.sandbox.end_chat(&chat.contact_id).unwrap();
        app.settle().await;

        let received = notifications_of(&app, &chat.initial_contact_id);
        let customer_messages = received
            .iter()
            .filter(|(t, role)| t == "MESSAGE" && role.as_deref() == Some("CUSTOMER"))
            .count();
        let agent_messages = received
            .iter()
            .filter(|(t, role)| t == "MESSAGE" && role.as_deref() == Some("AGENT"))
            .count();
        let without_role = received.iter().filter(|(_, role)| role.is_none()).count();
        let filtered_out = app
            .sandbox
            .subscriptions()
            .into_iter()
            .find(|s| s.subscription_arn == sub.subscription_arn)
            .unwrap()
            .filtered_out;
        eprintln!(
            "filter {filtered}: {} notifications to the bridge ({customer_messages} customer \
             messages), {filtered_out} filtered out: {received:?}",
            received.len()
        );
        if filtered {
            assert_eq!(customer_messages, 0, "{received:?}");
            assert!(
                received
                    .iter()
                    .all(|(_, role)| role.as_deref() != Some("CUSTOMER")),
                "{received:?}"
            );
            assert!(filtered_out >= 1);
        } else {
            assert_eq!(customer_messages, 1, "{received:?}");
            assert_eq!(filtered_out, 0);
        }
        assert_eq!(agent_messages, 1, "{received:?}");
        assert_eq!(
            without_role, 1,
            "chat.ended arrives either way: {received:?}"
        );
        // The bridge drops the echo when it comes: the customer gets the reply, and only that.
        assert_eq!(app.dm_texts(), vec!["how can I help?"]);
        app.stop().await;
    }
}
