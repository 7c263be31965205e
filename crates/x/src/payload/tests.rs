#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use xdm_core::ids::XEventId;
use xdm_core::inbound::{InboundDm, InboundEvent, Indicator, MediaKind, ReadUpTo};

use super::vectors::*;
use super::*;

fn uid(s: &str) -> XUserId {
    XUserId::parse(s).unwrap()
}

fn parse(json: &str) -> ParsedDelivery {
    parse_delivery(json.as_bytes()).unwrap()
}

fn messages(d: &ParsedDelivery) -> Vec<&InboundDm> {
    d.batch
        .events
        .iter()
        .filter_map(|e| match e {
            InboundEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn fixture_body() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/apigw-x-webhook-text-dm.json"
    );
    let event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["body"].as_str().unwrap().to_owned()
}

#[test]
fn reads_the_captured_text_dm() {
    for body in [fixture_body(), AAA_TEXT_PRETTY.to_owned()] {
        let d = parse(&body);
        assert_eq!(d.shape, DeliveryShape::AccountActivity);
        assert_eq!(d.business, Some(uid("40876567")));
        assert!(d.skipped.is_empty());
        let [m] = messages(&d)[..] else {
            panic!("one message expected")
        };
        assert_eq!(m.business, uid("40876567"));
        assert_eq!(m.event_id.as_str(), "2039459599745679612");
        assert_eq!(m.sender, uid("55125386"));
        assert_eq!(m.recipient, uid("40876567"));
        assert_eq!(m.created_ms, 1_775_080_034_563);
        assert_eq!(m.text, "Hola2");
        assert_eq!(m.source_app_id, None);
        assert_eq!(m.media, None);
        assert!(!m.is_echo());
        let p = m.sender_profile.as_ref().unwrap();
        assert_eq!(p.id, uid("55125386"));
        assert_eq!(p.name.as_deref(), Some("Elizabeth Fuentes"));
        assert_eq!(p.username.as_deref(), Some("ElizabethFue12"));
        assert_eq!(p.verified, Some(false));
        assert_eq!(p.followers_count, Some(1146));
        assert_eq!(
            p.profile_image_url.as_deref(),
            Some("https://pbs.twimg.com/profile_images/1603384697035182080/iQFwc3l3_normal.jpg")
        );
    }
}

#[test]
fn reads_a_photo_dm_and_its_echo() {
    let d = parse(PHOTO_AND_ECHO);
    assert!(d.skipped.is_empty());
    let [photo, echo] = messages(&d)[..] else {
        panic!("two messages expected")
    };

    assert_eq!(photo.business, uid("4337869213"));
    assert_eq!(photo.event_id.as_str(), "1547580822294646788");
    assert_eq!(photo.sender, uid("3001969357"));
    assert_eq!(photo.created_ms, 1_657_806_995_353);
    assert_eq!(photo.text, "Here is the receipt:");
    assert!(!photo.is_echo());
    let media = photo.media.as_ref().unwrap();
    assert_eq!(media.kind, MediaKind::Photo);
    assert_eq!(media.media_id, "1547580751654203394");
    assert_eq!(
        media.url,
        "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg"
    );
    let p = photo.sender_profile.as_ref().unwrap();
    assert_eq!(p.name.as_deref(), Some("Jordan Brinks"));
    assert_eq!(p.username.as_deref(), Some("furiouscamper"));
    assert_eq!(p.followers_count, Some(22));

    assert!(echo.is_echo());
    assert_eq!(echo.sender, uid("4337869213"));
    assert_eq!(echo.recipient, uid("3001969357"));
    assert_eq!(echo.source_app_id.as_deref(), Some("13090192"));
    assert_eq!(echo.text, "Thanks! An agent will be with you shortly.");
    assert_eq!(echo.media, None);
}

fn dm_with_media(media: &str, text: &str, urls: &str) -> String {
    format!(
        r#"{{"for_user_id":"4337869213","direct_message_events":[{{"type":"message_create","id":"1547580822294646788",
        "created_timestamp":"1657806995353","message_create":{{"target":{{"recipient_id":"4337869213"}},
        "sender_id":"3001969357","message_data":{{"text":{text},"entities":{{"urls":{urls}}},
        "attachment":{{"type":"media","media":{media}}}}}}}}}]}}"#
    )
}

