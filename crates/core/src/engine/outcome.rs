//! What became of one attempt at a job, and how long to wait before the next.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delivered, or nothing to deliver.
    Done,
    /// Try again: at `not_before_ms` (ms since the epoch) if set, else after the backoff delay
    /// for this attempt.
    Retry {
        not_before_ms: Option<i64>,
        reason: String,
    },
    /// Will never succeed; park it (the people concerned were told where possible).
    Failed { reason: String },
}

impl JobOutcome {
    /// Try again after the backoff delay.
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        JobOutcome::Retry {
            not_before_ms: None,
            reason: reason.to_string(),
        }
    }
}

/// Backoff for attempt `attempt` (1-based): `base · 2^(attempt-1)` capped at `max`, plus a jitter
/// of up to 25 % derived from `seed` so that jobs failing together do not retry together.
pub(crate) fn backoff_ms(attempt: u32, base: i64, max: i64, seed: &str) -> i64 {
    let exp = attempt.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1_i64 << exp).min(max);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let jitter = i64::try_from(h % 1024).unwrap_or(0) * (delay / 4) / 1024;
    delay + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_a_quarter() {
        assert!((1000..=1250).contains(&backoff_ms(1, 1000, 60_000, "a")));
        assert!((2000..=2500).contains(&backoff_ms(2, 1000, 60_000, "a")));
        assert!((60_000..=75_000).contains(&backoff_ms(40, 1000, 60_000, "a")));
        let spread: std::collections::HashSet<i64> = (0..20)
            .map(|i| backoff_ms(5, 1000, 60_000, &format!("job{i}")))
            .collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }
}
