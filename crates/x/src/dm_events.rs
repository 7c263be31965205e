//! Reading DMs back from X.
//!
//! * `GET /2/dm_conversations/with/:participant_id/dm_events`, for
//!   [`XApi::sent_dms`](xdm_core::ports::XApi::sent_dms): what a business account sent.
//! * `GET /2/dm_events`, for the reconciler ([`XClient::dm_events_page`]): one page of the
//!   account's recent DMs (X allows 15 requests / 15 min per user here), each as an
//!   [`InboundDm`] like a webhook delivery makes it — text with the media link removed and other
//!   t.co links expanded, the sender's profile from `includes.users`, the media from
//!   `includes.media`, as a [`HistoryDm`]: `Received` from a customer, or `Sent` by the business
//!   (an echo the reconciler skips). Only one-to-one conversations of the account count.
//!
//! * X answers newest first, at most `max_results` (100) events a page, with `meta.next_token`
//!   for the next (older) page. Pages are read until one holds an event older than `since_ms`,
//!   there is no next page, or [`MAX_PAGES`] were read (then the oldest DMs of the window may be
//!   missing: a warning says so).
//! * Only `MessageCreate` events whose `sender_id` is the business account count.
//! * An event's time comes from its id, a snowflake (`(id >> 22) + 1288834974657` = Unix ms, to
//!   the millisecond), else from `created_at` (which X may give to the second only). An event
//!   with neither is left out: it cannot be placed in the window.
//! * X rewrites URLs in DM text to t.co links; each `entities.urls[].url` is expanded back to its
//!   `expanded_url` so the text compares equal to what was sent.

use http::Method;
use serde::Deserialize;
use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::InboundDm;
use xdm_core::ports::{SentDmRecord, XError};
use xdm_core::profile::XProfile;

use crate::client::{USER_FIELDS, XClient, error_from_response, unexpected_body};
use crate::lenient;
use crate::payload::{MediaLink, UrlEntity, agent_text, v2_media};
use crate::rate_limit::RateLimitHeaders;
use crate::user::UserObject;

/// The event fields asked for.
pub const DM_EVENT_FIELDS: &str = "id,text,sender_id,created_at,attachments,entities,event_type";
/// The event fields `GET /2/dm_events` asks for.
pub const HISTORY_EVENT_FIELDS: &str =
    "id,text,sender_id,created_at,attachments,entities,event_type,dm_conversation_id";
/// The media fields `GET /2/dm_events` asks for.
pub const HISTORY_MEDIA_FIELDS: &str = "media_key,type,url,variants,preview_image_url";
/// Events per page (X's maximum).
pub const PAGE_SIZE: u32 = 100;
/// Pages read at most per call.
pub const MAX_PAGES: usize = 5;

/// Twitter's snowflake epoch (2010-11-04T01:42:54.657Z), Unix milliseconds.
const TWEPOCH_MS: i64 = 1_288_834_974_657;

/// The Unix milliseconds a snowflake id was made at; `None` if `id` is not a snowflake.
pub fn snowflake_ms(id: &str) -> Option<i64> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = id.parse().ok()?;
    let ms = i64::try_from(n >> 22).ok()?;
    ms.checked_add(TWEPOCH_MS)
}

/// RFC 3339 (`2022-10-25T22:06:05.000Z`) as Unix milliseconds.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One page of `dm_events`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Page {
    #[serde(default, deserialize_with = "lenient::list")]
    data: Vec<Event>,
    #[serde(default, deserialize_with = "lenient::object")]
    meta: Option<Meta>,
    /// Partial errors (events X could not render); the page is still used.
    #[serde(default, deserialize_with = "lenient::list")]
    errors: Vec<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient::object")]
    includes: Option<Includes>,
}

