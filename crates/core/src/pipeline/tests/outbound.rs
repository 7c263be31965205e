//! Agent messages reaching X: what is sent, session ends, refusals, reading X back.

use crate::chat_item::{AttachmentStatus, ChatItemBody, ParticipantRole, Visibility, event_types};
use crate::jobs::{JobQueue, JobState};
use crate::pipeline::ItemAcceptance;
use crate::ports::{Clock, Store, XError};
use crate::text::{X_DM_MAX_CHARS, render_for_x, split_message};

use super::fakes::*;

#[tokio::test]
async fn agent_markdown_reaches_the_customer_as_plain_text_once() {
    let h = harness();
    let contact = open_chat(&h).await;
    let item = agent_item(
        "i1",
        &contact,
        1,
        markdown("Your order is **confirmed**: [track](https://t.example/1)"),
    );
    assert_eq!(
        h.bridge.accept_chat_item(item.clone()).await.unwrap(),
        ItemAcceptance::Accepted
    );
    assert_eq!(
        h.bridge.accept_chat_item(item).await.unwrap(),
        ItemAcceptance::Duplicate
    );
    h.drain().await;
    assert_eq!(
        h.x.sent_texts(),
        vec!["Your order is confirmed: track (https://t.example/1)"]
    );
    let sent = &h.x.0.lock().unwrap().sent[0];
    assert_eq!(
        (sent.business.as_str(), sent.recipient.as_str()),
        (BUSINESS, CUSTOMER)
    );
}

#[tokio::test]
async fn customer_items_and_agent_only_items_are_not_sent() {
    let h = harness();
    let contact = open_chat(&h).await;
    let mut own = agent_item("i1", &contact, 1, markdown("hi"));
    own.role = Some(ParticipantRole::Customer);
    let mut private = agent_item("i2", &contact, 2, markdown("note to self"));
    private.visibility = Some(Visibility::Agent);
    assert_eq!(
        h.bridge.accept_chat_item(own).await.unwrap(),
        ItemAcceptance::Filtered
    );
    assert_eq!(
        h.bridge.accept_chat_item(private).await.unwrap(),
        ItemAcceptance::Filtered
    );
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
}

#[tokio::test]
async fn participant_left_keeps_the_session_chat_ended_closes_it() {
    let h = harness();
    let contact = open_chat(&h).await;
    let left = agent_item(
        "e1",
        &contact,
        1,
        ChatItemBody::Event {
            content_type: event_types::PARTICIPANT_LEFT.into(),
        },
    );
    h.bridge.accept_chat_item(left).await.unwrap();
    let mut flow = agent_item(
        "m1",
        &contact,
        2,
        ChatItemBody::Message {
            content_type: "text/plain".into(),
            content: "Thanks for contacting us".into(),
        },
    );
    flow.role = Some(ParticipantRole::System);
    h.bridge.accept_chat_item(flow).await.unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["Thanks for contacting us"]);
    let s = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap();
    assert!(s.is_some(), "participant.left keeps the session");

    let mut ended = agent_item(
        "e2",
        &contact,
        3,
        ChatItemBody::Event {
            content_type: event_types::CHAT_ENDED.into(),
        },
    );
    ended.role = None;
    h.bridge.accept_chat_item(ended).await.unwrap();
    h.drain().await;
    assert!(
        h.bridge
            .store()
            .open_session(&uid(BUSINESS), &uid(CUSTOMER))
            .await
            .unwrap()
            .is_none()
    );
    h.bridge
        .accept_inbound(batch(vec![dm(9, 90, "new question")]))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 2);
}

#[tokio::test]
async fn x_refusal_tells_the_agent_and_rate_limit_waits() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.x.0.lock().unwrap().faults.push_back(XError::Forbidden(
        "You cannot send messages to this user".into(),
    ));
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
    let msgs = h.connect.contacts()[0].messages.clone();
    assert!(
        msgs.last()
            .unwrap()
            .contains("not delivered to the customer"),
        "{msgs:?}"
    );
    let job = h.job(JobQueue::Outbound, "i1").await.unwrap();
    assert_eq!(job.state, JobState::Failed);

    let reset_s = h.clock.now_ms() / 1000 + 900;
    h.x.0.lock().unwrap().faults.push_back(XError::RateLimited {
        reset_at_s: Some(reset_s),
    });
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown("second")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["second"]);
    assert!(
        h.clock.now_ms() >= (reset_s + 1) * 1000,
        "waited for x-rate-limit-reset"
    );
}

// ---- outbound: reading X back before sending again -------------------------------------------

