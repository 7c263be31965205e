//! Customers on X Chat: sealed messages opened at delivery, unreadable ones never shown as the
//! customer's words, replies sealed with the conversation key the customer last used.

use crate::inbound::{InboundBatch, InboundEvent};
use crate::ports::{Store, XError};

use super::fakes::*;

fn chats(items: Vec<crate::inbound::InboundChat>) -> InboundBatch {
    InboundBatch {
        events: items.into_iter().map(InboundEvent::Chat).collect(),
    }
}

#[tokio::test]
async fn an_x_chat_message_joins_the_customers_chat_once_opened_and_marks_the_channel() {
    let h = harness();
    let r = h
        .bridge
        .accept_inbound(chats(vec![chat("m-1", 5001, 10, "hola por chat", "100")]))
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
    // Redelivered: the same message id is a duplicate, whatever the envelope.
    let again = h
        .bridge
        .accept_inbound(chats(vec![chat("m-1", 5001, 10, "hola por chat", "100")]))
        .await
        .unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["hola por chat"]);
    assert_eq!(contacts[0].attributes["x_channel"], "chat");
    assert_eq!(h.x.0.lock().unwrap().chats_opened, 1);
    // A chat X Chat opened is marked at its start: no update needed.
    assert!(
        !h.connect
            .0
            .lock()
            .unwrap()
            .calls
            .contains(&"UpdateContactAttributes")
    );
    // The conversation key is kept for replies: the key change, not a key.
    let record = h
        .bridge
        .store()
        .record(&format!("x-chat/{BUSINESS}/{CUSTOMER}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.value.contains("\"key_version\":\"100\""),
        "{}",
        record.value
    );
    assert!(record.value.contains("key-change-100"));
}