#[test]
fn reads_video_and_gif_attachments() {
    let video = r#"{"type":"video","id_str":"762671519986319360","url":"https://t.co/vid","indices":[6,22],
        "media_url_https":"https://pbs.twimg.com/dm_video_preview/762671519986319360/img/n.jpg",
        "video_info":{"aspect_ratio":[9,16],"duration_millis":1291,"variants":[
        {"bitrate":320000,"content_type":"video/mp4","url":"https://video.twimg.com/dm_video/762671519986319360/vid/180x320/a.mp4"},
        {"bitrate":2176000,"content_type":"video/mp4","url":"https://video.twimg.com/dm_video/762671519986319360/vid/720x1280/b.mp4"},
        {"content_type":"application/x-mpegURL","url":"https://video.twimg.com/dm_video/762671519986319360/pl/c.m3u8"}]}}"#;
    let d = parse(&dm_with_media(
        video,
        r#""watch https://t.co/vid""#,
        r#"[{"url":"https://t.co/vid","expanded_url":"https://twitter.com/messages/media/1","indices":[6,22]}]"#,
    ));
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.text, "watch");
    let media = m.media.as_ref().unwrap();
    assert_eq!(media.kind, MediaKind::Video);
    assert_eq!(
        media.url,
        "https://video.twimg.com/dm_video/762671519986319360/vid/720x1280/b.mp4"
    );
    assert_eq!(media.content_type.as_deref(), Some("video/mp4"));

    let gif = r#"{"type":"animated_gif","id_str":"762712152901836804","url":"https://t.co/gif",
        "video_info":{"aspect_ratio":[61,62],"variants":[{"bitrate":0,"content_type":"video/mp4",
        "url":"https://pbs.twimg.com/dm_gif/762712152901836804/D48b.mp4"}]}}"#;
    let d = parse(&dm_with_media(gif, r#""https://t.co/gif""#, "[]"));
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.text, "");
    let media = m.media.as_ref().unwrap();
    assert_eq!(media.kind, MediaKind::AnimatedGif);
    assert_eq!(media.media_id, "762712152901836804");
    assert_eq!(
        media.url,
        "https://pbs.twimg.com/dm_gif/762712152901836804/D48b.mp4"
    );
}

#[test]
fn an_unreadable_attachment_keeps_the_message_and_its_link() {
    let d = parse(&dm_with_media(
        r#"{"type":"hologram","id_str":"1","url":"https://t.co/m"}"#,
        r#""look https://t.co/m and https://t.co/o""#,
        r#"[{"url":"https://t.co/m","expanded_url":"https://twitter.com/messages/media/1","indices":[5,19]},
            {"url":"https://t.co/o","expanded_url":"https://example.com/order/42","indices":[24,38]}]"#,
    ));
    assert!(d.skipped.is_empty());
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.media, None);
    assert_eq!(
        m.text,
        "look https://t.co/m and https://example.com/order/42"
    );
}

#[test]
fn reads_typing_read_and_revoke() {
    let d = parse(TYPING);
    assert_eq!(
        d.batch.events,
        vec![InboundEvent::Typing(Indicator {
            business: uid("4337869213"),
            sender: uid("3284025577"),
            created_ms: 1_518_127_183_443,
        })]
    );
    let d = parse(READ);
    assert_eq!(
        d.batch.events,
        vec![InboundEvent::Read(ReadUpTo {
            business: uid("4337869213"),
            sender: uid("199566737"),
            last_read_event_id: XEventId::parse("963085315333238788").unwrap(),
            created_ms: 1_518_452_444_662,
        })]
    );
    let d = parse(REVOKE);
    assert_eq!(d.business, None);
    assert_eq!(
        d.batch.events,
        vec![InboundEvent::Revoked {
            user_id: Some(uid("63046977"))
        }]
    );
}

#[test]
fn reads_the_x_activity_api_envelope() {
    let d = parse(XAA);
    assert_eq!(d.shape, DeliveryShape::XActivity);
    assert_eq!(d.business, Some(uid("1111111111111111111")));
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.business, uid("1111111111111111111"));
    assert_eq!(m.event_id.as_str(), "2080765901528535096");
    assert_eq!(m.sender, uid("2222222222222222222"));
    assert_eq!(m.recipient, uid("1111111111111111111"));
    assert_eq!(m.created_ms, 1_784_928_224_372);
    assert_eq!(m.text, "hello!");
    let p = m.sender_profile.as_ref().unwrap();
    assert_eq!(p.username.as_deref(), Some("OtherUser"));
    assert_eq!(p.name.as_deref(), Some("OtherUser"));
    assert_eq!(p.verified, Some(false));
    assert_eq!(
        p.profile_image_url.as_deref(),
        Some("https://pbs.twimg.com/profile_images/…_normal.jpg")
    );
}

