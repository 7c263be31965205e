//! Events handed from their acceptance to their delivery in the process that runs both, instead
//! of parsed back from the stored payload (`pipeline/handoff.rs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::chat_item::{AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, event_types};
use crate::inbound::{ChatKeyChange, InboundEvent, InboundMedia, MediaKind};
use crate::jobs::JobQueue;

use super::fakes::*;

/// Polls `done` every 5 ms for up to 2 s.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn dms_accepted_while_this_process_delivers_are_handed_over_once_and_delivered() {
    let h = harness();
    // A process that only accepts (no dispatcher here) keeps nothing.
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "before")]))
        .await
        .unwrap();
    assert_eq!(h.bridge.inbound_handoff.len(), 0);

    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(JobQueue::Inbound, stopped));
    until(|| h.bridge.inbound_handoff.is_on()).await;
    assert!(h.bridge.inbound_handoff.is_on());
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, "handed over")]))
        .await
        .unwrap();
    // X's redelivery is a duplicate: not handed over again.
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, "handed over")]))
        .await
        .unwrap();
    assert_eq!(h.bridge.inbound_handoff.len(), 1);

    h.clock.advance(1_000);
    h.bridge.wake(JobQueue::Inbound);
    until(|| h.connect.contacts().first().map_or(0, |c| c.messages.len()) >= 2).await;
    // The first from its payload, the second from the hand-off: the same chat, in order, once.
    assert_eq!(h.connect.contacts().len(), 1);
    assert_eq!(h.connect.contacts()[0].messages, ["before", "handed over"]);
    assert_eq!(h.bridge.inbound_handoff.len(), 0, "taken by its delivery");
    assert_eq!(h.open_jobs().await, 0);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn chat_items_accepted_while_this_process_delivers_are_handed_over_once_and_sent() {
    let h = harness();
    let contact = open_chat(&h).await;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(JobQueue::Outbound, stopped));
    until(|| h.bridge.outbound_handoff.is_on()).await;
    let item = agent_item("i1", &contact, 1, markdown("**On it**"));
    h.bridge.accept_chat_item(item.clone()).await.unwrap();
    h.bridge.accept_chat_item(item).await.unwrap();
    assert_eq!(h.bridge.outbound_handoff.len(), 1);

    h.clock.advance(1_000);
    h.bridge.wake(JobQueue::Outbound);
    until(|| !h.x.sent_texts().is_empty()).await;
    assert_eq!(h.x.sent_texts(), vec!["On it"]);
    assert_eq!(h.bridge.outbound_handoff.len(), 0, "taken by its delivery");
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// What the hand-off gives a delivery must be what its payload would: every kind of event read
/// back from the JSON it is stored as equals the value handed over.
#[test]
fn payloads_read_back_equal_the_events_handed_over() {
    let mut with_media = dm(3, 30, "a photo: \"quoted\", ñ, 🙂, \\ and a\nnew line");
    with_media.media = Some(InboundMedia {
        kind: MediaKind::Photo,
        media_id: "1937".into(),
        url: "https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg".into(),
        content_type: Some("image/jpeg".into()),
        sealed: Some(ChatKeyChange {
            conversation_id: format!("{BUSINESS}:{CUSTOMER}"),
            key_version: "1700000000000".into(),
            encoded_event: "AAEC".into(),
        }),
    });
    let mut without_profile = dm(4, 40, "");
    without_profile.sender_profile = None;
    let events = [
        InboundEvent::Message(dm(1, 10, "hi")),
        InboundEvent::Message(with_media),
        InboundEvent::Message(without_profile),
        InboundEvent::Chat(chat("6f1c-4a", 7, 50, "sealed text", "1700000000000")),
    ];
    for event in events {
        let stored = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<InboundEvent>(&stored).unwrap(),
            event
        );
    }
    let contact = "5c1b7d1a-0c3e-4f6e-9b1e-2d3f4a5b6c7d";
    let file = AttachmentRef {
        attachment_id: "att-1".into(),
        name: "receipt.pdf".into(),
        content_type: "application/pdf".into(),
        status: AttachmentStatus::Other("SCANNING".into()),
    };
    let items: [ChatItem; 4] = [
        agent_item("i1", contact, 1, markdown("Your order is **confirmed**")),
        agent_item(
            "i2",
            contact,
            2,
            ChatItemBody::Attachment {
                attachments: vec![file],
            },
        ),
        agent_item(
            "i3",
            contact,
            3,
            ChatItemBody::Event {
                content_type: event_types::CHAT_ENDED.into(),
            },
        ),
        agent_item(
            "i4",
            contact,
            4,
            ChatItemBody::Other {
                item_type: "NEW".into(),
            },
        ),
    ];
    for item in items {
        let stored = serde_json::to_string(&item).unwrap();
        assert_eq!(serde_json::from_str::<ChatItem>(&stored).unwrap(), item);
    }
}
