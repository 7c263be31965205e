//! X → Connect: concurrency, ordering, duplicates, long messages.

use xdm_sandbox::{DmSpec, SignatureHeader};

use crate::helpers::*;

#[tokio::test]
async fn twenty_concurrent_first_dms_open_one_chat_and_arrive_in_created_order() {
    let app = spawn_app().await;
    let base_ts = now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let sandbox = app.sandbox.clone();
        tasks.spawn(async move {
            let spec = DmSpec {
                created_timestamp_ms: Some(base_ts + i * 10),
                event_id: Some(format!("{}", 2_039_459_599_745_679_600_i64 + i)),
                ..DmSpec::text(CUSTOMER, format!("message {i:02}"))
            };
            sandbox.deliver_dm(spec).await.unwrap().status
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), Some(200));
    }
    app.wait_contact("20 messages", |_, m| m.len() >= 20).await;
    app.settle().await;
    assert_eq!(app.contacts().len(), 1, "one chat for one customer");
    let chat = &app.contacts()[0];
    let expected: Vec<String> = (0..20).map(|i| format!("message {i:02}")).collect();
    assert_eq!(customer_messages(chat), expected);
    app.stop().await;
}

#[tokio::test]
async fn the_same_delivery_posted_twice_reaches_connect_once() {
    let app = spawn_app().await;
    app.open_chat("hello").await;
    let first = app
        .sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "only once please"))
        .await
        .unwrap();
    let again = app
        .sandbox
        .deliver_raw(first.payload.clone().into_bytes(), SignatureHeader::Valid)
        .await
        .unwrap();
    assert_eq!((first.status, again.status), (Some(200), Some(200)));
    app.settle().await;
    let chat = &app.contacts()[0];
    assert_eq!(customer_messages(chat), vec!["hello", "only once please"]);
    app.stop().await;
}

#[tokio::test]
async fn a_3000_character_dm_arrives_as_ordered_parts_with_emoji_intact() {
    let app = spawn_app().await;
    app.open_chat("hi").await;
    let unit = "Mi pedido 🇻🇪 llegó roto 👨‍👩‍👧 — ";
    let mut text = String::new();
    while text.chars().count() < 3000 {
        text.push_str(unit);
    }
    let text: String = text
        .chars()
        .take(3000)
        .collect::<String>()
        .trim_end()
        .to_owned();
    app.dm(&text).await;
    app.wait_contact("the long message", |_, m| m.len() >= 4)
        .await;
    app.settle().await;
    let chat = &app.contacts()[0];
    let parts = &customer_messages(chat)[1..];
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for p in parts {
        assert!(
            p.chars().count() <= 1024,
            "part of {} chars",
            p.chars().count()
        );
        assert!(p.encode_utf16().count() <= 1024);
    }
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let (got, want) = (words(&parts.join(" ")), words(&text));
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(
        (got.len(), first_diff),
        (want.len(), None),
        "same words in the same order: {got:?}"
    );
    assert_eq!(
        parts.join(" ").matches("🇻🇪").count(),
        text.matches("🇻🇪").count(),
        "flags intact"
    );
    assert_eq!(
        parts.join(" ").matches("👨‍👩‍👧").count(),
        text.matches("👨‍👩‍👧").count(),
        "families intact"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_business_accounts_own_dms_are_not_relayed() {
    let app = spawn_app().await;
    // With a `dm.sent` subscription X delivers the business account's own DMs too.
    let webhook = app.sandbox.webhooks()[0].id.clone();
    let business = app.sandbox.config().x.business.id.clone();
    app.sandbox
        .subscribe_activity("dm.sent", &business, Some(&webhook), None)
        .unwrap();
    app.open_chat("hi").await;
    // The bridge's DMs come back from X as `dm.sent` events (sender = the subscribed account).
    let contact = app.contacts()[0].contact_id.clone();
    app.sandbox.agent_accept(&contact, "Enrique").unwrap();
    app.sandbox
        .agent_send(&contact, "How can I help?", "text/markdown")
        .unwrap();
    app.wait_dms(1).await;
    let echo = app
        .sandbox
        .wait_until("the echo delivery", WAIT, |s| {
            s.webhook_deliveries().into_iter().find(|d| {
                matches!(
                    d.kind,
                    xdm_sandbox::DeliveryKind::Sent | xdm_sandbox::DeliveryKind::Echo
                ) && d.status.is_some()
            })
        })
        .await
        .unwrap();
    assert_eq!(echo.status, Some(200));
    app.settle().await;
    assert_eq!(customer_messages(&app.contacts()[0]), vec!["hi"]);
    app.stop().await;
}

#[tokio::test]
async fn the_customer_typing_on_x_shows_in_their_chat_at_most_once_per_interval() {
    const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
    let app = spawn_app().await;
    // Typing with no chat opens none.
    let d = app.sandbox.deliver_typing(CUSTOMER).await.unwrap();
    assert_eq!(d.status, Some(200), "{d:?}");
    app.settle().await;
    assert!(app.contacts().is_empty(), "typing opened a chat");

    app.open_chat("hello").await;
    for _ in 0..20 {
        let d = app.sandbox.deliver_typing(CUSTOMER).await.unwrap();
        assert_eq!(d.status, Some(200), "{d:?}");
    }
    app.settle().await;
    let chat = &app.contacts()[0];
    let typing: Vec<_> = chat
        .transcript
        .iter()
        .filter(|i| i.item.content_type == TYPING)
        .collect();
    assert_eq!(
        typing.len(),
        1,
        "a burst of 20 is one typing event: {typing:?}"
    );
    assert_eq!(
        typing[0].item.participant_role,
        Some(xdm_sandbox::ParticipantRole::Customer)
    );
    assert_eq!(customer_messages(chat), vec!["hello"]);
    app.stop().await;
}

/// Message buffering on (2 s): five quick DMs reach the chat as one Connect message with the
/// five lines in order; off, five messages.
#[tokio::test]
async fn with_buffering_five_quick_dms_are_one_connect_message_and_without_five() {
    for (window_ms, expected) in [
        (2_000, vec!["one\ntwo\nthree\nfour\nfive".to_owned()]),
        (
            0,
            ["one", "two", "three", "four", "five"]
                .map(str::to_owned)
                .to_vec(),
        ),
    ] {
        let app = spawn_app_with(xdm_sandbox::SandboxConfig::default(), |c| {
            c.delivery.buffer_window_ms = window_ms;
        })
        .await;
        let t = now_ms();
        for (i, text) in ["one", "two", "three", "four", "five"].iter().enumerate() {
            app.dm_spec(DmSpec {
                created_timestamp_ms: Some(t + i64::try_from(i).unwrap() * 200),
                ..DmSpec::text(CUSTOMER, *text)
            })
            .await;
        }
        app.wait_contact("the five lines", |_, m| m.concat().contains("five"))
            .await;
        app.settle().await;
        let chats = app.contacts();
        assert_eq!(chats.len(), 1);
        assert_eq!(
            customer_messages(&chats[0]),
            expected,
            "window {window_ms} ms"
        );
        app.stop().await;
    }
}
