//! Customer DMs reaching Connect: opening chats, ordering, splitting, profiles, failures.

use crate::ids::InitialContactId;
use crate::jobs::{JobQueue, JobState};
use crate::ports::{Clock, ConnectError, Store, XError};
use crate::profile::XProfile;
use crate::session::SessionStatus;

use super::fakes::*;

#[tokio::test]
async fn first_dm_opens_a_chat_with_profile_attributes_then_streams_and_connects() {
    let h = harness();
    let r = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "Hola2")]))
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!(c.messages, vec!["Hola2"]);
    assert_eq!(c.display_name, "Elizabeth Fuentes");
    assert_eq!(c.attributes["Channel"], "X");
    assert_eq!(c.attributes["customerId"], CUSTOMER);
    assert_eq!(c.attributes["customerName"], "Elizabeth Fuentes");
    assert_eq!(c.attributes["x_username"], "ElizabethFue12");
    assert_eq!(
        c.attributes["x_profile_url"],
        "https://x.com/ElizabethFue12"
    );
    assert_eq!(c.attributes["x_followers_count"], "1146");
    assert_eq!(c.attributes["x_business_account_id"], BUSINESS);
    assert!(c.streaming && c.connected);
    // the session row exists and is live
    let s = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, SessionStatus::Live);
    assert_eq!(s.initial_contact_id.as_str(), "contact-0");
    // streaming was started before the participant connection
    let calls = h.connect.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls,
        vec![
            "StartChatContact",
            "StartContactStreaming",
            "CreateParticipantConnection"
        ]
    );
}

#[tokio::test]
async fn echoes_and_duplicates_never_reach_connect() {
    let h = harness();
    let mut echo = dm(2, 20, "Thanks! An agent will be with you shortly.");
    echo.sender = uid(BUSINESS);
    echo.recipient = uid(CUSTOMER);
    let r = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi"), echo]))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.echoes), (1, 1));
    let again = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 1);
    assert_eq!(h.connect.contacts()[0].messages, vec!["hi"]);
}

#[tokio::test]
async fn messages_of_one_customer_arrive_in_created_order_whatever_the_arrival_order() {
    let h = harness();
    // accepted in reverse order, in separate deliveries within the reorder window
    for i in (1..=5u64).rev() {
        h.bridge
            .accept_inbound(batch(vec![dm(100 + i, i as i64 * 10, &format!("m{i}"))]))
            .await
            .unwrap();
    }
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["m1", "m2", "m3", "m4", "m5"]);
}

#[tokio::test]
async fn long_message_is_split_in_order_and_retry_does_not_duplicate_parts() {
    let h = harness();
    let text = "word ".repeat(600); // 3,000 chars
    // the second SendMessage fails transiently once: the retry must not post part 1 twice
    h.connect
        .fail_after("SendMessage", 1, ConnectError::Unavailable("blip".into()));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "opening")]))
        .await
        .unwrap();
    h.drain().await;
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, &text)]))
        .await
        .unwrap();
    h.drain().await;
    let msgs = &h.connect.contacts()[0].messages;
    assert_eq!(msgs.len(), 1 + 3, "{msgs:?}");
    let calls = h
        .connect
        .0
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| **c == "SendMessage")
        .count();
    assert_eq!(
        calls,
        3 + 2,
        "part 1 was posted again on retry (deduplicated by its ClientToken)"
    );
    assert!(msgs[1..].iter().all(|m| m.chars().count() <= 1024));
    assert_eq!(msgs[1..].join(" ").split_whitespace().count(), 600);
}

#[tokio::test]
async fn first_dm_longer_than_the_limit_opens_the_chat_with_its_first_part() {
    let h = harness();
    let text = "ab ".repeat(1000);
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, &text)]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages.len(), 3);
    assert_eq!(c.messages.join(" ").split_whitespace().count(), 1000);
}

#[tokio::test]
async fn access_denied_on_send_opens_a_new_chat_carrying_the_message() {
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "first")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.end(0); // the chat timed out on the Connect side, nobody told us
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, "second")]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].messages, vec!["second"]);
    let old = h
        .bridge
        .store()
        .session_by_initial_contact(&InitialContactId::parse("contact-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, SessionStatus::Ended);
    let open = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.initial_contact_id.as_str(), "contact-1");
}

#[tokio::test]
async fn a_crash_between_start_chat_and_connection_resumes_without_duplicating_the_opening_message()
{
    let h = harness();
    h.connect.fail(
        "CreateParticipantConnection",
        ConnectError::Unavailable("down".into()),
    );
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hello")]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["hello"]);
    assert!(contacts[0].connected);
}