#[test]
fn x_activity_prefers_an_explicit_for_user_id() {
    let d = parse(
        r#"{"data":{"filter":{"user_id":"1"},"event_type":"dm.sent","payload":{"for_user_id":"2"}}}"#,
    );
    assert_eq!(d.business, Some(uid("2")));
    assert!(d.batch.events.is_empty());
    // Other XAA event types carry other payloads: read, nothing to do.
    let d = parse(
        r#"{"data":{"event_type":"profile.update.bio","filter":{"user_id":"1"},"payload":{"before":"a","after":"b"}}}"#,
    );
    assert!(d.batch.events.is_empty());
}

#[test]
fn ignores_unknown_keys_kinds_and_other_activities() {
    let d = parse(
        r#"{"for_user_id":"1","tweet_create_events":[{"id":"9"}],"new_thing":{"x":[1,2]},
            "direct_message_events":[{"type":"message_delete","id":"5"},
              {"type":"message_create","id":"6","created_timestamp":"7","extra":true,
               "message_create":{"target":{"recipient_id":"1"},"sender_id":"2","future":1,
                 "message_data":{"text":"hi","entities":{"urls":[],"new":[]}}}}]}"#,
    );
    assert!(d.skipped.is_empty());
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.event_id.as_str(), "6");
    assert_eq!(m.text, "hi");
    assert_eq!(m.sender_profile, None);
    let d = parse(r#"{"for_user_id":"1","favorite_events":[]}"#);
    assert!(d.batch.events.is_empty() && d.skipped.is_empty());
}

#[test]
fn refuses_what_is_not_a_delivery() {
    assert!(matches!(
        parse_delivery(b"not json"),
        Err(PayloadError::NotJson(_))
    ));
    assert!(matches!(parse_delivery(b""), Err(PayloadError::NotJson(_))));
    assert_eq!(parse_delivery(b"[1,2]"), Err(PayloadError::NotObject));
    assert_eq!(parse_delivery(b"\"x\""), Err(PayloadError::NotObject));
    assert_eq!(parse_delivery(b"{}"), Err(PayloadError::UnrecognisedShape));
    assert_eq!(
        parse_delivery(br#"{"hello":"world","data":[1]}"#),
        Err(PayloadError::UnrecognisedShape)
    );
    assert_eq!(
        parse_delivery(br#"{"for_user_id":"12a","direct_message_events":[]}"#),
        Err(PayloadError::InvalidBusinessId {
            field: "for_user_id"
        })
    );
    assert_eq!(
        parse_delivery(br#"{"data":{"filter":{"user_id":{}},"payload":{}}}"#),
        Err(PayloadError::InvalidBusinessId {
            field: "data.filter.user_id"
        })
    );
    // The one-line reason never repeats the body.
    let e = parse_delivery(b"{\"secret message")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn skips_malformed_events_and_keeps_the_rest() {
    let good = r#"{"type":"message_create","id":"100","created_timestamp":"1657806995353",
        "message_create":{"target":{"recipient_id":"1"},"sender_id":"2","message_data":{"text":"ok"}}}"#;
    let body = format!(
        r#"{{"for_user_id":"1","direct_message_events":[
        {{"type":"message_create","id":"not-a-number","message_create":{{}}}},
        {{"type":"message_create","id":"12345678901234567890"}},
        {{"type":"message_create","created_timestamp":"1"}},
        {{"type":"message_create","id":"101","created_timestamp":"yesterday","message_create":{{"target":{{"recipient_id":"1"}},"sender_id":"2"}}}},
        {{"type":"message_create","id":"102","created_timestamp":"1","message_create":{{"target":{{"recipient_id":"1"}},"sender_id":"-2"}}}},
        {{"type":"message_create","id":"103","created_timestamp":"1","message_create":{{"sender_id":"2"}}}},
        {{"type":"message_create","id":"104","created_timestamp":"1"}},
        "a string",
        null,
        {good}],
        "direct_message_indicate_typing_events":{{"not":"a list"}},
        "direct_message_mark_read_events":[{{"sender_id":"x","created_timestamp":"1"}}]}}"#
    );
    let d = parse(&body);
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.event_id.as_str(), "100");
    assert_eq!(m.text, "ok");
    let reasons: Vec<_> = d
        .skipped
        .iter()
        .map(|s| {
            (
                s.list,
                s.index,
                s.event_id.as_ref().map(|e| e.as_str().to_owned()),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (DM_EVENTS, 0, None),
            (DM_EVENTS, 1, None),
            (DM_EVENTS, 2, None),
            (DM_EVENTS, 3, Some("101".into())),
            (DM_EVENTS, 4, Some("102".into())),
            (DM_EVENTS, 5, Some("103".into())),
            (DM_EVENTS, 6, Some("104".into())),
            (DM_EVENTS, 7, None),
            (DM_EVENTS, 8, None),
            (TYPING_EVENTS, 0, None),
            (READ_EVENTS, 0, None),
        ]
    );
}