/// The expansions of a page: users and media, as JSON (read leniently item by item).
#[derive(Debug, Default, Deserialize)]
struct Includes {
    #[serde(default, deserialize_with = "lenient::list")]
    users: Vec<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient::list")]
    media: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default, deserialize_with = "lenient::string")]
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Event {
    #[serde(default, deserialize_with = "lenient::string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    sender_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    text: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    attachments: Option<Attachments>,
    #[serde(default, deserialize_with = "lenient::object")]
    entities: Option<Entities>,
    #[serde(default, deserialize_with = "lenient::string")]
    dm_conversation_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Attachments {
    #[serde(default, deserialize_with = "lenient::list")]
    media_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Entities {
    #[serde(default, deserialize_with = "lenient::list")]
    urls: Vec<V2Url>,
}

/// `entities.urls[]` in API v2: `start` / `end` instead of v1.1's `indices`.
#[derive(Debug, Default, Deserialize)]
struct V2Url {
    #[serde(default, deserialize_with = "lenient::string")]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    expanded_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    display_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    start: Option<u64>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    end: Option<u64>,
}

impl Page {
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        // A page is an object; `data` is absent when there are no events.
        if !value.is_object() {
            return None;
        }
        serde_json::from_value(value).ok()
    }

    pub(crate) fn next_token(&self) -> Option<&str> {
        self.meta
            .as_ref()
            .and_then(|m| m.next_token.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// The DMs `business` sent, newest first as X lists them, and whether the page reaches back
    /// before `since_ms` (then no older page is needed).
    pub(crate) fn sent_by(&self, business: &str, since_ms: i64) -> (Vec<SentDmRecord>, bool) {
        let mut reached = false;
        let mut sent = Vec::new();
        for event in &self.data {
            let Some(id) = event.id.as_deref().filter(|i| !i.is_empty()) else {
                continue;
            };
            let Some(at_ms) =
                snowflake_ms(id).or_else(|| event.created_at.as_deref().and_then(rfc3339_ms))
            else {
                continue;
            };
            if at_ms < since_ms {
                reached = true;
                continue;
            }
            if event.event_type.as_deref() != Some("MessageCreate")
                || event.sender_id.as_deref() != Some(business)
            {
                continue;
            }
            sent.push(SentDmRecord {
                dm_event_id: id.to_owned(),
                at_ms,
                text: event.expanded_text(),
                has_media: event.has_media(),
            });
        }
        (sent, reached)
    }

    pub(crate) fn partial_errors(&self) -> usize {
        self.errors.len()
    }
}

impl V2Url {
    fn indices(&self) -> Option<(usize, usize)> {
        self.start
            .zip(self.end)
            .and_then(|(s, e)| usize::try_from(s).ok().zip(usize::try_from(e).ok()))
    }

    /// Whether this is the link X appends for an attached media (`pic.x.com/…` shown,
    /// `https://x.com/messages/media/<id>` behind it).
    fn is_media_link(&self) -> bool {
        self.expanded_url
            .as_deref()
            .is_some_and(|u| u.contains("/messages/media/"))
            || self
                .display_url
                .as_deref()
                .is_some_and(|d| d.starts_with("pic.x.com/") || d.starts_with("pic.twitter.com/"))
    }
}

impl Event {
    fn url_entities(&self) -> Vec<UrlEntity> {
        self.entities
            .iter()
            .flat_map(|e| &e.urls)
            .map(|u| UrlEntity {
                url: u.url.clone(),
                expanded_url: u.expanded_url.clone(),
                indices: u.indices(),
            })
            .collect()
    }

    /// The text with its t.co links expanded; `None` if there is none.
    fn expanded_text(&self) -> Option<String> {
        let text = self.text.as_deref().filter(|t| !t.is_empty())?;
        Some(agent_text(text, &self.url_entities(), None))
    }

    fn has_media(&self) -> bool {
        self.attachments
            .as_ref()
            .is_some_and(|a| !a.media_keys.is_empty())
    }
}

/// One DM read back with `GET /2/dm_events`, as an [`InboundDm`] for the business account.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryDm {
    /// From a customer to the business.
    Received(InboundDm),
    /// From the business (an echo: [`InboundDm::is_echo`]).
    Sent(InboundDm),
}

impl HistoryDm {
    pub fn dm(&self) -> &InboundDm {
        match self {
            Self::Received(dm) | Self::Sent(dm) => dm,
        }
    }

    pub fn created_ms(&self) -> i64 {
        self.dm().created_ms
    }

    pub fn is_sent(&self) -> bool {
        matches!(self, Self::Sent(_))
    }

    /// The DM when a customer sent it.
    pub fn into_received(self) -> Option<InboundDm> {
        match self {
            Self::Received(dm) => Some(dm),
            Self::Sent(_) => None,
        }
    }
}

/// One page of `GET /2/dm_events`, newest first as X lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DmEventsPage {
    /// The account's one-to-one `MessageCreate` events.
    pub events: Vec<HistoryDm>,
    /// The `pagination_token` of the next (older) page.
    pub next_token: Option<String>,
    /// The rate-limit headers of the answer, when readable.
    pub rate: Option<RateLimitHeaders>,
}

impl Page {
    /// The events of the page as DMs of `business` (see [`DmEventsPage::events`]).
    fn history(&self, business: &XUserId) -> Vec<HistoryDm> {
        self.data
            .iter()
            .filter_map(|event| self.history_dm(business, event))
            .map(|dm| {
                if dm.is_echo() {
                    HistoryDm::Sent(dm)
                } else {
                    HistoryDm::Received(dm)
                }
            })
            .collect()
    }

    fn history_dm(&self, business: &XUserId, event: &Event) -> Option<InboundDm> {
        if event.event_type.as_deref() != Some("MessageCreate") {
            return None;
        }
        let id = event.id.as_deref()?;
        let event_id = XEventId::parse(id).ok()?;
        let created_ms =
            snowflake_ms(id).or_else(|| event.created_at.as_deref().and_then(rfc3339_ms))?;
        let sender = XUserId::parse(event.sender_id.as_deref()?).ok()?;
        // One-to-one conversations are `<lower id>-<higher id>`; group ones are left out.
        let counterpart = match event.dm_conversation_id.as_deref() {
            Some(conversation) => {
                let (a, b) = conversation.split_once('-')?;
                match (a == business.as_str(), b == business.as_str()) {
                    (true, false) => XUserId::parse(b).ok()?,
                    (false, true) => XUserId::parse(a).ok()?,
                    _ => return None,
                }
            }
            None if sender != *business => sender.clone(),
            None => return None,
        };
        let recipient = if sender == *business {
            counterpart
        } else if counterpart == sender {
            business.clone()
        } else {
            return None;
        };
        let media = event
            .attachments
            .as_ref()
            .and_then(|a| a.media_keys.first())
            .and_then(|key| self.media(key))
            .and_then(|m| {
                v2_media(m)
                    .inspect_err(|reason| {
                        tracing::warn!(event_id = %event_id, reason, "DM attachment cannot be read: relayed without it");
                    })
                    .ok()
            });
        let urls = event.url_entities();
        let link = event
            .entities
            .iter()
            .flat_map(|e| &e.urls)
            .find(|u| u.is_media_link());
        let media_link = event.has_media().then(|| MediaLink {
            url: link.and_then(|u| u.url.as_deref()),
            indices: link.and_then(V2Url::indices),
            strip: media.is_some(),
        });
        let text = agent_text(event.text.as_deref().unwrap_or(""), &urls, media_link);
        let sender_profile = self.profile(&sender);
        Some(InboundDm {
            business: business.clone(),
            event_id,
            sender,
            recipient,
            created_ms,
            text,
            source_app_id: None,
            sender_profile,
            media,
        })
    }

    fn media(&self, key: &str) -> Option<&serde_json::Value> {
        self.includes
            .as_ref()?
            .media
            .iter()
            .find(|m| m.get("media_key").and_then(serde_json::Value::as_str) == Some(key))
    }

    fn profile(&self, id: &XUserId) -> Option<XProfile> {
        let user = self
            .includes
            .as_ref()?
            .users
            .iter()
            .find(|u| u.get("id").and_then(serde_json::Value::as_str) == Some(id.as_str()))?;
        let user: UserObject = serde_json::from_value(user.clone()).ok()?;
        Some(user.into_profile(id.clone())).filter(XProfile::is_known)
    }
}

impl XClient {
    /// One page of `GET /2/dm_events` as `business` (newest first; `pagination_token` from the
    /// previous page's `next_token`). 429 ⇒ `RateLimited` with the reset time.
    pub async fn dm_events_page(
        &self,
        business: &XUserId,
        pagination_token: Option<&str>,
    ) -> Result<DmEventsPage, XError> {
        let mut url = self.endpoint("/2/dm_events")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("max_results", &PAGE_SIZE.to_string())
                .append_pair("event_types", "MessageCreate")
                .append_pair("dm_event.fields", HISTORY_EVENT_FIELDS)
                .append_pair("expansions", "sender_id,attachments.media_keys")
                .append_pair("user.fields", USER_FIELDS)
                .append_pair("media.fields", HISTORY_MEDIA_FIELDS);
            if let Some(t) = pagination_token.filter(|t| !t.is_empty()) {
                query.append_pair("pagination_token", t);
            }
        }
        let answer = self.call::<()>(Method::GET, url, business, None).await?;
        if !answer.status.is_success() {
            return Err(error_from_response(
                answer.status,
                &answer.headers,
                &answer.body,
            ));
        }
        let Some(page) = Page::parse(&answer.body) else {
            return Err(unexpected_body("a DM events lookup", &answer.body));
        };
        if page.partial_errors() > 0 {
            tracing::debug!(
                errors = page.partial_errors(),
                "X left some DM events out of the page"
            );
        }
        Ok(DmEventsPage {
            events: page.history(business),
            next_token: page.next_token().map(str::to_owned),
            rate: RateLimitHeaders::from_headers(&answer.headers)
                .ok()
                .filter(|r| *r != RateLimitHeaders::Missing),
        })
    }
}