#[tokio::test]
async fn losing_the_race_stops_the_duplicate_contact_and_uses_the_winner() {
    let h = harness();
    // Another worker (say, a second replica) opened the customer's chat between our lookup and
    // our insert: simulate by inserting its session directly after our StartChatContact.
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "theirs")]))
        .await
        .unwrap();
    h.drain().await;
    let winner = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    // A direct call of start_chat for a second message sees OpenExists.
    let started = h
        .bridge
        .start_chat(
            &dm(2, 20, "ours"),
            &[crate::pipeline::inbound::Piece::Text("ours".to_owned())],
            0,
        )
        .await
        .unwrap();
    match started {
        crate::pipeline::inbound::Started::Existing(s) => {
            assert_eq!(s.initial_contact_id, winner.initial_contact_id)
        }
        crate::pipeline::inbound::Started::New(..) => {
            panic!("the store must refuse a second open session")
        }
    }
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert!(contacts[1].stopped, "the loser's contact is stopped");
}

#[tokio::test]
async fn profile_tiers_inline_then_cache_then_api_and_failure_never_blocks() {
    let h = harness();
    // no inline profile, API fails: the message still goes, named by id
    let mut d = dm(1, 10, "hi");
    d.sender_profile = None;
    h.x.0
        .lock()
        .unwrap()
        .user_faults
        .push_back(XError::Unavailable("down".into()));
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[0].display_name, CUSTOMER);
    assert_eq!(h.x.0.lock().unwrap().user_calls, 1);

    // inline profile is cached; a later chat without inline data uses the cache, not the API
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.end(0);
    let mut d = dm(2, 20, "again");
    d.sender_profile = None;
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[1].display_name, "Elizabeth Fuentes");
    assert_eq!(h.x.0.lock().unwrap().user_calls, 0);

    // after the TTL the API is asked
    h.clock.advance(8 * 24 * 3600 * 1000);
    h.x.0.lock().unwrap().users.insert(
        CUSTOMER.into(),
        XProfile {
            name: Some("Eli F.".into()),
            ..XProfile::unknown(uid(CUSTOMER))
        },
    );
    h.connect.end(1);
    // written now (a DM 8 days old would be refused as stale)
    let mut d = dm(3, h.clock.now_ms(), "third");
    d.sender_profile = None;
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[2].display_name, "Eli F.");
    assert_eq!(h.x.0.lock().unwrap().user_calls, 1);
}

#[tokio::test]
async fn invalid_requests_are_parked_as_failed_transient_errors_are_retried() {
    let h = harness();
    h.connect.fail(
        "StartChatContact",
        ConnectError::Throttled("slow down".into()),
    );
    h.connect
        .fail("StartChatContact", ConnectError::Unavailable("500".into()));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 1);
    let job = h
        .job(JobQueue::Inbound, &format!("{BUSINESS}:1"))
        .await
        .unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));

    let h = harness();
    h.connect.fail(
        "StartChatContact",
        ConnectError::Invalid("bad attributes".into()),
    );
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi"), dm(2, 20, "next")]))
        .await
        .unwrap();
    h.drain().await;
    let job = h
        .job(JobQueue::Inbound, &format!("{BUSINESS}:1"))
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
    // the failed message does not block the customer's next one
    assert_eq!(h.connect.contacts()[0].messages, vec!["next"]);
}

#[tokio::test]
async fn pushed_dms_older_than_the_age_bound_are_acknowledged_not_delivered_caught_up_ones_are() {
    let h = harness();
    let bound = h.bridge.config().max_event_age_ms;
    h.clock.advance(bound + 10_000);
    let now = h.clock.now_ms();
    let r = h
        .bridge
        .accept_inbound(batch(vec![
            dm(1, now - bound - 1, "replayed"),
            dm(2, now - bound + 1, "recent"),
        ]))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.stale, r.duplicates), (1, 1, 0));
    assert!(
        h.job(JobQueue::Inbound, &format!("{BUSINESS}:1"))
            .await
            .is_none()
    );

    // The catch-up's own reads are not bounded: a long outage still catches up.
    let r = h
        .bridge
        .accept_caught_up(batch(vec![dm(3, now - bound - 1, "missed")]))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.stale), (1, 0));
    h.drain().await;
    assert_eq!(h.connect.contacts()[0].messages, vec!["missed", "recent"]);
}