/// `n` distinct words, `w00000 w00001 …` (7 characters each with the space).
fn numbered_words(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{i:05}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn outbound_job(h: &Harness, key: &str) -> crate::jobs::Job {
    h.job(JobQueue::Outbound, key).await.unwrap()
}

#[tokio::test]
async fn a_job_run_again_after_x_took_a_part_sends_only_the_rest() {
    let h = harness();
    let contact = open_chat(&h).await;
    // A first attempt does not read anything back.
    h.bridge
        .accept_chat_item(agent_item("i0", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello"]);
    assert_eq!(h.x.read_backs(), Vec::<i64>::new());

    let text = numbered_words(3_500); // 24,499 characters: three DMs
    let parts = split_message(
        &render_for_x("text/markdown", &text).unwrap(),
        X_DM_MAX_CHARS,
    );
    assert_eq!(parts.len(), 3);
    // Part 2 reaches X but its answer is lost (a timeout): the job is retried.
    h.x.lose_answer_after(1);
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 2, markdown(&text)))
        .await
        .unwrap();
    h.drain().await;
    let mut expected = vec!["hello".to_owned()];
    expected.extend(parts);
    let sent = h.x.sent_texts();
    let lengths = |t: &[String]| t.iter().map(|p| p.chars().count()).collect::<Vec<_>>();
    assert_eq!(lengths(&sent), lengths(&expected), "each part exactly once");
    assert!(sent == expected, "in order");
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    // Read back once, from the first claim of this job on.
    assert_eq!(h.x.read_backs(), vec![job.first_claimed_at_ms.unwrap()]);
}

#[tokio::test]
async fn identical_parts_need_as_many_dms_on_x_and_an_earlier_job_does_not_count() {
    let h = harness();
    let contact = open_chat(&h).await;
    let one = "a".repeat(X_DM_MAX_CHARS);
    // An earlier job of the chat sent the very same text.
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown(&one)))
        .await
        .unwrap();
    // The next one is that text twice: two identical parts. The first reaches X, its answer
    // is lost.
    h.x.lose_answer_after(1);
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown(&one.repeat(2))))
        .await
        .unwrap();
    h.drain().await;
    let sent = h.x.sent_texts();
    assert_eq!(sent.len(), 3, "one DM for i1, two for i2");
    assert!(sent.iter().all(|t| *t == one));
    let job = outbound_job(&h, "i2").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    assert_eq!(h.x.read_backs(), vec![job.first_claimed_at_ms.unwrap()]);
    assert!(
        outbound_job(&h, "i1").await.updated_at_ms < job.first_claimed_at_ms.unwrap(),
        "the earlier job finished before this one was first claimed"
    );
}

#[tokio::test]
async fn a_file_job_run_again_after_its_dm_reached_x_sends_nothing_more() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.connect.0.lock().unwrap().agent_files.insert(
        "a-png".into(),
        ("image/png".into(), vec![0x89, b'P', b'N', b'G']),
    );
    // The DM carrying the upload reaches X; its answer is lost.
    h.x.lose_answer_after(0);
    h.bridge
        .accept_chat_item(agent_item(
            "i1",
            &contact,
            1,
            ChatItemBody::Attachment {
                attachments: vec![file(
                    "a-png",
                    "Screenshot.png",
                    "image/png",
                    AttachmentStatus::Approved,
                )],
            },
        ))
        .await
        .unwrap();
    h.drain().await;
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    let x = h.x.0.lock().unwrap();
    assert_eq!(x.uploads.len(), 1, "not uploaded again");
    assert_eq!(x.sent.len(), 1, "not sent again");
    assert_eq!(x.sent[0].media_id.as_deref(), Some("m0"));
    assert_eq!(x.read_backs, vec![job.first_claimed_at_ms.unwrap()]);
    drop(x);
    let fetched = h
        .connect
        .0
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| **c == "GetAttachment")
        .count();
    assert_eq!(fetched, 1, "not fetched from Connect again");
}

#[tokio::test]
async fn a_read_back_that_fails_waits_and_one_x_refuses_sends_again() {
    let h = harness();
    let contact = open_chat(&h).await;
    // The DM reaches X, its answer is lost; then reading back fails once, transiently: nothing
    // is sent blind, the job waits and reads again.
    h.x.lose_answer_after(0);
    h.x.0
        .lock()
        .unwrap()
        .read_back_faults
        .push_back(XError::Unavailable("timeout".into()));
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello"]);
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));
    let since = job.first_claimed_at_ms.unwrap();
    assert_eq!(h.x.read_backs(), vec![since, since]);

    // X refuses the read-back for good: the job sends as it did before the read-back existed.
    h.x.lose_answer_after(0);
    h.x.0
        .lock()
        .unwrap()
        .read_back_faults
        .push_back(XError::Forbidden("no DM read access".into()));
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown("again")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello", "again", "again"]);
    assert_eq!(outbound_job(&h, "i2").await.state, JobState::Done);
    assert_eq!(h.x.read_backs().len(), 3);
}

#[tokio::test]
async fn items_of_unknown_chats_are_skipped() {
    let h = harness();
    h.bridge
        .accept_chat_item(agent_item("i1", "someone-elses", 1, markdown("hi")))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
    let job = h.job(JobQueue::Outbound, "i1").await.unwrap();
    assert_eq!(job.state, JobState::Done);
}

#[tokio::test]
async fn a_late_item_of_a_recently_ended_chat_is_delivered_one_long_after_the_end_is_not() {
    let h = harness();
    let window = h.bridge.config().ended_chat_window_ms;
    let contact = open_chat(&h).await;
    end_chat(&h, &contact).await;

    // SNS does not keep order: the agent's last message arrives after chat.ended.
    h.clock.advance(window / 2);
    h.bridge
        .accept_chat_item(agent_item("late", &contact, 4, markdown("bye")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["bye"]);

    // Long after the end (an old message replayed once its dedup record was gone): not sent.
    h.clock.advance(window + 1);
    h.bridge
        .accept_chat_item(agent_item("replayed", &contact, 3, markdown("again")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["bye"]);
    let job = h.job(JobQueue::Outbound, "replayed").await.unwrap();
    assert_eq!(
        job.state,
        JobState::Done,
        "skipped, not failed: nothing to retry"
    );
}
