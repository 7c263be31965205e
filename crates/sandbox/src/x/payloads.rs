//! Webhook payloads as X sends them: Account Activity (`for_user_id` + `direct_message_events` +
//! legacy `users`) and the X Activity API envelope (`data.payload`, v2 users), serialised the way X
//! does (compact, `\/`-escaped slashes, `\uXXXX` for non-ASCII) — docs/protocols.md A1.2 and A2.
//! X Chat events (`chat.*`) carry the payload the chat emulator built ([`crate::x::chat`]).

use std::fmt::Write as _;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::config::XApp;
use crate::x::dm_spec::{MediaKind, PayloadShape, UrlSpec};
use crate::x::users::SandboxUser;

/// One `video_info.variants[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variant {
    pub bitrate: Option<u64>,
    pub content_type: String,
    pub url: String,
}

/// A media attachment with every URL decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedMedia {
    pub kind: MediaKind,
    pub media_id: String,
    /// The `https://t.co/…` link appended to the text (and the media's `url`).
    pub tco_url: String,
    /// Photo: the file's URL; video/GIF: the preview image.
    pub media_url_https: String,
    pub aspect_ratio: [u32; 2],
    pub duration_millis: Option<u64>,
    pub variants: Vec<Variant>,
}

/// A `message_create` DM event before rendering.
#[derive(Debug, Clone)]
pub(crate) struct DmEventParts {
    pub id: String,
    pub created_timestamp_ms: i64,
    pub sender_id: String,
    pub recipient_id: String,
    /// Set for DMs sent through the API (echoes).
    pub source_app_id: Option<String>,
    pub text: String,
    pub urls: Vec<UrlSpec>,
    pub media: Option<ResolvedMedia>,
}

/// One webhook activity.
#[derive(Debug, Clone)]
pub(crate) enum Activity {
    Dm {
        event: Box<DmEventParts>,
        app: Option<XApp>,
    },
    Typing {
        sender_id: String,
        recipient_id: String,
        created_timestamp_ms: i64,
    },
    Read {
        sender_id: String,
        recipient_id: String,
        last_read_event_id: String,
        created_timestamp_ms: i64,
    },
    /// An X Chat event (`chat.received`, `chat.sent`, `chat.conversation.join`, …): XAA only,
    /// its `payload` as given (docs/xchat.md §3.8).
    Chat {
        event_type: String,
        sender_id: String,
        recipient_id: String,
        payload: Value,
    },
}

impl Activity {
    /// Ids whose user objects go into the `users` map, sender first.
    pub(crate) fn user_ids(&self) -> Vec<String> {
        let (a, b) = match self {
            Self::Dm { event, .. } => (&event.sender_id, &event.recipient_id),
            Self::Typing {
                sender_id,
                recipient_id,
                ..
            }
            | Self::Read {
                sender_id,
                recipient_id,
                ..
            }
            | Self::Chat {
                sender_id,
                recipient_id,
                ..
            } => (sender_id, recipient_id),
        };
        if a == b {
            vec![a.clone()]
        } else {
            vec![a.clone(), b.clone()]
        }
    }
}

/// Serialises compactly, then escapes like X: `/` → `\/`, non-ASCII → `\uXXXX` (UTF-16, lower-case hex).
/// Outside strings JSON is pure ASCII without `/`, so escaping the whole text only touches strings.
pub fn x_json<T: Serialize>(value: &T) -> Vec<u8> {
    let compact = serde_json::to_string(value).unwrap_or_default();
    x_escape(&compact).into_bytes()
}

fn x_escape(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() + compact.len() / 8);
    for c in compact.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out
}

/// The bytes of a webhook POST for `activity`, addressed to `for_user_id`.
pub(crate) fn render(
    shape: PayloadShape,
    for_user_id: &str,
    activity: &Activity,
    users: Option<&[SandboxUser]>,
) -> Vec<u8> {
    let (dms, typing, read, apps) = split(activity);
    match shape {
        PayloadShape::Aaa => x_json(&AaaPayload {
            for_user_id,
            direct_message_events: dms,
            direct_message_indicate_typing_events: typing,
            direct_message_mark_read_events: read,
            apps,
            users: users.map(|u| Ordered(u.iter().map(|u| (u.id.clone(), u.legacy())).collect())),
        }),
        PayloadShape::Xaa => render_xaa(for_user_id, activity, users, Some("xdm-sandbox")),
    }
}

