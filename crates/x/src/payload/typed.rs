//! The ordinary deliveries — text DMs, in either shape — read straight from the body's bytes into
//! typed structs that borrow its strings, instead of through a `serde_json::Value` tree.
//!
//! Building that tree (a `BTreeMap` per object, a `String` per key and string) and reading the
//! events back out of it is most of what a delivery's parse costs (docs/performance.md, "Where an
//! acknowledgement's CPU goes"). The structs here are **strict**: every field the parse reads has
//! the one JSON type X sends, so anything else — a number where X sends a string, a field given
//! twice, an attachment, typing or read events, a revocation, X Chat — makes [`parse`] give up,
//! and the delivery is read by the forgiving reader of `mod.rs`, as before. Where [`parse`] does
//! answer, its events go through the same conversion (`Reader::dm_event`, `UserObject`) and the
//! answer is the one the forgiving reader gives (a test compares both on every documented
//! delivery and on every variant of them with one member removed or of another type).
//! Members the parse does not read are skipped without being built. A delivery it gives up on
//! is read twice — the typed attempt costs a few µs, against the tree's ~8.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use xdm_core::ids::XUserId;

use super::delivery::{DeliveryShape, ParsedDelivery};
use super::model::{DmEvent, Entities, MessageCreate, MessageData, Target, UrlEntity};
use super::reader::{DM_EVENTS, Reader, Users};
use crate::user::{PublicMetrics, UserObject};

/// A JSON string, borrowed from the body unless it has escapes; any other type is an error (the
/// forgiving reader's to judge).
#[derive(Debug)]
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s))
            }
        }
        d.deserialize_str(Visit).map(Str)
    }
}

/// A string member; `null` and absent alike are `None`.
type Text<'a> = Option<Str<'a>>;

/// A member where absent and `null` mean different things to the forgiving reader.
#[derive(Debug, Default)]
enum Member<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Member<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Member::Null, Member::Value))
    }
}

/// A business id: absent, `null`, or a string (a number makes [`parse`] give up).
type Id<'a> = Member<Str<'a>>;

/// An event list: absent, `null` (which the forgiving reader reports), or DM events.
type List<'a> = Member<Vec<Dm<'a>>>;

/// The `users` map of a delivery.
type UserMap<'a> = BTreeMap<Cow<'a, str>, User<'a>>;

/// A member whose presence alone matters (any value, `null` included).
#[derive(Debug, Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

/// The top level of a delivery, or the `payload` of an X Activity API one.
#[derive(Debug, Deserialize)]
struct Payload<'a> {
    /// The X Activity API envelope (top level only).
    #[serde(borrow, default)]
    data: Option<Box<Data<'a>>>,
    #[serde(borrow, default)]
    for_user_id: Id<'a>,
    #[serde(borrow, default)]
    direct_message_events: List<'a>,
    #[serde(borrow, default)]
    users: Option<UserMap<'a>>,
    // Read by the forgiving reader only.
    #[serde(default)]
    direct_message_indicate_typing_events: Present,
    #[serde(default)]
    direct_message_mark_read_events: Present,
    #[serde(default)]
    user_event: Present,
}

impl Payload<'_> {
    fn only_dms(&self) -> bool {
        !(self.direct_message_indicate_typing_events.0
            || self.direct_message_mark_read_events.0
            || self.user_event.0)
    }
}

#[derive(Debug, Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    event_type: Text<'a>,
    #[serde(borrow, default)]
    filter: Option<Filter<'a>>,
    #[serde(borrow, default)]
    payload: Option<Payload<'a>>,
}

#[derive(Debug, Deserialize)]
struct Filter<'a> {
    #[serde(borrow, default)]
    user_id: Id<'a>,
}

#[derive(Debug, Deserialize)]
struct Dm<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Text<'a>,
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    created_timestamp: Text<'a>,
    #[serde(borrow, default)]
    message_create: Option<Mc<'a>>,
}

#[derive(Debug, Deserialize)]
struct Mc<'a> {
    #[serde(borrow, default)]
    target: Option<McTarget<'a>>,
    #[serde(borrow, default)]
    sender_id: Text<'a>,
    #[serde(borrow, default)]
    source_app_id: Text<'a>,
    #[serde(borrow, default)]
    message_data: Option<Md<'a>>,
}

#[derive(Debug, Deserialize)]
struct McTarget<'a> {
    #[serde(borrow, default)]
    recipient_id: Text<'a>,
}

#[derive(Debug, Deserialize)]
struct Md<'a> {
    #[serde(borrow, default)]
    text: Text<'a>,
    #[serde(borrow, default)]
    entities: Option<MdEntities<'a>>,
    /// Media are read by the forgiving reader.
    #[serde(default)]
    attachment: Present,
}

#[derive(Debug, Deserialize)]
struct MdEntities<'a> {
    #[serde(borrow, default)]
    urls: Option<Vec<Url<'a>>>,
}

#[derive(Debug, Deserialize)]
struct Url<'a> {
    #[serde(borrow, default)]
    url: Text<'a>,
    #[serde(borrow, default)]
    expanded_url: Text<'a>,
    #[serde(default)]
    indices: Option<[u64; 2]>,
}

