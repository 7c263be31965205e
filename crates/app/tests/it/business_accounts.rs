//! Several X business accounts on one bridge, on `serve` and on Lambda (SQS and SNS entry
//! points): each customer's DM starts a chat in its account's contact flow with its attributes,
//! and each reply leaves from the account the customer wrote to.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use xdm_app::config::{Config, XAccount};
use xdm_app::lambda::LambdaApp;
use xdm_app::sandbox_link;
use xdm_sandbox::{
    ContactFlowSpec, ContactView, DmSpec, Sandbox, SandboxConfig, SandboxHandle, SandboxUser,
};

use crate::helpers::*;

/// The second business account (logged in with OAuth 2.0) and its own contact flow.
const BRAND_B: &str = "1000000000000000002";
const FLOW_B: &str = "7d3f0b2a-5c41-4e8f-9a6d-2b1c0e9f8a73";

/// `[[x.accounts]]` for brand B: OAuth 2.0 (no OAuth 1.0a token), its flow and an attribute.
fn with_brand_b(config: &mut Config, client_id: String) {
    config.x.client_id = Some(client_id);
    config.x.accounts = vec![XAccount {
        user_id: BRAND_B.to_owned(),
        oauth1: None,
        contact_flow_id: Some(FLOW_B.to_owned()),
        attributes: BTreeMap::from([("brand".to_owned(), "B".to_owned())]),
        chat: None,
    }];
}

/// Brand B's user and contact flow in the sandbox.
fn add_brand_b(sandbox: &SandboxHandle) {
    sandbox.add_user(SandboxUser::new(BRAND_B, "Brand B", "brand_b"));
    sandbox.add_contact_flow(ContactFlowSpec::inbound(FLOW_B));
}

/// The chat of `business` (by its contact attribute), once it carries `text`.
async fn chat_of(sandbox: &SandboxHandle, business: &str, text: &str) -> ContactView {
    sandbox
        .wait_until(&format!("the chat of {business}"), WAIT, |s| {
            s.contacts().into_iter().find(|c| {
                c.attributes
                    .get("x_business_account_id")
                    .map(String::as_str)
                    == Some(business)
                    && customer_messages(c).iter().any(|m| m == text)
                    && c.customer_connected
            })
        })
        .await
        .unwrap()
}

/// Asserts the two chats' routing: A's in the default flow without B's attribute, B's in B's
/// flow with it.
fn assert_routing(sandbox: &SandboxHandle, a: &ContactView, b: &ContactView) {
    assert_eq!(a.contact_flow_id, sandbox.config().connect.contact_flow_id);
    assert!(!a.attributes.contains_key("brand"), "{:?}", a.attributes);
    assert_eq!(b.contact_flow_id, FLOW_B);
    assert_eq!(b.attributes["brand"], "B");
    assert_eq!(b.attributes["Channel"], "X");
}

/// The DMs the sandbox X received with `text`: (sender, recipient).
fn dms_with(sandbox: &SandboxHandle, text: &str) -> Vec<(String, String)> {
    sandbox
        .sent_dms()
        .into_iter()
        .filter(|d| d.text.as_deref() == Some(text))
        .map(|d| (d.sender_id, d.recipient_id))
        .collect()
}

#[tokio::test]
async fn on_serve_each_account_routes_its_customers_chats_and_answers_from_itself() {
    let sandbox_config = SandboxConfig::default();
    let client_id = sandbox_config.x.client_id.clone();
    let app = spawn_app_with(sandbox_config, |c| with_brand_b(c, client_id)).await;
    add_brand_b(&app.sandbox);
    app.add_business_account(BRAND_B).await;
    let brand_a = app.sandbox.config().x.business.id.clone();

    app.dm("to brand A").await;
    app.dm_spec(DmSpec {
        recipient_id: Some(BRAND_B.to_owned()),
        ..DmSpec::text(CUSTOMER, "to brand B")
    })
    .await;
    let chat_a = chat_of(&app.sandbox, &brand_a, "to brand A").await;
    let chat_b = chat_of(&app.sandbox, BRAND_B, "to brand B").await;
    assert_ne!(chat_a.contact_id, chat_b.contact_id);
    assert_routing(&app.sandbox, &chat_a, &chat_b);

    for (chat, reply) in [(&chat_a, "A answers"), (&chat_b, "B answers")] {
        app.sandbox.agent_accept(&chat.contact_id, "Agent").unwrap();
        app.sandbox
            .agent_send(&chat.contact_id, reply, "text/markdown")
            .unwrap();
    }
    app.wait_dms(2).await;
    app.settle().await;
    assert_eq!(
        dms_with(&app.sandbox, "A answers"),
        vec![(brand_a.clone(), CUSTOMER.to_owned())]
    );
    assert_eq!(
        dms_with(&app.sandbox, "B answers"),
        vec![(BRAND_B.to_owned(), CUSTOMER.to_owned())]
    );
    app.stop().await;
}

