//! Receipts of the agent's messages: delivered when X took the DM, read when the customer read it.

use crate::ids::XEventId;
use crate::inbound::{InboundBatch, InboundEvent, ReadUpTo};
use crate::ports::{ChatEvent, ConnectError, Store};

use super::fakes::*;

fn read_up_to(dm_id: &str) -> InboundBatch {
    InboundBatch {
        events: vec![InboundEvent::Read(ReadUpTo {
            business: uid(BUSINESS),
            sender: uid(CUSTOMER),
            last_read_event_id: XEventId::parse(dm_id).unwrap(),
            created_ms: 50,
        })],
    }
}

fn delivered(id: &str) -> ChatEvent {
    ChatEvent::Delivered {
        message_id: id.to_owned(),
    }
}

fn read(id: &str) -> ChatEvent {
    ChatEvent::Read {
        message_id: id.to_owned(),
    }
}

/// Sends three agent messages (the second long enough for two DMs); returns the DM ids X gave.
async fn three_agent_messages(h: &Harness, contact: &str) -> Vec<String> {
    let long = "word ".repeat(2_500);
    for (i, text) in ["first", long.trim_end(), "third"].into_iter().enumerate() {
        let item = agent_item(&format!("m{i}"), contact, 10 + i as i64, markdown(text));
        h.bridge.accept_chat_item(item).await.unwrap();
        h.drain().await;
    }
    let sent = h.x.0.lock().unwrap().sent.len();
    assert_eq!(sent, 4, "the long message is two DMs");
    (1..=sent).map(|n| (900_000 + n).to_string()).collect()
}

#[tokio::test]
async fn each_agent_message_on_x_is_delivered_and_read_up_to_the_dm_the_customer_read() {
    let h = harness();
    let contact = open_chat(&h).await;
    let dms = three_agent_messages(&h, &contact).await;
    assert_eq!(
        h.connect.contacts()[0].events,
        vec![delivered("m0"), delivered("m1"), delivered("m2")]
    );
    // Read up to the long message's first part: only the first message is read.
    let r = h.bridge.accept_inbound(read_up_to(&dms[1])).await.unwrap();
    assert_eq!((r.reads, r.accepted), (1, 0));
    assert_eq!(h.connect.contacts()[0].events[3..], [read("m0")]);
    // Up to its last part: the long one; the same read again changes nothing.
    h.bridge.accept_inbound(read_up_to(&dms[2])).await.unwrap();
    h.bridge.accept_inbound(read_up_to(&dms[2])).await.unwrap();
    assert_eq!(
        h.connect.contacts()[0].events[3..],
        [read("m0"), read("m1")]
    );
    // A read past everything: the third; nothing is left to mark.
    h.bridge
        .accept_inbound(read_up_to("999999999"))
        .await
        .unwrap();
    assert_eq!(
        h.connect.contacts()[0].events[3..],
        [read("m0"), read("m1"), read("m2")]
    );
    let left = h
        .bridge
        .store()
        .record(&format!("receipts/{contact}"))
        .await
        .unwrap();
    assert_eq!(left.unwrap().value, r#"{"messages":[]}"#);
}

#[tokio::test]
async fn a_refused_read_receipt_is_sent_with_the_next_read_and_the_record_goes_with_the_chat() {
    let h = harness();
    let contact = open_chat(&h).await;
    let dms = three_agent_messages(&h, &contact).await;
    h.connect
        .fail("SendEvent", ConnectError::Unavailable("503".into()));
    h.bridge.accept_inbound(read_up_to(&dms[0])).await.unwrap();
    assert_eq!(
        h.connect.contacts()[0].events.len(),
        3,
        "only the delivered ones"
    );
    // The next read covers it again, and what came after.
    h.bridge.accept_inbound(read_up_to(&dms[2])).await.unwrap();
    assert_eq!(
        h.connect.contacts()[0].events[3..],
        [read("m0"), read("m1")]
    );
    // The chat ends: its record is deleted.
    let key = format!("receipts/{contact}");
    assert!(h.bridge.store().record(&key).await.unwrap().is_some());
    let end = agent_item(
        "end",
        &contact,
        99,
        crate::chat_item::ChatItemBody::Event {
            content_type: crate::chat_item::event_types::CHAT_ENDED.to_owned(),
        },
    );
    h.bridge.accept_chat_item(end).await.unwrap();
    h.drain().await;
    assert!(h.bridge.store().record(&key).await.unwrap().is_none());
}
