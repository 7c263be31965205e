//! The customer typing on X, shown in their chat: a Connect typing event (`SendEvent`).
//!
//! Best effort, and never stored: typing is not a message. Nothing is queued, retried or sent
//! again after a restart; an event the chat cannot show (no open chat yet, a chat still being
//! set up, Connect unavailable) is dropped. X sends a typing event every few seconds while the
//! customer types, and a client may send bursts; the chat gets **at most one per
//! [`TYPING_INTERVAL_MS`] per customer**, which is also about how long Connect's chat interfaces
//! show one. The interval is kept per process (on AWS Lambda, per warm instance): a few more may
//! get through when several processes share the work, never a flood.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::ids::XUserId;
use crate::inbound::Indicator;
use crate::metric_names::TYPING_EVENTS;
use crate::ports::{ChatEvent, Clock, ConnectApi, Store};

use super::Bridge;

/// At most one typing event per customer per this long reaches the chat.
pub const TYPING_INTERVAL_MS: i64 = 5_000;

/// How long the X delivery's answer may wait for one `SendEvent` (typing is relayed before X
/// is answered, which is also what AWS Lambda needs: work left after the answer may never run).
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Customers remembered before the ones whose interval has passed are forgotten.
const PRUNE_AT: usize = 10_000;

/// When each customer's last typing event was relayed.
#[derive(Debug, Default)]
pub(super) struct TypingGate {
    last_ms: Mutex<HashMap<(XUserId, XUserId), i64>>,
}

impl TypingGate {
    /// Whether a typing event of `customer` (with `business`) at `now_ms` may be relayed; if so,
    /// it counts as relayed from now.
    fn admit(&self, business: &XUserId, customer: &XUserId, now_ms: i64) -> bool {
        let mut last_ms = self.last_ms.lock().unwrap_or_else(PoisonError::into_inner);
        if last_ms.len() >= PRUNE_AT {
            last_ms.retain(|_, at| now_ms.saturating_sub(*at) < TYPING_INTERVAL_MS);
        }
        let key = (business.clone(), customer.clone());
        match last_ms.get(&key) {
            Some(at) if now_ms.saturating_sub(*at) < TYPING_INTERVAL_MS => false,
            _ => {
                last_ms.insert(key, now_ms);
                true
            }
        }
    }

    /// Gives back an admission that relayed nothing because there was no chat to show it in
    /// (so that typing right after the chat opens is shown).
    fn forget(&self, business: &XUserId, customer: &XUserId) {
        let mut last_ms = self.last_ms.lock().unwrap_or_else(PoisonError::into_inner);
        last_ms.remove(&(business.clone(), customer.clone()));
    }
}

/// What became of one typing event (the `result` label of [`TYPING_EVENTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relayed {
    Sent,
    /// Within the interval of the last one relayed.
    Throttled,
    /// No chat (or no connection to it yet) to show it in.
    NoChat,
    /// The store or Connect did not answer (in time).
    Failed,
}

impl Relayed {
    fn label(self) -> &'static str {
        match self {
            Relayed::Sent => "sent",
            Relayed::Throttled => "throttled",
            Relayed::NoChat => "no_chat",
            Relayed::Failed => "failed",
        }
    }
}

impl<S: Store, X, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// Shows the customers' typing of one X delivery in their open chats. Never fails.
    pub(super) async fn relay_typing(&self, typing: &[Indicator]) {
        for indicator in typing {
            let relayed = self.relay_one(indicator).await;
            metrics::counter!(TYPING_EVENTS, "result" => relayed.label()).increment(1);
        }
    }

    async fn relay_one(&self, indicator: &Indicator) -> Relayed {
        let relayed = self.relay_admitted(indicator).await;
        if relayed == Relayed::NoChat {
            self.typing.forget(&indicator.business, &indicator.sender);
        }
        relayed
    }

    async fn relay_admitted(&self, indicator: &Indicator) -> Relayed {
        let now = self.now_ms();
        if !self
            .typing
            .admit(&indicator.business, &indicator.sender, now)
        {
            return Relayed::Throttled;
        }
        let session = match self
            .store()
            .open_session(&indicator.business, &indicator.sender)
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return Relayed::NoChat,
            Err(e) => {
                tracing::debug!(error = %e, "typing not relayed: the store did not answer");
                return Relayed::Failed;
            }
        };
        // Only a chat whose connection is set up and current: typing never sets one up (the
        // delivery of the customer's message does).
        let Some(connection) = session
            .connection
            .as_ref()
            .filter(|c| c.expires_at_ms.is_none_or(|exp| exp > now))
        else {
            return Relayed::NoChat;
        };
        let client_token = format!(
            "xdm-typing-{}-{}",
            session.initial_contact_id, indicator.created_ms
        );
        let sent = self
            .connect
            .send_event(&connection.token, ChatEvent::Typing, &client_token);
        match tokio::time::timeout(SEND_TIMEOUT, sent).await {
            Ok(Ok(())) => Relayed::Sent,
            Ok(Err(e)) => {
                tracing::debug!(initial_contact_id = %session.initial_contact_id, error = %e,
                    "typing not relayed: Connect refused it");
                Relayed::Failed
            }
            Err(_) => {
                tracing::debug!(initial_contact_id = %session.initial_contact_id,
                    "typing not relayed: Connect did not answer in time");
                Relayed::Failed
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(id: &str) -> XUserId {
        XUserId::parse(id).unwrap()
    }

    #[test]
    fn one_typing_event_per_customer_per_interval() {
        let gate = TypingGate::default();
        let (business, a, b) = (user("1"), user("2"), user("3"));
        assert!(gate.admit(&business, &a, 0));
        assert!(!gate.admit(&business, &a, 1));
        assert!(!gate.admit(&business, &a, TYPING_INTERVAL_MS - 1));
        // Another customer has an interval of their own.
        assert!(gate.admit(&business, &b, 1));
        assert!(gate.admit(&business, &a, TYPING_INTERVAL_MS));
        assert!(!gate.admit(&business, &a, TYPING_INTERVAL_MS + 10));
        gate.forget(&business, &a);
        assert!(gate.admit(&business, &a, TYPING_INTERVAL_MS + 20));
    }

    #[test]
    fn customers_whose_interval_passed_are_forgotten_once_many_are_remembered() {
        let gate = TypingGate::default();
        let business = user("1");
        for i in 0..PRUNE_AT {
            assert!(gate.admit(&business, &user(&(100 + i).to_string()), 0));
        }
        // Past the interval: the next admission prunes everyone.
        assert!(gate.admit(&business, &user("7"), TYPING_INTERVAL_MS));
        assert_eq!(gate.last_ms.lock().unwrap().len(), 1);
    }
}
