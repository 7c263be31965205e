//! What a business account sent in one conversation, read back for
//! [`XApi::sent_dms`](xdm_core::ports::XApi::sent_dms):
//! `GET /2/dm_conversations/with/:participant_id/dm_events`.
//!
//! * Pages are read until one holds an event older than `since_ms`, there is no next page, or
//!   [`MAX_PAGES`] were read (then the oldest DMs of the window may be missing: a warning says
//!   so).
//! * Only `MessageCreate` events whose `sender_id` is the business account count. An event with
//!   neither a snowflake id nor `created_at` is left out: it cannot be placed in the window.
//! * Each `entities.urls[].url` is expanded back to its `expanded_url` so the text compares equal
//!   to what was sent.

use xdm_core::ids::XUserId;
use xdm_core::ports::{SentDmRecord, XError};

use super::page::{self, PAGE_SIZE, Page};
use crate::client::XClient;

/// The event fields asked for.
pub const DM_EVENT_FIELDS: &str = "id,text,sender_id,created_at,attachments,entities,event_type";
/// Pages read at most per call.
pub const MAX_PAGES: usize = 5;

impl Page {
    /// The DMs `business` sent, newest first as X lists them, and whether the page reaches back
    /// before `since_ms` (then no older page is needed).
    pub(crate) fn sent_by(&self, business: &str, since_ms: i64) -> (Vec<SentDmRecord>, bool) {
        let mut reached = false;
        let mut sent = Vec::new();
        for event in &self.data {
            let Some(id) = event.id.as_deref().filter(|i| !i.is_empty()) else {
                continue;
            };
            let Some(at_ms) = event.at_ms(id) else {
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
        let (page, _) = page::fetch(client, business, url).await?;
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
    use crate::dm_events::snowflake_ms;

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
