//! `XClient::dm_events_page` (`GET /2/dm_events`, for the reconciler) through the fake: the
//! query, conversion of each event to an `InboundDm` (media from `includes.media`, profile from
//! `includes.users`, links), echoes flagged, paging and the 15-per-15-minutes rate limit.

use xdm_core::inbound::{InboundDm, MediaKind};
use xdm_x::RateLimitHeaders;

use super::*;

/// A page as X documents `GET /2/dm_events` with expansions (newest first).
const PAGE: &str = r#"{
  "data": [
    {"id": "1585321444547837956", "event_type": "MessageCreate",
     "text": "Here is the receipt: https://t.co/J9dz8mhUqz",
     "sender_id": "3001969357", "dm_conversation_id": "3001969357-4337869213",
     "created_at": "2022-10-26T17:23:33.000Z",
     "attachments": {"media_keys": ["3_1585321400000000000"]},
     "entities": {"urls": [{"start": 21, "end": 44, "url": "https://t.co/J9dz8mhUqz",
        "expanded_url": "https://x.com/messages/media/1585321444547837956",
        "display_url": "pic.x.com/J9dz8mhUqz"}]}},
    {"id": "1585321400000000001", "event_type": "MessageCreate", "text": "sorry, a video",
     "sender_id": "3001969357", "dm_conversation_id": "3001969357-4337869213",
     "attachments": {"media_keys": ["7_1585321300000000000"]}},
    {"id": "1585316782690799621", "event_type": "MessageCreate",
     "text": "Your order: https://t.co/6o5TQc1NhX",
     "sender_id": "4337869213", "dm_conversation_id": "3001969357-4337869213",
     "entities": {"urls": [{"start": 12, "end": 35, "url": "https://t.co/6o5TQc1NhX",
        "expanded_url": "https://example.com/order/42", "display_url": "example.com/order/42"}]}},
    {"id": "1585316722032775173", "event_type": "MessageCreate", "text": "see https://t.co/abc",
     "sender_id": "3001969357", "dm_conversation_id": "3001969357-4337869213",
     "entities": {"urls": [{"start": 4, "end": 20, "url": "https://t.co/abc",
        "expanded_url": "https://example.com/x"}]}},
    {"id": "1585316700000000000", "event_type": "MessageCreate", "text": "in a group",
     "sender_id": "3001969357", "dm_conversation_id": "1582838223610466304"},
    {"id": "1585316638368993285", "event_type": "ParticipantsJoin",
     "dm_conversation_id": "1582838223610466304", "participant_ids": ["3001969357"]},
    {"id": "not-a-number", "event_type": "MessageCreate", "text": "odd",
     "sender_id": "3001969357", "dm_conversation_id": "3001969357-4337869213"}
  ],
  "includes": {
    "users": [{"id": "3001969357", "name": "Jordan Brinks", "username": "furiouscamper",
               "profile_image_url": "https://pbs.twimg.com/profile_images/1/x_normal.jpg"},
              {"id": "4337869213", "name": "Acme", "username": "AcmeHelp"}],
    "media": [
      {"media_key": "3_1585321400000000000", "type": "photo",
       "url": "https://ton.twitter.com/1.1/ton/data/dm/1585321444547837956/1585321400000000000/8Hm8rgh0.jpg"},
      {"media_key": "7_1585321300000000000", "type": "video",
       "preview_image_url": "https://pbs.twimg.com/dm_video_thumb/1/img/a.jpg",
       "variants": [
         {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/dm_video/1/pl/a.m3u8"},
         {"bit_rate": 256000, "content_type": "video/mp4", "url": "https://video.twimg.com/dm_video/1/vid/320x180/low.mp4"},
         {"bit_rate": 2176000, "content_type": "video/mp4", "url": "https://video.twimg.com/dm_video/1/vid/1280x720/high.mp4"}
       ]}
    ]
  },
  "meta": {"result_count": 7, "next_token": "18LAA581J5II7LA00000"}
}"#;