#[test]
fn events_need_a_business_account() {
    let d = parse(
        r#"{"direct_message_events":[{"type":"message_create","id":"1","created_timestamp":"1",
            "message_create":{"target":{"recipient_id":"1"},"sender_id":"2"}}]}"#,
    );
    assert!(d.batch.events.is_empty());
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(
        d.skipped[0].event_id.as_ref().map(|e| e.as_str()),
        Some("1")
    );
}

#[test]
fn lenient_about_number_ids_and_missing_message_data() {
    let d = parse(
        r#"{"for_user_id":1,"direct_message_events":[{"type":"message_create","id":5,"created_timestamp":"1",
            "message_create":{"target":{"recipient_id":1},"sender_id":2}}]}"#,
    );
    let [m] = messages(&d)[..] else { panic!() };
    assert_eq!(m.text, "");
    assert_eq!(m.sender, uid("2"));
}

#[test]
fn never_panics_on_truncated_or_mangled_bodies() {
    let bodies = [fixture_body(), PHOTO_AND_ECHO.to_owned(), XAA.to_owned()];
    for body in &bodies {
        let bytes = body.as_bytes();
        for cut in 0..bytes.len() {
            let _ = parse_delivery(&bytes[..cut]);
        }
        // Every string value replaced by other JSON types, one at a time.
        let mut at = 0;
        while let Some(pos) = body[at..].find(":\"") {
            let start = at + pos + 1;
            let Some(len) = body[start + 1..].find('"') else {
                break;
            };
            let end = start + 1 + len + 1;
            for replacement in ["null", "1", "-1", "[]", "{}", "true", "1e400", "\"\""] {
                let mangled = format!("{}{}{}", &body[..start], replacement, &body[end..]);
                let _ = parse_delivery(mangled.as_bytes());
            }
            at = end;
        }
    }
}

#[test]
fn an_x_chat_typing_event_is_the_customer_typing_and_a_message_stays_sealed() {
    use base64::Engine;
    use xdm_xchat::thrift::Writer;
    let event = |detail_variant: i16| {
        let detail = Writer::default()
            .nested(detail_variant, Writer::default().end())
            .end();
        let bytes = Writer::default()
            .string(1, "2080400825227100170")
            .string(2, "6cd0b7b0-9b98-4741-95ef-d3bebb84caff")
            .string(3, "55125386")
            .string(4, "40876567:55125386")
            .string(6, "1796529805488")
            .nested(7, detail)
            .end();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let delivery = |encoded: String| {
        serde_json::json!({"data": {"event_type": "chat.received", "filter": {"user_id": "40876567"},
            "payload": {"sender_id": "55125386", "conversation_id": "40876567:55125386",
                "created_at_msec": "1796529805488", "encoded_event": encoded}}})
        .to_string()
    };
    // Typing (variant 6): no message id is needed, nothing is sealed.
    let d = parse(&delivery(event(6)));
    assert!(d.skipped.is_empty(), "{:?}", d.skipped);
    match d.batch.events.as_slice() {
        [InboundEvent::Typing(t)] => {
            assert_eq!(
                (t.business.as_str(), t.sender.as_str()),
                ("40876567", "55125386")
            );
            assert_eq!(t.created_ms, 1_796_529_805_488);
        }
        other => panic!("{other:?}"),
    }
    // Anything else without a message id is skipped, not guessed at.
    let d = parse(&delivery(event(1)));
    assert!(d.batch.events.is_empty());
    assert_eq!(d.skipped.len(), 1);
}

/// Every variant of `value` with one member or element changed: removed, or replaced by each
/// kind of JSON value.
fn one_change_variants(value: &Value) -> Vec<Value> {
    let replacements = [
        Value::Null,
        json!(7),
        json!(-7),
        json!(7.5),
        json!("7"),
        json!(true),
        json!([]),
        json!({}),
    ];
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                let mut removed = map.clone();
                removed.remove(key);
                out.push(Value::Object(removed));
                for r in &replacements {
                    let mut changed = map.clone();
                    changed.insert(key.clone(), r.clone());
                    out.push(Value::Object(changed));
                }
                for inner in one_change_variants(member) {
                    let mut changed = map.clone();
                    changed.insert(key.clone(), inner);
                    out.push(Value::Object(changed));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mut removed = items.clone();
                removed.remove(i);
                out.push(Value::Array(removed));
                for r in &replacements {
                    let mut changed = items.clone();
                    changed[i] = r.clone();
                    out.push(Value::Array(changed));
                }
                for inner in one_change_variants(item) {
                    let mut changed = items.clone();
                    changed[i] = inner;
                    out.push(Value::Array(changed));
                }
            }
        }
        _ => {}
    }
    out
}

