//! The X emulator's memory: users, sent DMs and the DM history, REST call records, used nonces,
//! rate windows, media uploads, OAuth 2.0 grants, webhooks, subscriptions, the event log, stream
//! connections, replays and deliveries, and the X Chat emulator's memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::config::RateLimit;
use crate::x::chat::state::ChatState;
use crate::x::oauth2_tokens::OAuth2State;
use crate::x::records::{
    ActivitySubscription, ReplayJob, RequestRecord, SentDm, WebhookDelivery, WebhookRegistration,
    XEventRecord, XOp,
};
use crate::x::stream_connections::Streams;
use crate::x::uploads::Upload;
use crate::x::users::SandboxUser;

/// How long a nonce is remembered (X rejects replays; RFC 5849 leaves the window to the server).
pub(crate) const NONCE_MEMORY_SECS: i64 = 15 * 60;

/// What `x-rate-limit-limit` says when no limit is configured.
const UNLIMITED: u32 = u32::MAX;
/// Window used for the reset header when no limit is configured (X's usual 15 minutes).
const DEFAULT_WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, Default)]
pub(crate) struct XState {
    pub users: BTreeMap<String, SandboxUser>,
    pub dms: Vec<SentDm>,
    pub requests: Vec<RequestRecord>,
    nonces: HashMap<String, i64>,
    windows: HashMap<(XOp, String), Window>,
    pub deliveries: Vec<WebhookDelivery>,
    /// X media upload v2, by media id.
    pub uploads: HashMap<String, Upload>,
    /// OAuth 2.0 codes and token families.
    pub oauth2: OAuth2State,
    /// Every DM of every conversation (received through `deliver_dm`, sent through the API),
    /// in order.
    pub dm_history: Vec<SentDm>,
    /// v2 media objects of received DM media, by `media_key` (`includes.media`).
    pub media_objects: HashMap<String, Value>,
    /// `/2/webhooks`, oldest first.
    pub webhooks: Vec<WebhookRegistration>,
    /// Webhooks (by id) re-checked by CRC before a delivery while invalid: those registered by
    /// `set_webhook` or the configuration.
    pub recheck_webhooks: HashSet<String>,
    /// X Activity API subscriptions, oldest first.
    pub subscriptions: Vec<ActivitySubscription>,
    /// Account Activity subscriptions: (webhook id, user id).
    pub aaa_subscriptions: Vec<(String, String)>,
    /// Every event rendered for a subscription (webhook, stream, replay, backfill).
    pub event_log: Vec<XEventRecord>,
    pub streams: Streams,
    pub replays: Vec<ReplayJob>,
    /// X Chat: public keys, conversations, relayed events, media, typing / read calls.
    pub chat: ChatState,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    used: u32,
}

/// The values of the three `x-rate-limit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset: i64,
}

impl XState {
    /// Remembers `nonce`; false when it was seen within the memory window.
    pub(crate) fn use_nonce(&mut self, nonce: &str, now: i64) -> bool {
        self.nonces
            .retain(|_, seen| now - *seen < NONCE_MEMORY_SECS);
        if self.nonces.contains_key(nonce) {
            return false;
        }
        self.nonces.insert(nonce.to_owned(), now);
        true
    }

    fn window(
        &mut self,
        op: XOp,
        principal: &str,
        limit: Option<RateLimit>,
        now: i64,
    ) -> (&mut Window, u32, i64) {
        let (max, secs) = match limit {
            Some(l) => (
                l.requests,
                i64::try_from(l.window_secs).unwrap_or(i64::MAX).max(1),
            ),
            None => (UNLIMITED, DEFAULT_WINDOW_SECS),
        };
        let window = self
            .windows
            .entry((op, principal.to_owned()))
            .or_insert(Window {
                start: now,
                used: 0,
            });
        if now >= window.start.saturating_add(secs) {
            *window = Window {
                start: now,
                used: 0,
            };
        }
        (window, max, secs)
    }

    /// The current window without counting a call (for refused calls).
    pub(crate) fn peek_rate(
        &mut self,
        op: XOp,
        principal: &str,
        limit: Option<RateLimit>,
        now: i64,
    ) -> RateInfo {
        let (window, max, secs) = self.window(op, principal, limit, now);
        RateInfo {
            limit: max,
            remaining: max.saturating_sub(window.used),
            reset: window.start.saturating_add(secs),
        }
    }

    /// Counts a call; `Err` with the window when the limit is exhausted.
    pub(crate) fn count_call(
        &mut self,
        op: XOp,
        principal: &str,
        limit: Option<RateLimit>,
        now: i64,
    ) -> Result<RateInfo, RateInfo> {
        let (window, max, secs) = self.window(op, principal, limit, now);
        let reset = window.start.saturating_add(secs);
        if window.used >= max {
            return Err(RateInfo {
                limit: max,
                remaining: 0,
                reset,
            });
        }
        window.used += 1;
        Ok(RateInfo {
            limit: max,
            remaining: max - window.used,
            reset,
        })
    }

    /// The webhook with this id.
    pub(crate) fn webhook(&self, id: &str) -> Option<&WebhookRegistration> {
        self.webhooks.iter().find(|w| w.id == id)
    }

    /// The registered user, or a placeholder for an unknown id.
    pub(crate) fn user_or_placeholder(&self, id: &str) -> SandboxUser {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| SandboxUser::placeholder(id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_within_the_window() {
        let mut state = XState::default();
        assert!(state.use_nonce("abc", 1000));
        assert!(!state.use_nonce("abc", 1001));
        assert!(state.use_nonce("abc", 1000 + NONCE_MEMORY_SECS));
    }

    #[test]
    fn rate_window_counts_and_resets() {
        let mut state = XState::default();
        let limit = Some(RateLimit {
            requests: 2,
            window_secs: 60,
        });
        assert_eq!(
            state
                .count_call(XOp::CreateDm, "u", limit, 100)
                .unwrap()
                .remaining,
            1
        );
        assert_eq!(
            state
                .count_call(XOp::CreateDm, "u", limit, 101)
                .unwrap()
                .remaining,
            0
        );
        let refused = state
            .count_call(XOp::CreateDm, "u", limit, 102)
            .unwrap_err();
        assert_eq!(refused.reset, 160);
        // Another endpoint has its own window.
        assert!(state.count_call(XOp::GetUser, "u", limit, 102).is_ok());
        assert_eq!(
            state
                .count_call(XOp::CreateDm, "u", limit, 160)
                .unwrap()
                .remaining,
            1
        );
    }
}