#[tokio::test]
async fn a_page_becomes_inbound_dms_with_media_profiles_and_echoes() {
    let mut script = answer(200, PAGE);
    script.headers.extend([
        ("x-rate-limit-limit", "15".to_owned()),
        ("x-rate-limit-remaining", "14".to_owned()),
        ("x-rate-limit-reset", "1775080934".to_owned()),
    ]);
    let server = Server::start(script).await;
    let page = server
        .client()
        .dm_events_page(&uid(BUSINESS), None)
        .await
        .unwrap();
    assert_eq!(page.next_token.as_deref(), Some("18LAA581J5II7LA00000"));
    assert_eq!(
        page.rate,
        Some(RateLimitHeaders::Present {
            limit: 15,
            remaining: 14,
            reset_at_s: 1_775_080_934
        })
    );
    assert!(!page.events[0].is_sent() && page.events[2].is_sent());
    assert_eq!(page.events[0].created_ms(), page.events[0].dm().created_ms);
    assert_eq!(page.events[2].clone().into_received(), None);
    let events: Vec<InboundDm> = page.events.iter().map(|e| e.dm().clone()).collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1585321444547837956",
            "1585321400000000001",
            "1585316782690799621",
            "1585316722032775173"
        ],
        "newest first; the group DM, the join event and the odd id are left out"
    );

    let photo = &events[0];
    assert_eq!(photo.business, uid(BUSINESS));
    assert_eq!(photo.sender, uid(CUSTOMER));
    assert_eq!(photo.recipient, uid(BUSINESS));
    assert!(!photo.is_echo());
    assert_eq!(photo.text, "Here is the receipt:");
    assert_eq!(photo.created_ms, 1_666_805_060_885);
    let media = photo.media.as_ref().unwrap();
    assert_eq!(media.kind, MediaKind::Photo);
    assert_eq!(media.media_id, "1585321400000000000");
    assert!(media.url.ends_with("/1585321400000000000/8Hm8rgh0.jpg"));
    let profile = photo.sender_profile.as_ref().unwrap();
    assert_eq!(profile.username.as_deref(), Some("furiouscamper"));
    assert_eq!(profile.name.as_deref(), Some("Jordan Brinks"));

    let video = events[1].media.as_ref().unwrap();
    assert_eq!(video.kind, MediaKind::Video);
    assert_eq!(
        video.url,
        "https://video.twimg.com/dm_video/1/vid/1280x720/high.mp4"
    );
    assert_eq!(video.content_type.as_deref(), Some("video/mp4"));

    let echo = &events[2];
    assert!(echo.is_echo());
    assert_eq!(echo.sender, uid(BUSINESS));
    assert_eq!(echo.recipient, uid(CUSTOMER));
    assert_eq!(echo.text, "Your order: https://example.com/order/42");

    assert_eq!(events[3].text, "see https://example.com/x");
    assert!(events[3].media.is_none());

    let req = server.only_request();
    req.assert_signed_by(&default_token());
    let url = req.url();
    assert_eq!(url.path(), "/2/dm_events");
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["max_results"], "100");
    assert_eq!(q["event_types"], "MessageCreate");
    assert_eq!(
        q["dm_event.fields"],
        "id,text,sender_id,created_at,attachments,entities,event_type,dm_conversation_id"
    );
    assert_eq!(q["expansions"], "sender_id,attachments.media_keys");
    assert_eq!(
        q["media.fields"],
        "media_key,type,url,variants,preview_image_url"
    );
    assert!(q["user.fields"].contains("username"));
    assert!(!q.contains_key("pagination_token"));
}

#[tokio::test]
async fn pages_on_and_reads_an_empty_last_page() {
    let server = Server::start(answer(200, r#"{"meta":{"result_count":0}}"#)).await;
    let page = server
        .client()
        .dm_events_page(&uid(BUSINESS), Some("18LAA581J5II7LA00000"))
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.next_token, None);
    assert_eq!(page.rate, None);
    let q: BTreeMap<String, String> = server
        .only_request()
        .url()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["pagination_token"], "18LAA581J5II7LA00000");
}

#[tokio::test]
async fn a_rate_limit_carries_its_reset() {
    let mut limited = answer(
        429,
        r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
    );
    limited
        .headers
        .push(("x-rate-limit-reset", "1775080999".to_owned()));
    let server = Server::start(limited).await;
    let e = server
        .client()
        .dm_events_page(&uid(BUSINESS), None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::RateLimited {
            reset_at_s: Some(1_775_080_999)
        }
    );
    let server = Server::start(answer(200, "[]")).await;
    let e = server
        .client()
        .dm_events_page(&uid(BUSINESS), None)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}