#[tokio::test]
async fn a_customer_moving_from_dms_to_x_chat_stays_in_the_same_chat() {
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "first on DMs")]))
        .await
        .unwrap();
    h.drain().await;
    h.bridge
        .accept_inbound(chats(vec![chat("m-2", 5002, 20, "now on X Chat", "100")]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["first on DMs", "now on X Chat"]);
    // The chat says where the customer is now.
    assert_eq!(contacts[0].attributes["x_channel"], "chat");
    let calls = h.connect.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == "UpdateContactAttributes")
            .count(),
        1
    );
    // Later X Chat messages change nothing more.
    h.bridge
        .accept_inbound(chats(vec![chat("m-2b", 5003, 30, "again", "100")]))
        .await
        .unwrap();
    h.drain().await;
    let calls = h.connect.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == "UpdateContactAttributes")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_message_that_fails_its_checks_reaches_the_agent_as_a_note_never_as_text() {
    let h = harness();
    let mut forged = chat("m-3", 0, 10, "transfer the money", "100");
    forged.encoded_event = "forged|transfer the money".into();
    h.bridge.accept_inbound(chats(vec![forged])).await.unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages.len(), 1);
    let shown = &contacts[0].messages[0];
    assert!(shown.starts_with("⚠ xdm-connect:"), "{shown}");
    assert!(!shown.contains("transfer the money"));
    // No key was learnt from it.
    assert!(
        h.bridge
            .store()
            .record(&format!("x-chat/{BUSINESS}/{CUSTOMER}"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_business_accounts_own_x_chat_messages_are_echoes() {
    let h = harness();
    let mut own = chat("m-4", 5004, 10, "sent by the business", "100");
    own.sender = uid(BUSINESS);
    let r = h.bridge.accept_inbound(chats(vec![own])).await.unwrap();
    assert_eq!((r.accepted, r.echoes), (0, 1));
    h.drain().await;
    assert!(h.connect.contacts().is_empty());
}

#[tokio::test]
async fn replies_to_an_x_chat_customer_are_sealed_with_the_newest_key_and_keep_their_ids_on_retry()
{
    let h = harness();
    h.bridge
        .accept_inbound(chats(vec![
            chat("m-5", 5005, 10, "hi", "200"),
            chat("m-6", 5006, 20, "older key arrives late", "100"),
        ]))
        .await
        .unwrap();
    h.drain().await;
    let contact = h.connect.contacts()[0].id.clone();
    // The first send fails after X may have taken it: the retry must reuse the message id.
    h.x.0
        .lock()
        .unwrap()
        .chat_faults
        .push_back(XError::Unavailable("connection reset".into()));
    let item = agent_item("i1", &contact, 30, markdown("Your order is **on its way**"));
    h.bridge.accept_chat_item(item).await.unwrap();
    h.drain().await;
    let x = h.x.0.lock().unwrap();
    assert!(x.sent.is_empty(), "nothing went as a legacy DM");
    assert_eq!(x.chats_sent.len(), 1);
    let sent = &x.chats_sent[0];
    assert_eq!(sent.text, "Your order is on its way");
    assert_eq!(sent.recipient.as_str(), CUSTOMER);
    // The newest key by version, though the older one was opened last.
    assert_eq!(sent.key.key_version, "200");
    assert_eq!(sent.message_id.len(), 36);
    let first_id = sent.message_id.clone();
    drop(x);
    // The same item delivered again (a retry of the job) names the same message.
    assert_eq!(
        super::super::x_chat::chat_message_id("reply:i1", 0),
        first_id
    );
}

#[tokio::test]
async fn x_refusing_a_reply_tells_the_agent() {
    let h = harness();
    h.bridge
        .accept_inbound(chats(vec![chat("m-7", 5007, 10, "hi", "100")]))
        .await
        .unwrap();
    h.drain().await;
    let contact = h.connect.contacts()[0].id.clone();
    h.x.0
        .lock()
        .unwrap()
        .chat_faults
        .push_back(XError::Invalid("INVALID_SENDER_SIGNATURE".into()));
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 30, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    let messages = &h.connect.contacts()[0].messages;
    assert!(
        messages.last().unwrap().contains("was not delivered"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn an_agents_files_reach_an_x_chat_customer_on_x_chat_and_others_as_a_sentence_there() {
    use crate::chat_item::{AttachmentStatus, ChatItemBody};
    use crate::inbound::MediaKind;
    let h = harness();
    h.bridge
        .accept_inbound(chats(vec![chat("m-8", 5008, 10, "hi", "100")]))
        .await
        .unwrap();
    h.drain().await;
    let contact = h.connect.contacts()[0].id.clone();
    let png: Vec<u8> = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    {
        let mut s = h.connect.0.lock().unwrap();
        s.agent_files
            .insert("a-png".into(), ("image/png".into(), png.clone()));
        s.agent_files
            .insert("a-pdf".into(), ("application/pdf".into(), vec![1]));
    }
    let files = vec![
        file(
            "a-png",
            "receipt.png",
            "image/png",
            AttachmentStatus::Approved,
        ),
        file(
            "a-pdf",
            "invoice.pdf",
            "application/pdf",
            AttachmentStatus::Approved,
        ),
    ];
    h.bridge
        .accept_chat_item(agent_item(
            "i9",
            &contact,
            30,
            ChatItemBody::Attachment { attachments: files },
        ))
        .await
        .unwrap();
    h.drain().await;
    let x = h.x.0.lock().unwrap();
    assert!(
        x.sent.is_empty() && x.uploads.is_empty(),
        "nothing went the legacy DM way"
    );
    assert_eq!(x.chat_files_sent.len(), 1);
    let (id, kind, bytes) = &x.chat_files_sent[0];
    assert_eq!((kind, bytes), (&MediaKind::Photo, &png));
    assert_eq!(id, &super::super::x_chat::chat_message_id("file:i9", 0));
    let texts: Vec<&str> = x.chats_sent.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        vec!["The agent sent a document (invoice.pdf) that can't be delivered over X DM."]
    );
}