/// The X Activity API envelope of `activity` for a subscription of `for_user_id` with `tag`.
pub(crate) fn render_xaa(
    for_user_id: &str,
    activity: &Activity,
    users: Option<&[SandboxUser]>,
    tag: Option<&str>,
) -> Vec<u8> {
    if let Activity::Chat {
        event_type,
        payload,
        ..
    } = activity
    {
        return x_json(&ChatEnvelope {
            data: ChatData {
                event_uuid: event_uuid(),
                filter: XaaFilter {
                    user_id: for_user_id,
                },
                event_type,
                tag,
                payload,
            },
        });
    }
    let (dms, typing, read, apps) = split(activity);
    x_json(&XaaEnvelope {
        data: XaaData {
            event_uuid: event_uuid(),
            filter: XaaFilter {
                user_id: for_user_id,
            },
            event_type: xaa_event_type(for_user_id, activity),
            tag,
            payload: XaaPayload {
                direct_message_events: dms,
                direct_message_indicate_typing_events: typing,
                direct_message_mark_read_events: read,
                apps,
                users: users.map(|u| Ordered(u.iter().map(|u| (u.id.clone(), u.xaa())).collect())),
            },
        },
    })
}

/// The XAA event type of `activity` seen from `for_user_id`.
pub(crate) fn xaa_event_type<'a>(for_user_id: &str, activity: &'a Activity) -> &'a str {
    match activity {
        Activity::Dm { event, .. } if event.sender_id == for_user_id => "dm.sent",
        Activity::Dm { .. } => "dm.received",
        Activity::Typing { .. } => "dm.indicate_typing",
        Activity::Read { .. } => "dm.read",
        Activity::Chat { event_type, .. } => event_type,
    }
}

type Split = (
    Option<Vec<DmEvent>>,
    Option<Vec<TypingEvent>>,
    Option<Vec<ReadEvent>>,
    Option<Ordered<AppJson>>,
);

fn split(activity: &Activity) -> Split {
    match activity {
        Activity::Dm { event, app } => (
            Some(vec![dm_event(event)]),
            None,
            None,
            app.as_ref().map(|a| {
                Ordered(vec![(
                    a.id.clone(),
                    AppJson {
                        id: a.id.clone(),
                        name: a.name.clone(),
                        url: a.url.clone(),
                    },
                )])
            }),
        ),
        Activity::Typing {
            sender_id,
            recipient_id,
            created_timestamp_ms,
        } => (
            None,
            Some(vec![TypingEvent {
                created_timestamp: created_timestamp_ms.to_string(),
                sender_id: sender_id.clone(),
                target: Target {
                    recipient_id: recipient_id.clone(),
                },
            }]),
            None,
            None,
        ),
        Activity::Read {
            sender_id,
            recipient_id,
            last_read_event_id,
            created_timestamp_ms,
        } => (
            None,
            None,
            Some(vec![ReadEvent {
                created_timestamp: created_timestamp_ms.to_string(),
                sender_id: sender_id.clone(),
                target: Target {
                    recipient_id: recipient_id.clone(),
                },
                last_read_event_id: last_read_event_id.clone(),
            }]),
            None,
        ),
        // Chat events are rendered from their payload (`render_xaa`), never as DM events.
        Activity::Chat { .. } => (None, None, None, None),
    }
}