/// An API Gateway (REST) event POSTing `body` to `/webhooks/x`, signed with `secret`.
fn webhook_event(body: &str, secret: &str) -> Value {
    let sig = x_signature(secret, body.as_bytes());
    json!({
        "resource": "/webhooks/x", "path": "/webhooks/x", "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "X-Twitter-Webhooks-Signature": sig},
        "multiValueHeaders": {"Content-Type": ["application/json"], "X-Twitter-Webhooks-Signature": [sig]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null,
        "requestContext": {"resourcePath": "/webhooks/x", "httpMethod": "POST", "path": "/prod/webhooks/x",
            "stage": "prod", "requestId": "r", "identity": {"sourceIp": "192.133.77.8"}},
        "body": body, "isBase64Encoded": false
    })
}

/// The SNS record of an agent's message in `chat`, as Lambda receives it from the chat topic:
/// signed by the sandbox's SNS key (the functions verify it as the HTTP endpoint does).
fn agent_message_record(
    sandbox: &SandboxHandle,
    topic: &str,
    chat: &ContactView,
    text: &str,
) -> Value {
    let now = now_ms();
    let message = json!({
        "AbsoluteTime": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        "Content": text, "ContentType": "text/markdown",
        "Id": uuid::Uuid::new_v4().to_string(), "Type": "MESSAGE",
        "ParticipantId": uuid::Uuid::new_v4().to_string(), "DisplayName": "Agent",
        "ParticipantRole": "AGENT", "InitialContactId": chat.initial_contact_id,
        "ContactId": chat.contact_id,
    });
    let attribute = |v: &str| json!({"Type": "String", "Value": v});
    let attributes = json!({
        "InitialContactId": attribute(&chat.initial_contact_id),
        "ContactId": attribute(&chat.contact_id),
        "MessageVisibility": attribute("ALL"), "Type": attribute("MESSAGE"),
        "ContentType": attribute("text/markdown"), "ParticipantRole": attribute("AGENT"),
    });
    // The HTTP shape the sandbox signs, then the same fields in Lambda's record shape.
    let http = json!({"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": topic, "Message": message.to_string(), "Timestamp": "",
        "SignatureVersion": "1", "Signature": "", "SigningCertURL": sandbox.sns_cert_url(),
        "UnsubscribeURL": format!("{}/unsubscribe", sandbox.base_url()),
        "MessageAttributes": attributes});
    let signed: Value = serde_json::from_str(
        &sandbox
            .sns_resigned(&http.to_string(), now, xdm_sandbox::SignatureVersion::V1)
            .unwrap(),
    )
    .unwrap();
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic}:1"),
        "Sns": {"Type": signed["Type"], "MessageId": signed["MessageId"], "TopicArn": signed["TopicArn"],
            "Message": signed["Message"], "Timestamp": signed["Timestamp"],
            "SignatureVersion": signed["SignatureVersion"], "Signature": signed["Signature"],
            "SigningCertUrl": signed["SigningCertURL"], "Subject": null,
            "UnsubscribeUrl": signed["UnsubscribeURL"], "MessageAttributes": signed["MessageAttributes"]}}]})
}

#[tokio::test]
async fn on_lambda_each_account_routes_its_customers_chats_and_answers_from_itself() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_brand_b(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("lambda.db").display());
    let mut config = sandbox_link::bridge_config(&sandbox, "127.0.0.1:0", &store).unwrap();
    config.delivery.reorder_window_ms = 0;
    config.delivery.outbound_reorder_window_ms = 0;
    // Message buffering on: a wake-up waits the buffering window for the job to be due.
    config.delivery.buffer_window_ms = 300;
    with_brand_b(&mut config, sandbox_link::oauth2_client_id(&sandbox));
    let topic = config.connect.topic_arn.clone().unwrap();
    let app = LambdaApp::new(config.clone(), sandbox_link::sdk_config(&sandbox), &|_| {
        None
    })
    .await
    .unwrap();
    let bridge = app.bridge().await.unwrap();
    sandbox_link::store_oauth2_login(&sandbox, &config, bridge.store(), BRAND_B)
        .await
        .unwrap();
    let brand_a = sandbox.config().x.business.id.clone();
    let secret = sandbox.config().x.consumer_secret.clone();

    // X's deliveries to each account: the captured one, addressed to the sandbox's business
    // account (whose OAuth 1.0a token the bridge holds) and to brand B.
    let captured = redated(&captured_body());
    let to = |business: &str, text: &str| {
        captured
            .replace("\"40876567\"", &format!("\"{business}\""))
            .replace("Hola2", text)
    };
    let (to_a, to_b) = (to(&brand_a, "to brand A"), to(BRAND_B, "to brand B"));
    for body in [&to_a, &to_b] {
        let answer = app
            .handle(webhook_event(body, &secret), far_deadline())
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    let customer = "55125386";
    for business in [&brand_a, BRAND_B] {
        let out = app
            .handle(wake(&format!("{business}:{customer}")), far_deadline())
            .await
            .unwrap();
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    }
    let chat_a = chat_of(&sandbox, &brand_a, "to brand A").await;
    let chat_b = chat_of(&sandbox, BRAND_B, "to brand B").await;
    assert_routing(&sandbox, &chat_a, &chat_b);

    // The agents' replies, streamed by SNS to the outbound function.
    for (chat, reply) in [(&chat_a, "A answers"), (&chat_b, "B answers")] {
        let out = app
            .handle(
                agent_message_record(&sandbox, &topic, chat, reply),
                far_deadline(),
            )
            .await
            .unwrap();
        assert_eq!(out["accepted"], 1, "{out}");
    }
    sandbox
        .wait_until("both replies on X", WAIT, |s| {
            (s.sent_dms().len() >= 2).then_some(())
        })
        .await
        .unwrap();
    assert_eq!(
        dms_with(&sandbox, "A answers"),
        vec![(brand_a.clone(), customer.to_owned())]
    );
    assert_eq!(
        dms_with(&sandbox, "B answers"),
        vec![(BRAND_B.to_owned(), customer.to_owned())]
    );
    sandbox.shutdown();
}
