//! A page of X's `dm_events` answers (`GET /2/dm_events` and
//! `GET /2/dm_conversations/with/:id/dm_events` share it), read leniently, and the time of each
//! event; [`fetch`] reads one.
//!
//! * An event's time comes from its id, a snowflake (`(id >> 22) + 1288834974657` = Unix ms, to
//!   the millisecond), else from `created_at` (which X may give to the second only).
//! * X rewrites URLs in DM text to t.co links; `entities.urls[]` says what each stands for.

use http::{HeaderMap, Method};
use serde::Deserialize;
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;

use crate::client::XClient;
use crate::error::unexpected_body;
use crate::lenient;
use crate::payload::{UrlEntity, agent_text};

/// Events per page (X's maximum).
pub const PAGE_SIZE: u32 = 100;

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
    pub(super) data: Vec<Event>,
    #[serde(default, deserialize_with = "lenient::object")]
    meta: Option<Meta>,
    /// Partial errors (events X could not render); the page is still used.
    #[serde(default, deserialize_with = "lenient::list")]
    errors: Vec<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub(super) includes: Option<Includes>,
}

/// The expansions of a page: users and media, as JSON (read leniently item by item).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Includes {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) users: Vec<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) media: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default, deserialize_with = "lenient::string")]
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Event {
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) sender_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) text: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub(super) attachments: Option<Attachments>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub(super) entities: Option<Entities>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) dm_conversation_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Attachments {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) media_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Entities {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) urls: Vec<V2Url>,
}

/// `entities.urls[]` in API v2: `start` / `end` instead of v1.1's `indices`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct V2Url {
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) url: Option<String>,
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

    pub(crate) fn partial_errors(&self) -> usize {
        self.errors.len()
    }
}

impl V2Url {
    pub(super) fn indices(&self) -> Option<(usize, usize)> {
        self.start
            .zip(self.end)
            .and_then(|(s, e)| usize::try_from(s).ok().zip(usize::try_from(e).ok()))
    }

    /// Whether this is the link X appends for an attached media (`pic.x.com/…` shown,
    /// `https://x.com/messages/media/<id>` behind it).
    pub(super) fn is_media_link(&self) -> bool {
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
    /// When the event happened, Unix ms: from its id, else from `created_at`.
    pub(super) fn at_ms(&self, id: &str) -> Option<i64> {
        snowflake_ms(id).or_else(|| self.created_at.as_deref().and_then(rfc3339_ms))
    }

    pub(super) fn url_entities(&self) -> Vec<UrlEntity> {
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
    pub(super) fn expanded_text(&self) -> Option<String> {
        let text = self.text.as_deref().filter(|t| !t.is_empty())?;
        Some(agent_text(text, &self.url_entities(), None))
    }

    pub(super) fn has_media(&self) -> bool {
        self.attachments
            .as_ref()
            .is_some_and(|a| !a.media_keys.is_empty())
    }
}

/// One page at `url` (its query built by the caller) as `business`, and the answer's headers.
pub(super) async fn fetch(
    client: &XClient,
    business: &XUserId,
    url: Url,
) -> Result<(Page, HeaderMap), XError> {
    let answer = client
        .call::<()>(Method::GET, url, business, None)
        .await?
        .success()?;
    let Some(page) = Page::parse(&answer.body) else {
        return Err(unexpected_body("a DM events lookup", &answer.body));
    };
    if page.partial_errors() > 0 {
        tracing::debug!(
            errors = page.partial_errors(),
            "X left some DM events out of the page"
        );
    }
    Ok((page, answer.headers))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
}
