//! Files both ways: customer media attached in Connect, agent files sent to X.

use crate::chat_item::{AttachmentRef, AttachmentStatus, ChatItemBody};
use crate::inbound::{InboundDm, InboundMedia, MediaKind};
use crate::jobs::{JobQueue, JobState};
use crate::media::XMediaCategory;

use super::fakes::*;

const PHOTO_URL: &str = "https://ton.twitter.com/1.1/ton/data/dm/1/2/T7xt1pvd.jpg";

fn with_media(mut d: InboundDm, kind: MediaKind, url: &str) -> InboundDm {
    d.media = Some(InboundMedia {
        kind,
        media_id: "1547580751654203394".into(),
        url: url.into(),
        content_type: None,
        sealed: None,
    });
    d
}

impl Harness {
    fn add_media(&self, url: &str, content_type: &str, bytes: Vec<u8>) {
        self.x
            .0
            .lock()
            .unwrap()
            .media
            .insert(url.into(), (content_type.into(), bytes));
    }
}

#[tokio::test]
async fn a_photo_is_attached_after_its_caption() {
    let h = harness();
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    h.add_media(PHOTO_URL, "image/jpeg", photo.clone());
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(1, 10, "Here is the receipt:"),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages, vec!["Here is the receipt:"]);
    assert_eq!(c.attachments.len(), 1);
    let (name, ct, bytes) = &c.attachments[0];
    assert_eq!((name.as_str(), ct.as_str()), ("T7xt1pvd.jpg", "image/jpeg"));
    assert_eq!(bytes, &photo);
}

#[tokio::test]
async fn a_media_only_first_dm_opens_the_chat_with_a_sentence_then_the_file() {
    let h = harness();
    h.add_media(PHOTO_URL, "image/jpeg", vec![1, 2, 3]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(1, 10, ""),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages, vec!["The customer sent a photo."]);
    assert_eq!(c.attachments.len(), 1);
}

#[tokio::test]
async fn media_that_cannot_be_attached_becomes_a_note_for_the_agent() {
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    // off the allow-list: never downloaded
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(2, 20, ""),
            MediaKind::Photo,
            "https://elsewhere.example/x.jpg",
        )]))
        .await
        .unwrap();
    // 25 MB: over Connect's limit
    let big = "https://video.twimg.com/dm_video/1/vid/big.mp4";
    h.add_media(big, "video/mp4", vec![0; 25 * 1024 * 1024]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(3, 30, ""),
            MediaKind::Video,
            big,
        )]))
        .await
        .unwrap();
    // a type Connect refuses
    let gif = "https://pbs.twimg.com/dm_gif/1/a.gif";
    h.add_media(gif, "image/gif", vec![7; 100]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(4, 40, ""),
            MediaKind::AnimatedGif,
            gif,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert!(c.attachments.is_empty());
    assert_eq!(c.messages.len(), 4, "{:?}", c.messages);
    assert!(
        c.messages[1].contains("a photo") && c.messages[1].contains("elsewhere.example"),
        "{}",
        c.messages[1]
    );
    assert!(
        c.messages[2].contains("a video") && c.messages[2].contains("25.0 MB"),
        "{}",
        c.messages[2]
    );
    assert!(
        c.messages[3].contains("a GIF") && c.messages[3].contains("image/gif"),
        "{}",
        c.messages[3]
    );
    assert_eq!(
        h.x.0.lock().unwrap().downloads,
        2,
        "the off-list URL was never fetched"
    );
    for n in 2..=4 {
        let job = h
            .job(JobQueue::Inbound, &format!("{BUSINESS}:{n}"))
            .await
            .unwrap();
        assert_eq!(job.state, JobState::Done);
    }
}

#[tokio::test]
async fn connect_refusing_a_file_is_a_note_and_an_ended_chat_gets_the_file_in_a_new_one() {
    let h = harness();
    h.add_media(PHOTO_URL, "image/jpeg", vec![9; 10]);
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect
        .0
        .lock()
        .unwrap()
        .refused_types
        .push("image/jpeg".into());
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(2, 20, ""),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.connect.contacts()[0].messages[1].contains("image/jpeg is not supported"));

    h.connect.0.lock().unwrap().refused_types.clear();
    h.connect.end(0);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(3, 30, "look"),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].messages, vec!["look"]);
    assert_eq!(contacts[1].attachments.len(), 1);
}

