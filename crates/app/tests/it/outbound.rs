//! Connect → X: rendering, dedup, the routing filter.

use xdm_sandbox::{ItemSpec, MessageVisibility, ParticipantRole};

use crate::helpers::*;

#[tokio::test]
async fn agent_markdown_reaches_x_as_readable_text_once_even_when_sns_redelivers() {
    let app = spawn_app().await;
    let chat = app.open_chat("hi").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    let item = app
        .sandbox
        .agent_send(
            &chat.contact_id,
            "Your refund is **approved**. Details: [refund policy](https://example.com/refunds)",
            "text/markdown",
        )
        .unwrap();
    let texts = app.wait_dms(1).await;
    assert_eq!(
        texts,
        vec!["Your refund is approved. Details: refund policy (https://example.com/refunds)"]
    );
    let dm = &app.sandbox.sent_dms()[0];
    assert_eq!(dm.recipient_id, CUSTOMER);
    assert_eq!(dm.sender_id, app.sandbox.config().x.business.id);

    // SNS delivers the same notification again (at-least-once): still one DM.
    let delivery = app
        .sandbox
        .sns_deliveries()
        .into_iter()
        .find(|d| d.item_id.as_deref() == Some(item.item.id.as_str()))
        .unwrap();
    let attempts = app.sandbox.redeliver(&delivery.message_id).await.unwrap();
    assert_eq!(attempts.last().unwrap().status, Some(200));
    app.settle().await;
    assert_eq!(app.dm_texts().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn customer_items_and_agent_only_items_produce_no_dm() {
    let app = spawn_app().await;
    let chat = app.open_chat("hi").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    app.sandbox
        .agent_send_item(
            &chat.contact_id,
            ItemSpec {
                role: ParticipantRole::Agent,
                visibility: MessageVisibility::Agent,
                content_type: "text/plain".into(),
                content: Some("internal note: VIP customer".into()),
                ..ItemSpec::default()
            },
        )
        .unwrap();
    app.sandbox
        .agent_send_item(
            &chat.contact_id,
            ItemSpec {
                role: ParticipantRole::Customer,
                visibility: MessageVisibility::All,
                content_type: "text/plain".into(),
                content: Some("a customer message".into()),
                ..ItemSpec::default()
            },
        )
        .unwrap();
    // a control message after them proves the two were processed first
    app.sandbox
        .agent_send(&chat.contact_id, "visible", "text/plain")
        .unwrap();
    app.wait_dms(1).await;
    app.settle().await;
    assert_eq!(app.dm_texts(), vec!["visible"]);
    app.stop().await;
}
