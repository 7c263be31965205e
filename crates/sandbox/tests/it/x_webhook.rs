//! The sandbox acting as X towards a webhook: CRC, signed deliveries, echoes.

use serde_json::{Value, json};
use xdm_sandbox::x::oauth_verify::{Credentials, authorization_header};
use xdm_sandbox::{DeliveryKind, DmSpec, PayloadShape, SandboxError, SandboxUser, SignatureHeader};

use crate::support::{Receiver, WAIT, hmac_b64, http, sandbox};

#[tokio::test]
async fn set_webhook_runs_a_crc_like_x() {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    let outcome = sb.set_webhook(&rx.webhook_url()).await.unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.status, Some(200));
    let token = rx.inbox().crc_tokens[0].clone();
    assert_eq!(token, outcome.crc_token);
    // base64 of a UUID, like X's tokens.
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    assert!(uuid::Uuid::parse_str(std::str::from_utf8(&decoded).unwrap()).is_ok());
    assert!(sb.webhook().unwrap().valid);

    // A probe with a JSON-looking token reaches the webhook verbatim; this one refuses it.
    let probe = sb.crc_check(&rx.webhook_url(), r#"{"a":1}"#).await.unwrap();
    assert_eq!(probe.status, Some(400));
    assert!(!probe.ok);
    assert_eq!(rx.inbox().crc_tokens.len(), 1);
}

