//! What a new chat starts with: the customer's Customer Profiles id and, with persistent chat
//! on, the customer's previous chat.

use std::collections::BTreeMap;

use crate::ports::{ConnectError, Store};
use crate::profile::XProfile;

use super::fakes::*;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn with_profiles(h: &Harness) {
    h.connect.0.lock().unwrap().profiles = Some(BTreeMap::new());
}

/// One customer DM, delivered.
async fn customer_writes(h: &Harness, event_id: u64, text: &str) {
    let mut m = dm(event_id, h.bridge.now_ms(), text);
    m.created_ms = h.bridge.now_ms();
    h.bridge.accept_inbound(batch(vec![m])).await.unwrap();
    h.drain().await;
}

#[tokio::test]
async fn the_first_chat_creates_the_profile_the_next_finds_it_and_a_new_name_updates_it() {
    let h = harness();
    with_profiles(&h);
    customer_writes(&h, 1, "hi").await;
    let first = h.connect.contacts()[0].clone();
    assert_eq!(first.customer_id.as_deref(), Some("profile-0"));
    let profiles = h.connect.0.lock().unwrap().profiles.clone().unwrap();
    assert_eq!(
        profiles.get(CUSTOMER),
        Some(&(
            "profile-0".to_owned(),
            Some("Elizabeth Fuentes".to_owned()),
            Some("ElizabethFue12".to_owned())
        ))
    );

    end_chat(&h, &first.id).await;
    customer_writes(&h, 2, "me again").await;
    assert_eq!(
        h.connect.contacts()[1].customer_id.as_deref(),
        Some("profile-0")
    );

    // The customer renamed themselves on X: the profile follows.
    end_chat(&h, "contact-1").await;
    let mut renamed = dm(3, h.bridge.now_ms(), "new name");
    renamed.sender_profile = Some(XProfile {
        name: Some("Eli F.".into()),
        ..renamed.sender_profile.clone().unwrap()
    });
    h.bridge.accept_inbound(batch(vec![renamed])).await.unwrap();
    h.drain().await;
    assert_eq!(
        h.connect.contacts()[2].customer_id.as_deref(),
        Some("profile-0")
    );
    let profiles = h.connect.0.lock().unwrap().profiles.clone().unwrap();
    assert_eq!(profiles.len(), 1, "one profile per customer");
    assert_eq!(profiles[CUSTOMER].1.as_deref(), Some("Eli F."));
}

#[tokio::test]
async fn without_a_domain_or_when_profiles_fail_the_chat_starts_without_a_profile() {
    let h = harness();
    customer_writes(&h, 1, "no domain").await;
    assert_eq!(h.connect.contacts()[0].customer_id, None);

    let h = harness();
    with_profiles(&h);
    h.connect.fail(
        "CustomerProfile",
        ConnectError::Unavailable("profile down".into()),
    );
    customer_writes(&h, 1, "profiles down").await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.customer_id, None);
    assert_eq!(c.messages, vec!["profiles down"]);
    assert_eq!(h.open_jobs().await, 0, "the message was delivered at once");
}

#[tokio::test]
async fn with_persistent_chat_a_returning_customer_continues_the_previous_chat() {
    let h = harness_with(|c| c.persistent_chat_window_ms = 30 * DAY_MS);
    customer_writes(&h, 1, "first").await;
    assert_eq!(h.connect.contacts()[0].continues, None);
    end_chat(&h, "contact-0").await;

    customer_writes(&h, 2, "back").await;
    assert_eq!(
        h.connect.contacts()[1].continues.as_deref(),
        Some("contact-0")
    );
    assert_eq!(h.connect.contacts()[1].messages, vec!["back"]);
    // The record was used: the open chat has none until it ends.
    assert!(
        h.bridge
            .store()
            .records("previous-chat/")
            .await
            .unwrap()
            .is_empty()
    );

    // The chat after that continues the second one (which carries the first).
    end_chat(&h, "contact-1").await;
    customer_writes(&h, 3, "again").await;
    assert_eq!(
        h.connect.contacts()[2].continues.as_deref(),
        Some("contact-1")
    );
}

#[tokio::test]
async fn persistent_chat_off_or_past_the_window_starts_afresh() {
    let h = harness();
    customer_writes(&h, 1, "first").await;
    end_chat(&h, "contact-0").await;
    customer_writes(&h, 2, "back").await;
    assert_eq!(h.connect.contacts()[1].continues, None);
    assert!(
        h.bridge
            .store()
            .records("previous-chat/")
            .await
            .unwrap()
            .is_empty()
    );

    let h = harness_with(|c| c.persistent_chat_window_ms = DAY_MS);
    customer_writes(&h, 1, "first").await;
    end_chat(&h, "contact-0").await;
    h.clock.advance(DAY_MS + 1);
    customer_writes(&h, 2, "a day later").await;
    assert_eq!(h.connect.contacts()[1].continues, None);
    // The purge deletes the stale record; a fresh one stays.
    assert_eq!(h.bridge.purge_previous_chats().await.unwrap(), 1);
    end_chat(&h, "contact-1").await;
    assert_eq!(h.bridge.purge_previous_chats().await.unwrap(), 0);
    assert_eq!(
        h.bridge
            .store()
            .records("previous-chat/")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_chat_connect_will_not_continue_is_started_afresh_with_the_message_once() {
    let h = harness_with(|c| c.persistent_chat_window_ms = 30 * DAY_MS);
    customer_writes(&h, 1, "first").await;
    end_chat(&h, "contact-0").await;
    // Already continued elsewhere (e.g. by a flow's persistent-contact block).
    h.connect
        .0
        .lock()
        .unwrap()
        .continued
        .push("contact-0".into());

    customer_writes(&h, 2, "back").await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].continues, None);
    assert_eq!(contacts[1].messages, vec!["back"]);
    assert_eq!(h.open_jobs().await, 0);
    // Not asked again for the next chat.
    assert!(
        h.bridge
            .store()
            .records("previous-chat/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_business_account_with_its_own_routing_starts_chats_in_its_flow_with_its_attributes() {
    let other = "1000000000000000001";
    let h = harness_with(|c| {
        c.accounts.insert(
            uid(other),
            crate::pipeline::AccountRouting {
                contact_flow_id: Some("flow-b".into()),
                attributes: BTreeMap::from([
                    ("brand".to_owned(), "B".to_owned()),
                    // The bridge's own attributes win.
                    ("Channel".to_owned(), "not X".to_owned()),
                ]),
            },
        );
    });
    customer_writes(&h, 1, "to the default account").await;
    let mut to_other = dm(2, h.bridge.now_ms(), "to the other account");
    to_other.business = uid(other);
    to_other.recipient = uid(other);
    h.bridge
        .accept_inbound(batch(vec![to_other]))
        .await
        .unwrap();
    h.drain().await;

    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2, "one chat per (account, customer)");
    assert_eq!(contacts[0].contact_flow_id, None);
    assert!(!contacts[0].attributes.contains_key("brand"));
    assert_eq!(contacts[1].contact_flow_id.as_deref(), Some("flow-b"));
    assert_eq!(contacts[1].attributes["brand"], "B");
    assert_eq!(contacts[1].attributes["Channel"], "X");
    assert_eq!(contacts[1].attributes["x_business_account_id"], other);
}
