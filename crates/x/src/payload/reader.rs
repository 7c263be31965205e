//! Turning a delivery's DM, typing, read and revocation events into the batch: each event judged on
//! its own (a malformed one is skipped and reported, the rest kept), profiles looked up in the
//! delivery's `users` map. Shared by the forgiving reader (`mod.rs`, events as `serde_json`
//! values) and the typed read (`typed.rs`, events already in the model's structs).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::{InboundBatch, InboundDm, InboundEvent, Indicator, ReadUpTo, XChannel};
use xdm_core::profile::XProfile;

use super::caption::{MediaLink, agent_text};
use super::delivery::{DeliveryShape, ParsedDelivery, SkippedEvent};
use super::media;
use super::model::{DmEvent, IndicatorEvent};
use crate::user::UserObject;

/// The event lists a delivery may carry (kept in this order in the batch).
pub(super) const DM_EVENTS: &str = "direct_message_events";
pub(super) const TYPING_EVENTS: &str = "direct_message_indicate_typing_events";
pub(super) const READ_EVENTS: &str = "direct_message_mark_read_events";
pub(super) const USER_EVENT: &str = "user_event";

/// A skip: the reason, and the event id when known.
pub(super) type Skip = (&'static str, Option<XEventId>);

pub(super) struct Reader<'a> {
    business: Option<XUserId>,
    users: Users<'a>,
    events: Vec<InboundEvent>,
    skipped: Vec<SkippedEvent>,
}

