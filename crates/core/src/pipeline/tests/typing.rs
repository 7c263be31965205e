//! The customer typing on X, shown in their chat.

use crate::inbound::{InboundBatch, InboundEvent, Indicator};
use crate::pipeline::TYPING_INTERVAL_MS;
use crate::ports::{ChatEvent, ConnectError};

use super::fakes::*;

fn typing(created_ms: i64) -> InboundEvent {
    InboundEvent::Typing(Indicator {
        business: uid(BUSINESS),
        sender: uid(CUSTOMER),
        created_ms,
    })
}

fn typing_events(h: &Harness) -> Vec<ChatEvent> {
    h.connect.contacts()[0].events.clone()
}

#[tokio::test]
async fn typing_in_an_open_chat_is_shown_at_most_once_per_interval() {
    let h = harness();
    open_chat(&h).await;
    // A burst of 20 typing events, in separate deliveries and in one.
    for i in 0..10 {
        let r = h
            .bridge
            .accept_inbound(InboundBatch {
                events: vec![typing(100 + i)],
            })
            .await
            .unwrap();
        assert_eq!((r.typing, r.accepted, r.ignored), (1, 0, 0));
        h.clock.advance(100);
    }
    h.bridge
        .accept_inbound(InboundBatch {
            events: (0..10).map(typing).collect(),
        })
        .await
        .unwrap();
    assert_eq!(typing_events(&h), vec![ChatEvent::Typing]);
    // Once the interval has passed, the next one is shown.
    h.clock.advance(TYPING_INTERVAL_MS);
    h.bridge
        .accept_inbound(InboundBatch {
            events: vec![typing(9_000)],
        })
        .await
        .unwrap();
    assert_eq!(typing_events(&h), vec![ChatEvent::Typing; 2]);
}

#[tokio::test]
async fn typing_without_a_chat_opens_none_and_a_refusal_never_fails_the_delivery() {
    let h = harness();
    let r = h
        .bridge
        .accept_inbound(InboundBatch {
            events: vec![typing(5)],
        })
        .await
        .unwrap();
    assert_eq!(r.typing, 1);
    h.drain().await;
    assert!(h.connect.contacts().is_empty(), "typing opened a chat");
    assert!(h.connect.0.lock().unwrap().calls.is_empty());

    // The chat opens: typing is shown at once (the one without a chat took no interval).
    open_chat(&h).await;
    h.bridge
        .accept_inbound(InboundBatch {
            events: vec![typing(8)],
        })
        .await
        .unwrap();
    assert_eq!(typing_events(&h), vec![ChatEvent::Typing]);
    h.clock.advance(TYPING_INTERVAL_MS);
    h.connect
        .fail("SendEvent", ConnectError::Unavailable("503".into()));
    // A message and typing in one delivery: the message is accepted whatever Connect says.
    let r = h
        .bridge
        .accept_inbound(InboundBatch {
            events: vec![typing(20), InboundEvent::Message(dm(2, 30, "still there?"))],
        })
        .await
        .unwrap();
    assert_eq!((r.accepted, r.typing), (1, 1));
    h.drain().await;
    let contact = &h.connect.contacts()[0];
    assert_eq!(contact.messages, vec!["hi", "still there?"]);
    assert_eq!(contact.events, vec![ChatEvent::Typing]);
    let calls = h.connect.0.lock().unwrap().calls.clone();
    assert_eq!(calls.iter().filter(|c| **c == "SendEvent").count(), 2);
}