/// The typed read (`typed.rs`) answers exactly what the forgiving reader answers — for the
/// documented deliveries and for every variant of them with one member removed or of another
/// JSON type, with escapes, a field given twice, a user given twice — and it does not give up
/// on the ordinary ones (text DMs in either shape, the captured delivery).
#[test]
fn the_typed_read_answers_what_the_forgiving_reader_answers() {
    let bases: Vec<String> = vec![
        fixture_body(),
        AAA_TEXT_PRETTY.to_owned(),
        PHOTO_AND_ECHO.to_owned(),
        TYPING.to_owned(),
        READ.to_owned(),
        REVOKE.to_owned(),
        XAA.to_owned(),
        // Where the business account is named twice: the payload's wins, even as null.
        r#"{"for_user_id":"3","data":{"filter":{"user_id":"1"},"event_type":"dm.received","payload":{"for_user_id":"2","direct_message_events":[]}}}"#.to_owned(),
        dm_with_media(
            r#"{"type":"photo","media_url_https":"https://ton.twitter.com/x.jpg"}"#,
            r#""look https://t.co/abc""#,
            r#"[{"url":"https://t.co/abc","expanded_url":"https://x.com/m/1","indices":[5,21]}]"#,
        ),
    ];
    for ordinary in [&bases[0], &bases[1], &bases[6]] {
        assert!(
            typed::parse(ordinary.as_bytes()).is_some(),
            "gave up on {ordinary}"
        );
    }
    let mut bodies: Vec<String> = bases.clone();
    for base in &bases {
        let value: Value = serde_json::from_str(base).unwrap();
        bodies.extend(one_change_variants(&value).iter().map(Value::to_string));
    }
    bodies.extend([
        // A sender id given as a number; a user given twice (the last one counts).
        AAA_TEXT_PRETTY.replace(r#""sender_id":"55125386""#, r#""sender_id":55125386"#),
        AAA_TEXT_PRETTY.replacen(r#""users":{"#, r#""users":{"55125386":{"name":"first"},"#, 1),
        // A member given twice, at the top and inside an event.
        r#"{"for_user_id":"1","for_user_id":"2","direct_message_events":[]}"#.to_owned(),
        AAA_TEXT_PRETTY.replace(r#""text":"Hola2""#, r#""text":"a","text":"b""#),
        // Escapes in what is read and in what is not.
        AAA_TEXT_PRETTY.replace(r#""text":"Hola2""#, r#""text":"\u00e9\n\"\ud83d\ude00\/""#),
        AAA_TEXT_PRETTY.replace(r#""Elizabeth Fuentes""#, r#""\ud83c\uddfb Eliza\u0062eth""#),
        // Links with and without indices.
        AAA_TEXT_PRETTY.replace(
            r#""urls":[]"#,
            r#""urls":[{"url":"https://t.co/a","expanded_url":"https://x.com","indices":[0,14]},{"url":"https://t.co/b"}]"#,
        ),
    ]);
    let mut typed = 0;
    for body in &bodies {
        let forgiving = read_forgiving(body.as_bytes());
        if let Some(read) = typed::parse(body.as_bytes()) {
            typed += 1;
            assert_eq!(Ok(read), forgiving, "{body}");
        }
        assert_eq!(parse_delivery(body.as_bytes()), forgiving, "{body}");
    }
    assert!(
        typed * 5 > bodies.len(),
        "typed {typed} of {}",
        bodies.len()
    );
}
