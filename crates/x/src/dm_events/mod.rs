//! Reading DMs back from X.
//!
//! * `GET /2/dm_conversations/with/:participant_id/dm_events`, for
//!   [`XApi::sent_dms`](xdm_core::ports::XApi::sent_dms): what a business account sent
//!   (`sent`).
//! * `GET /2/dm_events`, for the reconciler (`XClient::dm_events_page`):
//!   one page of the account's recent DMs (X allows 15 requests / 15 min per user here), each as
//!   an [`InboundDm`](xdm_core::inbound::InboundDm) like a webhook delivery makes it — text with
//!   the media link removed and other t.co links expanded, the sender's profile from
//!   `includes.users`, the media from `includes.media`, as a [`HistoryDm`]: `Received` from a
//!   customer, or `Sent` by the business (an echo the reconciler skips). Only one-to-one
//!   conversations of the account count (`history`).
//! * Both read the same pages (`page`): X answers newest first, at most `max_results` (100)
//!   events a page, with `meta.next_token` for the next (older) page. An event's time comes from
//!   its id, a snowflake (`(id >> 22) + 1288834974657` = Unix ms, to the millisecond), else from
//!   `created_at` (which X may give to the second only).

mod history;
mod page;
mod sent;

pub use history::{DmEventsPage, HISTORY_EVENT_FIELDS, HISTORY_MEDIA_FIELDS, HistoryDm};
pub use page::{PAGE_SIZE, snowflake_ms};
pub(crate) use sent::sent_dms;
pub use sent::{DM_EVENT_FIELDS, MAX_PAGES};
