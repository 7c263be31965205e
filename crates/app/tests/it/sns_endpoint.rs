//! `POST /webhooks/connect`: only signed notifications of the configured topic get in.

use serde_json::Value;

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