#[tokio::test]
async fn agent_images_and_videos_reach_x_as_media_and_other_files_as_a_sentence() {
    let h = harness();
    let contact = open_chat(&h).await;
    let png: Vec<u8> = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    {
        let mut s = h.connect.0.lock().unwrap();
        s.agent_files
            .insert("a-png".into(), ("image/png".into(), png.clone()));
        s.agent_files
            .insert("a-mp4".into(), ("video/mp4".into(), vec![5; 3000]));
        s.agent_files
            .insert("a-pdf".into(), ("application/pdf".into(), vec![1]));
    }
    let attach = |id: &str, t: i64, files: Vec<AttachmentRef>| {
        agent_item(
            id,
            &contact,
            t,
            ChatItemBody::Attachment { attachments: files },
        )
    };
    h.bridge
        .accept_chat_item(attach(
            "i1",
            1,
            vec![file(
                "a-png",
                "Screenshot.png",
                "image/png",
                AttachmentStatus::Approved,
            )],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i2",
            2,
            vec![
                file("a-mp4", "clip.mp4", "video/mp4", AttachmentStatus::Approved),
                file(
                    "a-pdf",
                    "invoice.pdf",
                    "application/pdf",
                    AttachmentStatus::Approved,
                ),
            ],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i3",
            3,
            vec![file(
                "a-x",
                "scan.png",
                "image/png",
                AttachmentStatus::InProgress,
            )],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i4",
            4,
            vec![file(
                "a-r",
                "virus.png",
                "image/png",
                AttachmentStatus::Rejected,
            )],
        ))
        .await
        .unwrap();
    h.drain().await;

    let (uploads, sent) = {
        let x = h.x.0.lock().unwrap();
        (x.uploads.clone(), x.sent.clone())
    };
    assert_eq!(uploads.len(), 2);
    assert_eq!(
        (uploads[0].0, uploads[0].2.clone()),
        (XMediaCategory::DmImage, png)
    );
    assert_eq!(uploads[1].0, XMediaCategory::DmVideo);
    let sent: Vec<(Option<String>, Option<String>)> = sent
        .iter()
        .map(|d| (d.text.clone(), d.media_id.clone()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (None, Some("m0".into())),
            (None, Some("m1".into())),
            (
                Some(
                    "The agent sent a document (invoice.pdf) that can't be delivered over X DM."
                        .into()
                ),
                None
            ),
            (
                Some(
                    "The agent sent an image (virus.png) that can't be delivered over X DM.".into()
                ),
                None
            ),
        ]
    );
    assert!(
        sent.iter()
            .all(|(t, _)| !t.as_deref().unwrap_or("").contains("http")),
        "never a URL"
    );
    let notes: Vec<String> = h.connect.contacts()[0]
        .messages
        .iter()
        .filter(|m| m.starts_with("⚠"))
        .cloned()
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("invoice.pdf was not delivered") && notes[0].contains("application/pdf")
    );
    assert!(
        notes[1].contains("virus.png was not delivered") && notes[1].contains("did not approve")
    );
    // the two files of one item became two jobs
    assert!(h.job(JobQueue::Outbound, "i2#0").await.is_some());
    assert!(h.job(JobQueue::Outbound, "i2#1").await.is_some());
}

#[tokio::test]
async fn an_agent_file_over_xs_limit_is_a_sentence_not_an_upload() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.connect
        .0
        .lock()
        .unwrap()
        .agent_files
        .insert("big".into(), ("image/png".into(), vec![0; 6 * 1024 * 1024]));
    let item = agent_item(
        "i1",
        &contact,
        1,
        ChatItemBody::Attachment {
            attachments: vec![file(
                "big",
                "huge.png",
                "image/png",
                AttachmentStatus::Approved,
            )],
        },
    );
    h.bridge.accept_chat_item(item).await.unwrap();
    h.drain().await;
    assert!(h.x.0.lock().unwrap().uploads.is_empty());
    assert_eq!(
        h.x.sent_texts(),
        vec!["The agent sent an image (huge.png) that can't be delivered over X DM."]
    );
    let last = h.connect.contacts()[0].messages.last().cloned().unwrap();
    assert!(last.contains("6.0 MB") && last.contains("5.0 MB"), "{last}");
}
