//! Message buffering: a customer's quick DMs reach the chat as one Connect message.

use crate::inbound::{InboundMedia, MediaKind};
use crate::ports::{ConnectError, Store};

use super::fakes::*;

const WINDOW_MS: i64 = 2_000;

fn buffering() -> Harness {
    harness_with(|c| c.buffer_window_ms = WINDOW_MS)
}

/// Five DMs written 300 ms apart, accepted together.
async fn five_quick_dms(h: &Harness) {
    five_quick_dms_after(h, 1).await;
}

/// Five DMs written 300 ms apart ("line 1" to "line 5"), event ids from `first`, accepted
/// together.
async fn five_quick_dms_after(h: &Harness, first: u64) {
    let t = h.bridge.now_ms();
    let dms = (0..5u64)
        .map(|i| {
            dm(
                first + i,
                t + i64::try_from(i).unwrap() * 300,
                &format!("line {}", i + 1),
            )
        })
        .collect();
    h.bridge.accept_inbound(batch(dms)).await.unwrap();
}

#[tokio::test]
async fn five_quick_dms_become_one_connect_message_with_their_lines_in_order() {
    let h = buffering();
    five_quick_dms(&h).await;
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0].messages,
        vec!["line 1\nline 2\nline 3\nline 4\nline 5"]
    );
    assert_eq!(h.open_jobs().await, 0);
    assert!(
        h.bridge
            .store()
            .records("buffer/")
            .await
            .unwrap()
            .is_empty()
    );

    // Off: five messages.
    let h = harness();
    five_quick_dms(&h).await;
    h.drain().await;
    assert_eq!(
        h.connect.contacts()[0].messages,
        vec!["line 1", "line 2", "line 3", "line 4", "line 5"]
    );
}

#[tokio::test]
async fn dms_further_apart_than_the_window_are_separate_messages() {
    let h = buffering();
    let t = h.bridge.now_ms();
    h.bridge
        .accept_inbound(batch(vec![
            dm(1, t, "a"),
            dm(2, t + 500, "b"),
            dm(3, t + 500 + WINDOW_MS + 1, "c"),
        ]))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[0].messages, vec!["a\nb", "c"]);
}

#[tokio::test]
async fn one_message_carries_the_dms_of_one_window_however_long_the_customer_types() {
    let h = buffering();
    let t = h.bridge.now_ms();
    // Eight DMs 500 ms apart: 3.5 s of typing, two windows.
    let dms = (0..8u64)
        .map(|i| dm(i + 1, t + i64::try_from(i).unwrap() * 500, &format!("l{i}")))
        .collect();
    h.bridge.accept_inbound(batch(dms)).await.unwrap();
    h.drain().await;
    assert_eq!(
        h.connect.contacts()[0].messages,
        vec!["l0\nl1\nl2\nl3\nl4", "l5\nl6\nl7"]
    );
}

#[tokio::test]
async fn a_carrier_that_failed_after_deciding_delivers_the_same_lines_once() {
    let h = buffering();
    open_chat(&h).await;
    // The carrier's SendMessage fails once after the decision was committed.
    h.connect.fail(
        "SendMessage",
        ConnectError::Unavailable("connect blipped".into()),
    );
    five_quick_dms_after(&h, 10).await;
    h.drain().await;
    let messages = &h.connect.contacts()[0].messages;
    assert_eq!(
        messages[1..],
        ["line 1\nline 2\nline 3\nline 4\nline 5".to_owned()]
    );
    assert!(
        h.bridge
            .store()
            .records("buffer/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_photo_carries_the_lines_written_before_it() {
    let h = buffering();
    let t = h.bridge.now_ms();
    let mut photo = dm(2, t + 400, "look");
    let url = "https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg";
    photo.media = Some(InboundMedia {
        kind: MediaKind::Photo,
        media_id: "1547580751654203394".into(),
        url: url.into(),
        content_type: None,
        sealed: None,
    });
    h.x.0
        .lock()
        .unwrap()
        .media
        .insert(url.into(), ("image/jpeg".into(), b"jpeg".to_vec()));
    h.bridge
        .accept_inbound(batch(vec![dm(1, t, "hello"), photo]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages, vec!["hello\nlook"]);
    assert_eq!(c.attachments.len(), 1);
}