/// XAA event uuids are signed 64-bit numbers in a string (e.g. `-6850472171600526495`).
fn event_uuid() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(first).to_string()
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Renders the text, URL entities and attachment of a DM event.
fn dm_event(parts: &DmEventParts) -> DmEvent {
    let mut text = parts.text.clone();
    let mut urls = Vec::new();
    let append = |text: &mut String, url: &str| -> [usize; 2] {
        if !text.is_empty() {
            text.push(' ');
        }
        let start = char_len(text);
        text.push_str(url);
        [start, start + char_len(url)]
    };
    for spec in &parts.urls {
        let indices = match text.find(&spec.url) {
            Some(byte_at) => {
                let start = char_len(&text[..byte_at]);
                [start, start + char_len(&spec.url)]
            }
            None => append(&mut text, &spec.url),
        };
        urls.push(json!({
            "url": spec.url,
            "expanded_url": spec.expanded_url,
            "display_url": spec.display_url,
            "indices": indices,
        }));
    }
    let attachment = parts.media.as_ref().map(|media| {
        let tco = media.tco_url.clone();
        let code = tco.rsplit('/').next().unwrap_or_default();
        let indices = append(&mut text, &tco);
        let expanded = format!("https://twitter.com/messages/media/{}", parts.id);
        let display = format!("pic.twitter.com/{code}");
        urls.push(json!({
            "url": tco,
            "expanded_url": expanded,
            "display_url": display,
            "indices": indices,
        }));
        media_json(media, &tco, &display, &expanded, indices)
    });
    DmEvent {
        kind: "message_create",
        id: parts.id.clone(),
        created_timestamp: parts.created_timestamp_ms.to_string(),
        message_create: MessageCreate {
            target: Target {
                recipient_id: parts.recipient_id.clone(),
            },
            sender_id: parts.sender_id.clone(),
            source_app_id: parts.source_app_id.clone(),
            message_data: MessageData {
                text,
                entities: Entities {
                    hashtags: Vec::new(),
                    symbols: Vec::new(),
                    user_mentions: Vec::new(),
                    urls,
                },
                attachment,
            },
        },
    }
}

/// The `attachment` object of docs/protocols.md A2 (photo, video or GIF).
fn media_json(
    media: &ResolvedMedia,
    tco: &str,
    display: &str,
    expanded: &str,
    indices: [usize; 2],
) -> Value {
    let kind = match media.kind {
        MediaKind::Photo => "photo",
        MediaKind::Video => "video",
        MediaKind::AnimatedGif => "animated_gif",
    };
    let size = |w: u32, resize: &str| json!({"w": w, "h": w, "resize": resize});
    let mut media_obj = json!({
        "id": media.media_id.parse::<u64>().unwrap_or(0),
        "id_str": media.media_id,
        "indices": indices,
        "media_url": media.media_url_https,
        "media_url_https": media.media_url_https,
        "url": tco,
        "display_url": display,
        "expanded_url": expanded,
        "type": kind,
        "sizes": {
            "thumb": size(150, "crop"),
            "small": size(680, "fit"),
            "medium": size(1000, "fit"),
            "large": size(1000, "fit"),
        },
    });
    if media.kind != MediaKind::Photo
        && let Value::Object(obj) = &mut media_obj
    {
        let variants: Vec<Value> = media
            .variants
            .iter()
            .map(|v| match v.bitrate {
                Some(bitrate) => {
                    json!({"bitrate": bitrate, "content_type": v.content_type, "url": v.url})
                }
                None => json!({"content_type": v.content_type, "url": v.url}),
            })
            .collect();
        let mut info = json!({"aspect_ratio": media.aspect_ratio, "variants": variants});
        if let (Some(ms), Value::Object(info)) = (media.duration_millis, &mut info) {
            info.insert("duration_millis".into(), json!(ms));
        }
        obj.insert("video_info".into(), info);
    }
    json!({"type": "media", "media": media_obj})
}

/// A map serialised in insertion order (X lists the sender's user first).
#[derive(Debug, Clone)]
struct Ordered<T>(Vec<(String, T)>);

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct AaaPayload<'a> {
    for_user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_events: Option<Vec<DmEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_indicate_typing_events: Option<Vec<TypingEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_mark_read_events: Option<Vec<ReadEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apps: Option<Ordered<AppJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Ordered<crate::x::users::LegacyUser>>,
}

#[derive(Serialize)]
struct XaaEnvelope<'a> {
    data: XaaData<'a>,
}

#[derive(Serialize)]
struct XaaData<'a> {
    event_uuid: String,
    filter: XaaFilter<'a>,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    payload: XaaPayload,
}

#[derive(Serialize)]
struct ChatEnvelope<'a> {
    data: ChatData<'a>,
}