/// Where a delivery's `users` map was read into.
pub(super) enum Users<'a> {
    None,
    Values(&'a Map<String, Value>),
    /// The user of an id (the typed read's map).
    Lookup(&'a dyn Fn(&str) -> Option<UserObject>),
}

impl<'a> Reader<'a> {
    /// A reader for the events of `business` (the delivery's account, if it names one).
    pub(super) fn new(business: Option<XUserId>, users: Users<'a>) -> Self {
        Self {
            business,
            users,
            events: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The read delivery.
    pub(super) fn into_delivery(self, shape: DeliveryShape) -> ParsedDelivery {
        ParsedDelivery {
            shape,
            business: self.business,
            batch: InboundBatch {
                events: self.events,
            },
            skipped: self.skipped,
        }
    }

    /// Keeps what item `index` of `list` became: an event, nothing (ignored on purpose), or a skip.
    pub(super) fn keep(
        &mut self,
        list: &'static str,
        index: usize,
        converted: Result<Option<InboundEvent>, Skip>,
    ) {
        match converted {
            Ok(Some(event)) => self.events.push(event),
            Ok(None) => {}
            Err(skip) => self.skip(list, index, skip),
        }
    }

    /// Converts every item of `payload[list]` with `convert` (`Ok(None)`: ignored on purpose).
    pub(super) fn read_list(
        &mut self,
        payload: &Map<String, Value>,
        list: &'static str,
        convert: impl Fn(&Self, &Value) -> Result<Option<InboundEvent>, Skip>,
    ) {
        let Some(value) = payload.get(list) else {
            return;
        };
        let Some(items) = value.as_array() else {
            self.skip(list, 0, ("the event list is not an array", None));
            return;
        };
        for (index, item) in items.iter().enumerate() {
            let converted = convert(self, item);
            self.keep(list, index, converted);
        }
    }

    fn skip(&mut self, list: &'static str, index: usize, (reason, event_id): Skip) {
        tracing::warn!(list, index, event_id = ?event_id, reason, "webhook event skipped");
        self.skipped.push(SkippedEvent {
            list,
            index,
            event_id,
            reason,
        });
    }

    fn business(&self, event_id: Option<&XEventId>) -> Result<XUserId, Skip> {
        self.business.clone().ok_or((
            "the delivery names no business account (for_user_id)",
            event_id.cloned(),
        ))
    }

    pub(super) fn dm(&self, item: &Value) -> Result<Option<InboundEvent>, Skip> {
        let ev: DmEvent = value_as(item).ok_or(("the event is not an object", None))?;
        self.dm_event(ev)
    }

    pub(super) fn dm_event(&self, ev: DmEvent) -> Result<Option<InboundEvent>, Skip> {
        match ev.kind.as_deref() {
            Some("message_create") => {}
            None if ev.message_create.is_some() => {}
            _ => {
                tracing::debug!(kind = ?ev.kind, "DM event that is not a message_create ignored");
                return Ok(None);
            }
        }
        let raw_id = ev.id.ok_or(("the event has no id", None))?;
        let event_id =
            XEventId::parse(raw_id).map_err(|_| ("the event id is not 1 to 19 digits", None))?;
        let skip = |reason: &'static str| (reason, Some(event_id.clone()));
        let business = self.business(Some(&event_id))?;
        let created_ms = timestamp(ev.created_timestamp.as_deref())
            .ok_or_else(|| skip("created_timestamp is missing or not milliseconds"))?;
        let mc = ev
            .message_create
            .ok_or_else(|| skip("message_create is missing"))?;
        let sender = user_id(mc.sender_id.as_deref()).ok_or_else(|| skip("invalid sender_id"))?;
        let recipient = user_id(mc.target.and_then(|t| t.recipient_id).as_deref())
            .ok_or_else(|| skip("invalid target.recipient_id"))?;

        let data = mc.message_data.unwrap_or_default();
        let urls = data.entities.map(|e| e.urls).unwrap_or_default();
        let attached = data.attachment.and_then(|a| a.media);
        let (media, media_link) = match &attached {
            None => (None, None),
            Some(m) => {
                let chosen = media::choose(m)
                    .inspect_err(|reason| {
                        tracing::warn!(event_id = %event_id, reason, "DM attachment cannot be read: relayed without it");
                    })
                    .ok();
                let link = MediaLink {
                    url: m.url.as_deref(),
                    indices: m.indices,
                    strip: chosen.is_some(),
                };
                (chosen, Some(link))
            }
        };
        let text = agent_text(data.text.as_deref().unwrap_or(""), &urls, media_link);

        let sender_profile = self.profile(&sender);
        Ok(Some(InboundEvent::Message(InboundDm {
            business,
            event_id,
            sender,
            recipient,
            created_ms,
            text,
            source_app_id: mc.source_app_id.filter(|s| !s.is_empty()),
            sender_profile,
            media,
            channel: XChannel::Dm,
        })))
    }

    pub(super) fn indicator(&self, item: &Value) -> Result<Option<Indicator>, Skip> {
        let ev: IndicatorEvent = value_as(item).ok_or(("the event is not an object", None))?;
        let business = self.business(None)?;
        let sender = user_id(ev.sender_id.as_deref()).ok_or(("invalid sender_id", None))?;
        let created_ms = timestamp(ev.created_timestamp.as_deref())
            .ok_or(("created_timestamp is missing or not milliseconds", None))?;
        Ok(Some(Indicator {
            business,
            sender,
            created_ms,
        }))
    }

    pub(super) fn read_up_to(&self, item: &Value) -> Result<Option<ReadUpTo>, Skip> {
        let ev: IndicatorEvent = value_as(item).ok_or(("the event is not an object", None))?;
        let last_read_event_id = ev
            .last_read_event_id
            .as_deref()
            .and_then(|id| XEventId::parse(id).ok())
            .ok_or(("last_read_event_id is missing or not an event id", None))?;
        let Some(read) = self.indicator(item)? else {
            return Ok(None);
        };
        Ok(Some(ReadUpTo {
            business: read.business,
            sender: read.sender,
            last_read_event_id,
            created_ms: read.created_ms,
        }))
    }

    /// The sender's profile from the delivery's `users` map (either user shape).
    fn profile(&self, id: &XUserId) -> Option<XProfile> {
        let user: UserObject = match self.users {
            Users::None => return None,
            Users::Values(users) => value_as(users.get(id.as_str())?)?,
            Users::Lookup(user) => user(id.as_str())?,
        };
        Some(user.into_profile(id.clone())).filter(XProfile::is_known)
    }
}

pub(super) fn value_as<T: DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

fn user_id(s: Option<&str>) -> Option<XUserId> {
    XUserId::parse(s?).ok()
}

/// `created_timestamp`: milliseconds since the epoch, as a string of digits.
fn timestamp(s: Option<&str>) -> Option<i64> {
    let s = s?;
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