/// [`XApi::sent_dms`](xdm_core::ports::XApi::sent_dms) over `client`.
pub(crate) async fn sent_dms(
    client: &XClient,
    business: &XUserId,
    recipient: &XUserId,
    since_ms: i64,
) -> Result<Vec<SentDmRecord>, XError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for page_no in 1..=MAX_PAGES {
        let mut url =
            client.endpoint(&format!("/2/dm_conversations/with/{recipient}/dm_events"))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("dm_event.fields", DM_EVENT_FIELDS)
                .append_pair("max_results", &PAGE_SIZE.to_string());
            if let Some(t) = &token {
                query.append_pair("pagination_token", t);
            }
        }
        let answer = client.call::<()>(Method::GET, url, business, None).await?;
        if !answer.status.is_success() {
            return Err(error_from_response(
                answer.status,
                &answer.headers,
                &answer.body,
            ));
        }
        let Some(page) = Page::parse(&answer.body) else {
            return Err(unexpected_body("a DM events lookup", &answer.body));
        };
        if page.partial_errors() > 0 {
            tracing::debug!(
                errors = page.partial_errors(),
                "X left some DM events out of the page"
            );
        }
        let (sent, reached) = page.sent_by(business.as_str(), since_ms);
        found.extend(sent);
        let next = page.next_token().map(str::to_owned);
        if reached || next.is_none() {
            break;
        }
        if page_no == MAX_PAGES {
            tracing::warn!(
                pages = MAX_PAGES,
                found = found.len(),
                "the conversation has more DMs since the job's first attempt than are read back; the oldest may be sent again"
            );
        }
        token = next;
    }
    // Oldest first; X lists newest first, and ids order events.
    found.sort_by(|a, b| {
        (a.at_ms, a.dm_event_id.len(), &a.dm_event_id).cmp(&(
            b.at_ms,
            b.dm_event_id.len(),
            &b.dm_event_id,
        ))
    });
    found.dedup_by(|a, b| a.dm_event_id == b.dm_event_id);
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const BUSINESS: &str = "906948460078698496";
    const CUSTOMER: &str = "944480690";

    /// A page as X API v2 documents it for this endpoint (newest first), with a DM from the
    /// business carrying a link, one with media, one from the customer, and a join event.
    const PAGE: &str = r#"{
      "data": [
        {
          "id": "1585316782690799621",
          "text": "Your order: https://t.co/6o5TQc1NhX and https://t.co/zZ8ccqU2Ai",
          "event_type": "MessageCreate",
          "dm_conversation_id": "944480690-906948460078698496",
          "created_at": "2022-10-26T17:05:49.000Z",
          "sender_id": "906948460078698496",
          "entities": {
            "urls": [
              {"start": 12, "end": 35, "url": "https://t.co/6o5TQc1NhX",
               "expanded_url": "https://example.com/order/42", "display_url": "example.com/order/42"},
              {"start": 40, "end": 63, "url": "https://t.co/zZ8ccqU2Ai",
               "expanded_url": "https://example.com/help?a=1&b=2", "display_url": "example.com/help?a=1&b…"}
            ]
          }
        },
        {
          "id": "1585316751967522821",
          "text": "https://t.co/Lk2nz9c1KG",
          "event_type": "MessageCreate",
          "dm_conversation_id": "944480690-906948460078698496",
          "created_at": "2022-10-26T17:05:42.000Z",
          "sender_id": "906948460078698496",
          "attachments": {"media_keys": ["3_1585321400000000000"]},
          "entities": {
            "urls": [
              {"start": 0, "end": 23, "url": "https://t.co/Lk2nz9c1KG",
               "expanded_url": "https://x.com/messages/media/1585316751967522821",
               "display_url": "pic.x.com/Lk2nz9c1KG"}
            ]
          }
        },
        {
          "id": "1585316722032775173",
          "text": "thanks!",
          "event_type": "MessageCreate",
          "dm_conversation_id": "944480690-906948460078698496",
          "created_at": "2022-10-26T17:05:34.000Z",
          "sender_id": "944480690"
        },
        {
          "id": "1585316638368993285",
          "event_type": "ParticipantsJoin",
          "dm_conversation_id": "944480690-906948460078698496",
          "created_at": "2022-10-26T17:05:15.000Z",
          "participant_ids": ["944480690"]
        },
        {
          "id": "1585042878818684933",
          "text": "Hello, how can we help?",
          "event_type": "MessageCreate",
          "dm_conversation_id": "944480690-906948460078698496",
          "created_at": "2022-10-25T22:57:25.000Z",
          "sender_id": "906948460078698496"
        }
      ],
      "meta": {
        "result_count": 5,
        "next_token": "18LAA581J5II7LA00000",
        "previous_token": "1BLC45G7J5II7LA00000"
      }
    }"#;

    #[test]
    fn snowflake_ids_carry_their_millisecond() {
        // An event X stamped `created_at` 2022-10-26T17:05:49.000Z: the id has the millisecond.
        let ms = snowflake_ms("1585316782690799621").unwrap();
        assert_eq!(ms, 1_666_803_949_412);
        assert_eq!(
            ms / 1000,
            rfc3339_ms("2022-10-26T17:05:49.000Z").unwrap() / 1000
        );
        assert_eq!(snowflake_ms("0"), Some(TWEPOCH_MS));
        for bad in ["", "12a", "-5", "99999999999999999999999"] {
            assert_eq!(snowflake_ms(bad), None, "{bad}");
        }
        assert_eq!(
            rfc3339_ms("2022-10-26T17:05:49.123Z"),
            Some(1_666_803_949_123)
        );
        assert_eq!(rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn a_page_yields_the_business_dms_of_the_window_with_links_expanded() {
        let page = Page::parse(PAGE.as_bytes()).unwrap();
        assert_eq!(page.next_token(), Some("18LAA581J5II7LA00000"));
        let since = snowflake_ms("1585316638368993285").unwrap();
        let (sent, reached) = page.sent_by(BUSINESS, since);
        assert!(reached, "the last event is older than the window");
        assert_eq!(
            sent,
            vec![
                SentDmRecord {
                    dm_event_id: "1585316782690799621".into(),
                    at_ms: snowflake_ms("1585316782690799621").unwrap(),
                    text: Some(
                        "Your order: https://example.com/order/42 and https://example.com/help?a=1&b=2"
                            .into()
                    ),
                    has_media: false,
                },
                SentDmRecord {
                    dm_event_id: "1585316751967522821".into(),
                    at_ms: snowflake_ms("1585316751967522821").unwrap(),
                    text: Some("https://x.com/messages/media/1585316751967522821".into()),
                    has_media: true,
                },
            ]
        );
        // Everything from the customer's side is left out; so is the join event.
        let (all, reached) = page.sent_by(BUSINESS, 0);
        assert!(!reached);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].text.as_deref(), Some("Hello, how can we help?"));
        let (theirs, _) = page.sent_by(CUSTOMER, 0);
        assert_eq!(theirs.len(), 1);
        // The window is inclusive at the millisecond.
        let at = snowflake_ms("1585316751967522821").unwrap();
        assert_eq!(page.sent_by(BUSINESS, at).0.len(), 2);
        assert_eq!(page.sent_by(BUSINESS, at + 1).0.len(), 1);
    }

    #[test]
    fn odd_events_fall_back_or_are_left_out() {
        let body = br#"{"data":[
            {"id":"abc","event_type":"MessageCreate","sender_id":"1","text":"by created_at",
             "created_at":"2024-01-01T00:00:01.000Z"},
            {"id":"def","event_type":"MessageCreate","sender_id":"1","text":"no time at all"},
            {"event_type":"MessageCreate","sender_id":"1","text":"no id"},
            {"id":"1585316782690799621","event_type":"MessageCreate","sender_id":"1","text":"",
             "attachments":{"media_keys":[]}},
            "not an event"
          ],"meta":{"result_count":5}}"#;
        let page = Page::parse(body).unwrap();
        assert_eq!(page.next_token(), None);
        let (sent, _) = page.sent_by("1", 0);
        assert_eq!(
            sent.iter()
                .map(|r| (r.dm_event_id.as_str(), r.text.as_deref(), r.has_media))
                .collect::<Vec<_>>(),
            vec![
                ("abc", Some("by created_at"), false),
                ("1585316782690799621", None, false)
            ]
        );
        assert_eq!(sent[0].at_ms, 1_704_067_201_000);
        // No events: no `data` at all.
        let empty = Page::parse(br#"{"meta":{"result_count":0}}"#).unwrap();
        assert_eq!(empty.sent_by("1", 0), (vec![], false));
        assert!(Page::parse(b"[]").is_none());
        assert!(Page::parse(b"<html>").is_none());
    }
}