#[derive(Serialize)]
struct ChatData<'a> {
    event_uuid: String,
    filter: XaaFilter<'a>,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    payload: &'a Value,
}

#[derive(Serialize)]
struct XaaFilter<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct XaaPayload {
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_events: Option<Vec<DmEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_indicate_typing_events: Option<Vec<TypingEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_message_mark_read_events: Option<Vec<ReadEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apps: Option<Ordered<AppJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Ordered<crate::x::users::XaaUser>>,
}

#[derive(Serialize, Clone)]
struct AppJson {
    id: String,
    name: String,
    url: String,
}

#[derive(Serialize)]
struct DmEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    created_timestamp: String,
    message_create: MessageCreate,
}

#[derive(Serialize)]
struct MessageCreate {
    target: Target,
    sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_app_id: Option<String>,
    message_data: MessageData,
}

#[derive(Serialize)]
struct Target {
    recipient_id: String,
}

#[derive(Serialize)]
struct MessageData {
    text: String,
    entities: Entities,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<Value>,
}

#[derive(Serialize)]
struct Entities {
    hashtags: Vec<Value>,
    symbols: Vec<Value>,
    user_mentions: Vec<Value>,
    urls: Vec<Value>,
}

#[derive(Serialize)]
struct TypingEvent {
    created_timestamp: String,
    sender_id: String,
    target: Target,
}

#[derive(Serialize)]
struct ReadEvent {
    created_timestamp: String,
    sender_id: String,
    target: Target,
    last_read_event_id: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn text_dm(id: &str, sender: &str, recipient: &str, text: &str) -> DmEventParts {
        DmEventParts {
            id: id.into(),
            created_timestamp_ms: 1_775_080_034_563,
            sender_id: sender.into(),
            recipient_id: recipient.into(),
            source_app_id: None,
            text: text.into(),
            urls: Vec::new(),
            media: None,
        }
    }

    /// The real X delivery of docs/protocols.md A2 (AWS-SOC capture), rebuilt byte for byte.
    #[test]
    fn reproduces_the_real_account_activity_body() {
        let real = include_str!("../../testdata/x-aaa-text-dm-body.json");
        let mut elizabeth = SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12");
        elizabeth.created_at_ms = 1_247_109_333_000;
        elizabeth.location = Some("San Francisco, CA".into());
        elizabeth.description = Some("AWS Developer Advocate 🇻🇪🇨🇱. I work for @AWSCloud & my opinions are my own. Soy desierto, selva, nieve y volcán…".into());
        elizabeth.url = Some("https://t.co/0hRAxShvGA".into());
        elizabeth.followers_count = 1146;
        elizabeth.following_count = 1050;
        elizabeth.tweet_count = 32629;
        elizabeth.profile_image_url = Some(
            "https://pbs.twimg.com/profile_images/1603384697035182080/iQFwc3l3_normal.jpg".into(),
        );
        let mut business = SandboxUser::new("40876567", "Ensamblador", "ensamblador");
        business.created_at_ms = 1_242_654_699_000;
        business.location = Some("Santiago, Chile".into());
        business.description = Some(
            "I build cool things in aws https://t.co/1NROf4ljpQ\nI post my own opinions.".into(),
        );
        business.followers_count = 6131;
        business.following_count = 376;
        business.tweet_count = 43292;
        business.profile_image_url = Some(
            "https://pbs.twimg.com/profile_images/1281676323749011456/kJjBtbmw_normal.jpg".into(),
        );
        let activity = Activity::Dm {
            event: Box::new(text_dm(
                "2039459599745679612",
                "55125386",
                "40876567",
                "Hola2",
            )),
            app: None,
        };
        let body = render(
            PayloadShape::Aaa,
            "40876567",
            &activity,
            Some(&[elizabeth, business]),
        );
        assert_eq!(String::from_utf8(body).unwrap(), real);
    }

