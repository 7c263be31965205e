//! The reconciler's view of an account's recent DMs: one page of `GET /2/dm_events`
//! ([`XClient::dm_events_page`]), each one-to-one `MessageCreate` event made an [`InboundDm`]
//! like a webhook delivery makes it — text with the media link removed and other t.co links
//! expanded, the sender's profile from `includes.users`, the media from `includes.media` — as a
//! [`HistoryDm`]: `Received` from a customer, or `Sent` by the business (an echo the reconciler
//! skips). X allows 15 requests / 15 min per user here.

use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::{InboundDm, XChannel};
use xdm_core::ports::XError;
use xdm_core::profile::XProfile;

use super::page::{self, Event, PAGE_SIZE, Page, V2Url};
use crate::client::XClient;
use crate::payload::{MediaLink, agent_text, v2_media};
use crate::rate_limit::RateLimitHeaders;
use crate::user::{USER_FIELDS, UserObject};

/// The event fields `GET /2/dm_events` asks for.
pub const HISTORY_EVENT_FIELDS: &str =
    "id,text,sender_id,created_at,attachments,entities,event_type,dm_conversation_id";
/// The media fields `GET /2/dm_events` asks for.
pub const HISTORY_MEDIA_FIELDS: &str = "media_key,type,url,variants,preview_image_url";

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
        let created_ms = event.at_ms(id)?;
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
            channel: XChannel::Dm,
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
        let (page, headers) = page::fetch(self, business, url).await?;
        Ok(DmEventsPage {
            events: page.history(business),
            next_token: page.next_token().map(str::to_owned),
            rate: RateLimitHeaders::from_headers(&headers)
                .ok()
                .filter(|r| *r != RateLimitHeaders::Missing),
        })
    }
}
