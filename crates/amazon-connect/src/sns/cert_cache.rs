//! The signing-certificate cache of [`SnsVerifier`](super::SnsVerifier): public keys by exact
//! URL (bounded, oldest out), and failed fetches remembered for a short while, so that a flood
//! of messages naming a certificate URL that fails — anyone who knows the topic ARN can send
//! them, unsigned — makes one fetch per [`FAILED_FETCH_TTL`], not one per message.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a failed certificate fetch is answered from memory.
pub const FAILED_FETCH_TTL: Duration = Duration::from_secs(60);
/// Failed URLs remembered at most (an attacker may name many): the oldest is forgotten first.
const FAILED_CAPACITY: usize = 256;

/// Public keys (`K`) and recent failures, by exact certificate URL. `E` is the failure reported
/// again.
pub(super) struct CertCache<K: ?Sized, E> {
    capacity: usize,
    keys: HashMap<String, Arc<K>>,
    order: VecDeque<String>,
    failure_ttl: Duration,
    failures: HashMap<String, (Instant, E)>,
}

impl<K: ?Sized, E: Clone> CertCache<K, E> {
    pub(super) fn new(capacity: usize, failure_ttl: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            keys: HashMap::new(),
            order: VecDeque::new(),
            failure_ttl,
            failures: HashMap::new(),
        }
    }

    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    pub(super) fn set_failure_ttl(&mut self, ttl: Duration) {
        self.failure_ttl = ttl;
    }

    pub(super) fn get(&self, url: &str) -> Option<Arc<K>> {
        self.keys.get(url).cloned()
    }

    pub(super) fn insert(&mut self, url: String, key: Arc<K>) {
        self.failures.remove(&url);
        if self.keys.insert(url.clone(), key).is_some() {
            return;
        }
        self.order.push_back(url);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }

    /// The failure of the last fetch of `url`, if it happened less than the TTL before `now`.
    pub(super) fn failure(&self, url: &str, now: Instant) -> Option<E> {
        self.failures
            .get(url)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.failure_ttl)
            .map(|(_, e)| e.clone())
    }

    /// Remembers that fetching `url` failed at `now`.
    pub(super) fn remember_failure(&mut self, url: &str, error: E, now: Instant) {
        let ttl = self.failure_ttl;
        self.failures
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
        if self.failures.len() >= FAILED_CAPACITY
            && let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(u, _)| u.clone())
        {
            self.failures.remove(&oldest);
        }
        self.failures.insert(url.to_owned(), (now, error));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded() {
        let mut c: CertCache<[u8], ()> = CertCache::new(2, FAILED_FETCH_TTL);
        for u in ["a", "b", "c"] {
            c.insert(u.into(), Arc::from(&b"k"[..]));
        }
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
    }

    #[test]
    fn failures_expire_and_a_success_clears_them() {
        let t0 = Instant::now();
        let mut c: CertCache<[u8], &str> = CertCache::new(2, Duration::from_secs(60));
        c.remember_failure("u", "HTTP 404", t0);
        assert_eq!(
            c.failure("u", t0 + Duration::from_secs(59)),
            Some("HTTP 404")
        );
        assert_eq!(c.failure("u", t0 + Duration::from_secs(60)), None);
        assert_eq!(c.failure("other", t0), None);
        c.remember_failure("u", "HTTP 404", t0);
        c.insert("u".into(), Arc::from(&b"k"[..]));
        assert_eq!(c.failure("u", t0), None);
    }

    #[test]
    fn failures_are_bounded() {
        let t0 = Instant::now();
        let mut c: CertCache<[u8], usize> = CertCache::new(2, Duration::from_secs(60));
        for i in 0..FAILED_CAPACITY + 10 {
            c.remember_failure(&format!("u{i}"), i, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(c.failures.len(), FAILED_CAPACITY);
        assert_eq!(c.failure("u0", t0), None, "the oldest went first");
        let last = FAILED_CAPACITY + 9;
        assert_eq!(
            c.failure(&format!("u{last}"), t0 + Duration::from_secs(1)),
            Some(last)
        );
    }
}