    #[test]
    fn escapes_slashes_and_non_ascii_like_x() {
        assert_eq!(
            x_escape(r#"{"u":"https://t.co/x","t":"volcán 🇻"}"#),
            r#"{"u":"https:\/\/t.co\/x","t":"volc\u00e1n \ud83c\uddfb"}"#
        );
    }

    #[test]
    fn xaa_envelope_wraps_payload_and_v2_users() {
        let activity = Activity::Dm {
            event: Box::new(text_dm(
                "2080765901528535096",
                "2222222222222222222",
                "1111111111111111111",
                "hello!",
            )),
            app: None,
        };
        let users = [SandboxUser {
            followers_count: 97,
            ..SandboxUser::new("2222222222222222222", "OtherUser", "OtherUser")
        }];
        let body = render(
            PayloadShape::Xaa,
            "1111111111111111111",
            &activity,
            Some(&users),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["event_type"], "dm.received");
        assert_eq!(v["data"]["filter"]["user_id"], "1111111111111111111");
        let payload = &v["data"]["payload"];
        assert_eq!(
            payload["direct_message_events"][0]["message_create"]["message_data"]["text"],
            "hello!"
        );
        let sender = &payload["users"]["2222222222222222222"]["data"];
        assert_eq!(sender["username"], "OtherUser");
        assert_eq!(sender["public_metrics"]["followers_count"], 97);
        assert!(v.get("for_user_id").is_none());
    }

    #[test]
    fn chat_events_carry_their_payload_in_xaa_order() {
        let activity = Activity::Chat {
            event_type: "chat.received".into(),
            sender_id: "1".into(),
            recipient_id: "2".into(),
            payload: json!({"encoded_event": "ab/c+=", "id": "m"}),
        };
        assert_eq!(xaa_event_type("2", &activity), "chat.received");
        let body = String::from_utf8(render_xaa("2", &activity, None, None)).unwrap();
        assert!(body.starts_with(r#"{"data":{"event_uuid":""#), "{body}");
        assert!(
            body.contains(r#""filter":{"user_id":"2"},"event_type":"chat.received","payload":{"encoded_event":"ab\/c+=","id":"m"}}}"#),
            "{body}"
        );
        let tagged = render_xaa("2", &activity, None, Some("t"));
        let v: Value = serde_json::from_slice(&tagged).unwrap();
        assert_eq!(v["data"]["tag"], "t");
        assert_eq!(v["data"]["payload"]["encoded_event"], "ab/c+=");
    }

    #[test]
    fn media_link_ends_the_text_and_url_indices_count_characters() {
        let mut event = text_dm(
            "1547580822294646788",
            "3001969357",
            "4337869213",
            "Voilà: https://t.co/abc",
        );
        event.urls.push(UrlSpec {
            url: "https://t.co/abc".into(),
            expanded_url: "https://example.com/a".into(),
            display_url: "example.com/a".into(),
        });
        event.media = Some(ResolvedMedia {
            kind: MediaKind::Photo,
            media_id: "1547580751654203394".into(),
            tco_url: "https://t.co/J9dz8mhUqz".into(),
            media_url_https: "http://127.0.0.1:1/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg".into(),
            aspect_ratio: [1, 1],
            duration_millis: None,
            variants: Vec::new(),
        });
        let body = render(
            PayloadShape::Aaa,
            "4337869213",
            &Activity::Dm {
                event: Box::new(event),
                app: None,
            },
            None,
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        let data = &v["direct_message_events"][0]["message_create"]["message_data"];
        let text = data["text"].as_str().unwrap();
        let urls = data["entities"]["urls"].as_array().unwrap();
        assert_eq!(urls[0]["indices"], json!([7, 23]));
        let media_link = urls[1]["url"].as_str().unwrap();
        assert_eq!(media_link, "https://t.co/J9dz8mhUqz");
        assert_eq!(urls[1]["display_url"], "pic.twitter.com/J9dz8mhUqz");
        assert!(text.ends_with(media_link));
        let start = urls[1]["indices"][0].as_u64().unwrap() as usize;
        assert_eq!(text.chars().skip(start).collect::<String>(), media_link);
        assert_eq!(data["attachment"]["media"]["id_str"], "1547580751654203394");
        assert_eq!(data["attachment"]["media"]["type"], "photo");
        assert_eq!(
            data["attachment"]["media"]["url"], urls[1]["url"],
            "the media's t.co link is the entity's"
        );
        assert!(data["attachment"]["media"].get("video_info").is_none());
        assert!(v.get("users").is_none());
    }
}
