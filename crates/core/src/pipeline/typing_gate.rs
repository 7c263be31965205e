//! How often the customer's typing reaches their chat: at most once per
//! [`TYPING_INTERVAL_MS`] per customer (see `typing.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::ids::XUserId;

/// At most one typing event per customer per this long reaches the chat.
pub const TYPING_INTERVAL_MS: i64 = 5_000;

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
    pub(super) fn admit(&self, business: &XUserId, customer: &XUserId, now_ms: i64) -> bool {
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
    pub(super) fn forget(&self, business: &XUserId, customer: &XUserId) {
        let mut last_ms = self.last_ms.lock().unwrap_or_else(PoisonError::into_inner);
        last_ms.remove(&(business.clone(), customer.clone()));
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