#[tokio::test]
async fn a_wrong_crc_answer_makes_the_webhook_invalid_and_blocks_deliveries() {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    rx.inbox().wrong_crc = true;
    let outcome = sb.set_webhook(&rx.webhook_url()).await.unwrap();
    assert!(!outcome.ok);
    assert_eq!(outcome.error.as_deref(), Some("wrong response_token"));
    let err = sb
        .deliver_dm(DmSpec::text("55125386", "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::WebhookInvalid { .. }), "{err}");
    assert!(rx.inbox().webhook_posts.is_empty());
    // Once the webhook answers correctly, the next delivery re-validates it first.
    rx.inbox().wrong_crc = false;
    let delivery = sb.deliver_dm(DmSpec::text("55125386", "hi")).await.unwrap();
    assert_eq!(delivery.status, Some(200));
}

#[tokio::test]
async fn deliveries_are_signed_x_escaped_and_carry_users() {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    sb.set_webhook(&rx.webhook_url()).await.unwrap();
    let mut eli = SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12");
    eli.location = Some("Santiago, Chile".into());
    sb.add_user(eli);

    let delivery = sb
        .deliver_dm(
            DmSpec::text("55125386", "¿Hola? https://t.co/x").with_event_id("2039459599745679612"),
        )
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
    assert_eq!(delivery.event_id.as_deref(), Some("2039459599745679612"));
    let (headers, body) = rx.inbox().webhook_posts[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-twitter-webhooks-signature"].to_str().unwrap(),
        format!(
            "sha256={}",
            hmac_b64(&sb.config().x.consumer_secret, body.as_bytes())
        )
    );
    assert!(body.contains(r"https:\/\/t.co\/x"), "{body}");
    assert!(body.contains(r"\u00bfHola?"), "{body}");
    // `set_webhook` subscribed the business account through the X Activity API.
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["filter"]["user_id"], "4337869213");
    assert_eq!(v["data"]["event_type"], "dm.received");
    let payload = &v["data"]["payload"];
    let event = &payload["direct_message_events"][0];
    assert_eq!(event["type"], "message_create");
    assert_eq!(event["message_create"]["sender_id"], "55125386");
    assert_eq!(
        event["message_create"]["target"]["recipient_id"],
        "4337869213"
    );
    assert_eq!(
        payload["users"]["55125386"]["data"]["username"],
        "ElizabethFue12"
    );
    assert_eq!(
        payload["users"]["4337869213"]["data"]["username"],
        "AcmeSupport"
    );

    // Fresh event ids increase; users can be left out.
    let first = sb.deliver_dm(DmSpec::text("55125386", "a")).await.unwrap();
    let second = sb
        .deliver_dm(
            DmSpec::text("55125386", "b")
                .with_shape(PayloadShape::Xaa)
                .without_users(),
        )
        .await
        .unwrap();
    let a: u64 = first.event_id.unwrap().parse().unwrap();
    let b: u64 = second.event_id.unwrap().parse().unwrap();
    assert!(b > a);
    let xaa: Value = serde_json::from_str(&second.payload).unwrap();
    assert_eq!(xaa["data"]["event_type"], "dm.received");
    assert!(xaa["data"]["payload"].get("users").is_none());

    let typing = sb.deliver_typing("55125386").await.unwrap();
    let read = sb
        .deliver_read("55125386", "2039459599745679612")
        .await
        .unwrap();
    assert_eq!(
        (typing.kind, typing.status),
        (DeliveryKind::Typing, Some(200))
    );
    let read_body: Value = serde_json::from_str(&read.payload).unwrap();
    assert_eq!(read_body["data"]["event_type"], "dm.read");
    assert_eq!(
        read_body["data"]["payload"]["direct_message_mark_read_events"][0]["last_read_event_id"],
        "2039459599745679612"
    );
}

#[tokio::test]
async fn raw_deliveries_choose_their_signature() {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    sb.set_webhook(&rx.webhook_url()).await.unwrap();
    let body = br#"{"for_user_id":"4337869213","direct_message_events":[]}"#.to_vec();
    let valid = sb
        .deliver_raw(body.clone(), SignatureHeader::Valid)
        .await
        .unwrap();
    let forged = sb
        .deliver_raw(body.clone(), SignatureHeader::Custom("sha256=AAAA".into()))
        .await
        .unwrap();
    let unsigned = sb.deliver_raw(body, SignatureHeader::Omit).await.unwrap();
    assert_eq!(valid.status, Some(200));
    assert_eq!(forged.status, Some(401));
    assert_eq!(unsigned.status, Some(401));
    assert!(
        !rx.inbox().webhook_posts[2]
            .0
            .contains_key("x-twitter-webhooks-signature")
    );
    assert_eq!(sb.webhook_deliveries().len(), 3);
}

#[tokio::test]
async fn dms_sent_through_the_api_are_echoed_to_account_activity_webhooks() {
    let sb = crate::support::sandbox_with(xdm_sandbox::SandboxConfig {
        x: xdm_sandbox::XConfig {
            account_activity_api: true,
            ..xdm_sandbox::XConfig::default()
        },
        ..xdm_sandbox::SandboxConfig::default()
    })
    .await;
    let rx = Receiver::for_sandbox(&sb).await;
    sb.set_webhook(&rx.webhook_url()).await.unwrap();
    let x = &sb.config().x;
    let creds = Credentials {
        consumer_key: &x.consumer_key,
        consumer_secret: &x.consumer_secret,
        token: &x.access_token,
        token_secret: &x.access_token_secret,
    };
    let url = url::Url::parse(&format!(
        "{}/2/dm_conversations/with/55125386/messages",
        sb.base_url()
    ))
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let auth = authorization_header("POST", &url, &[], creds, "echo-nonce", now);
    let resp = http()
        .post(url)
        .header("authorization", auth)
        .json(&json!({"text": "An agent will be with you shortly."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let dm_event_id = sb.sent_dms()[0].dm_event_id.clone();
    let echo = sb
        .wait_until("echo", WAIT, |h| {
            h.webhook_deliveries()
                .into_iter()
                .find(|d| d.kind == DeliveryKind::Echo)
        })
        .await
        .unwrap();
    assert_eq!(echo.event_id.as_deref(), Some(dm_event_id.as_str()));
    let v: Value = serde_json::from_str(&echo.payload).unwrap();
    let create = &v["direct_message_events"][0]["message_create"];
    assert_eq!(create["sender_id"], v["for_user_id"]);
    assert_eq!(create["source_app_id"], "13090192");
    assert_eq!(v["apps"]["13090192"]["name"], "AcmeSupportBridge");
    assert_eq!(
        create["message_data"]["text"],
        "An agent will be with you shortly."
    );
}