/// A user of the `users` map, legacy or v2 (`{"data":{…}}`).
#[derive(Debug, Deserialize)]
struct User<'a> {
    #[serde(borrow, default)]
    data: Option<Box<User<'a>>>,
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    username: Text<'a>,
    #[serde(borrow, default)]
    screen_name: Text<'a>,
    #[serde(borrow, default)]
    profile_image_url_https: Text<'a>,
    #[serde(borrow, default)]
    profile_image_url: Text<'a>,
    #[serde(default)]
    verified: Option<bool>,
    #[serde(default)]
    followers_count: Option<u64>,
    #[serde(default)]
    public_metrics: Option<Metrics>,
}

#[derive(Debug, Deserialize)]
struct Metrics {
    #[serde(default)]
    followers_count: Option<u64>,
}

fn owned(text: &Text<'_>) -> Option<String> {
    text.as_ref().map(|t| t.0.as_ref().to_owned())
}

fn into_owned(text: Text<'_>) -> Option<String> {
    text.map(|t| t.0.into_owned())
}

impl User<'_> {
    /// The user as the forgiving reader holds it.
    fn to_object(&self) -> UserObject {
        UserObject {
            data: self.data.as_ref().map(|d| Box::new(d.to_object())),
            id: owned(&self.id),
            name: owned(&self.name),
            username: owned(&self.username),
            screen_name: owned(&self.screen_name),
            profile_image_url_https: owned(&self.profile_image_url_https),
            profile_image_url: owned(&self.profile_image_url),
            verified: self.verified,
            followers_count: self.followers_count,
            public_metrics: self.public_metrics.as_ref().map(|m| PublicMetrics {
                followers_count: m.followers_count,
            }),
        }
    }
}

impl Dm<'_> {
    /// The event as the forgiving reader holds it.
    fn into_event(self) -> DmEvent {
        DmEvent {
            kind: into_owned(self.kind),
            id: into_owned(self.id),
            created_timestamp: into_owned(self.created_timestamp),
            message_create: self.message_create.map(|mc| MessageCreate {
                target: mc.target.map(|t| Target {
                    recipient_id: into_owned(t.recipient_id),
                }),
                sender_id: into_owned(mc.sender_id),
                source_app_id: into_owned(mc.source_app_id),
                message_data: mc.message_data.map(|md| MessageData {
                    text: into_owned(md.text),
                    entities: md.entities.map(|e| Entities {
                        urls: e
                            .urls
                            .into_iter()
                            .flatten()
                            .map(|u| UrlEntity {
                                url: into_owned(u.url),
                                expanded_url: into_owned(u.expanded_url),
                                indices: u.indices.and_then(|[start, end]| {
                                    usize::try_from(start).ok().zip(usize::try_from(end).ok())
                                }),
                            })
                            .collect(),
                    }),
                    attachment: None,
                }),
            }),
        }
    }

    fn has_attachment(&self) -> bool {
        self.message_create
            .as_ref()
            .and_then(|mc| mc.message_data.as_ref())
            .is_some_and(|md| md.attachment.0)
    }
}

/// The delivery, if it is an ordinary one this module reads; `None`: read it with the forgiving
/// reader (which also judges what is wrong with it).
pub(super) fn parse(body: &[u8]) -> Option<ParsedDelivery> {
    let mut top: Payload<'_> = serde_json::from_slice(body).ok()?;
    if !top.only_dms() {
        return None;
    }
    let data = top.data.take();
    let (shape, mut payload, business) = match data.map(|d| *d) {
        Some(Data {
            event_type,
            filter,
            payload,
        }) if event_type.is_some() || filter.is_some() || payload.is_some() => {
            if event_type.is_some_and(|t| t.0.starts_with("chat.")) {
                return None;
            }
            let mut payload = payload?;
            if payload.data.is_some() || !payload.only_dms() {
                return None;
            }
            // The first of these that is present names the business account, `null` included.
            let business = [
                std::mem::take(&mut payload.for_user_id),
                std::mem::take(&mut top.for_user_id),
                filter.map_or(Member::Absent, |f| f.user_id),
            ]
            .into_iter()
            .find(|id| !matches!(id, Member::Absent))
            .unwrap_or(Member::Absent);
            (DeliveryShape::XActivity, payload, business)
        }
        // A `data` that is not an X Activity API envelope is for the forgiving reader.
        Some(_) => return None,
        // An Account Activity delivery always carries its DM list here (typing, read and
        // revocations are read by the forgiving reader).
        None if matches!(top.direct_message_events, Member::Value(_)) => {
            let business = std::mem::take(&mut top.for_user_id);
            (DeliveryShape::AccountActivity, top, business)
        }
        None => return None,
    };
    let business = match business {
        Member::Absent | Member::Null => None,
        // An invalid id is the forgiving reader's to refuse, with the field's name.
        Member::Value(id) => Some(XUserId::parse(id.0).ok()?),
    };
    let dms = match std::mem::take(&mut payload.direct_message_events) {
        Member::Absent => Vec::new(),
        Member::Value(items) => items,
        // The forgiving reader reports a list that is not one.
        Member::Null => return None,
    };
    if dms.iter().any(Dm::has_attachment) {
        return None;
    }
    let users = payload.users.as_ref();
    let lookup = |id: &str| users.and_then(|u| u.get(id)).map(User::to_object);
    let mut reader = Reader::new(business, Users::Lookup(&lookup));
    for (index, dm) in dms.into_iter().enumerate() {
        let converted = reader.dm_event(dm.into_event());
        reader.keep(DM_EVENTS, index, converted);
    }
    Some(reader.into_delivery(shape))
}
