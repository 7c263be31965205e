//! Whether a verified SNS message is recent: its signed `Timestamp` (when SNS published it) no
//! older than the age bound and not ahead of this machine's clock by more than the clock-skew
//! allowance.
//!
//! SNS retries an HTTP/S delivery for at most an hour (its delivery policies cannot exceed 3,600
//! seconds), so a genuine message is never older than that; the bridge keeps the record of every
//! accepted chat item for 7 days (`xdm_core::jobs::JOB_RETENTION_MS`). A message that passes
//! this check is therefore young enough for its first acceptance to be on record, and a replay
//! of it is dropped as a duplicate; a captured message replayed later is refused here
//! (docs/delivery.md, Replays). The check runs after the signature, which covers `Timestamp`.

use std::time::Duration;

use crate::config::settings;
use crate::participant_client::iso8601_to_ms;

/// Default age bound (`XDM_SNS_MAX_AGE_SECS`): SNS's longest retry time for HTTP/S deliveries.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// How far SNS's clock and this machine's may disagree: a message may be this much older than
/// the bound, or this much ahead of now.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a correctly signed message is refused for its time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreshnessError {
    #[error("SNS message Timestamp {0:?} is not an ISO 8601 time")]
    Unreadable(String),
    #[error(
        "SNS message published at {timestamp} is {age_secs} s old, more than {} ({max_age_secs} s) allows: a replayed message, or a clock far off",
        settings::SNS_MAX_AGE
    )]
    Stale {
        timestamp: String,
        age_secs: i64,
        max_age_secs: u64,
    },
    #[error(
        "SNS message published at {timestamp} is {ahead_secs} s ahead of this machine's clock (at most {} s allowed): check the clock",
        CLOCK_SKEW.as_secs()
    )]
    Ahead { timestamp: String, ahead_secs: i64 },
}

/// Checks `timestamp` (`2026-04-01T22:20:13.604Z`) against `now_ms` (Unix milliseconds): at most
/// `max_age` + [`CLOCK_SKEW`] old, at most [`CLOCK_SKEW`] ahead.
pub fn check_freshness(
    timestamp: &str,
    now_ms: i64,
    max_age: Duration,
) -> Result<(), FreshnessError> {
    let published_ms =
        iso8601_to_ms(timestamp).ok_or_else(|| FreshnessError::Unreadable(timestamp.to_owned()))?;
    let age_ms = now_ms.saturating_sub(published_ms);
    let skew_ms = millis(CLOCK_SKEW);
    if age_ms > millis(max_age).saturating_add(skew_ms) {
        return Err(FreshnessError::Stale {
            timestamp: timestamp.to_owned(),
            age_secs: age_ms / 1000,
            max_age_secs: max_age.as_secs(),
        });
    }
    if -age_ms > skew_ms {
        return Err(FreshnessError::Ahead {
            timestamp: timestamp.to_owned(),
            ahead_secs: -age_ms / 1000,
        });
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PUBLISHED: &str = "2026-04-01T22:20:13.604Z";
    const PUBLISHED_MS: i64 = 1_775_082_013_604;
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn recent_messages_pass_old_and_future_ones_do_not() {
        let skew = millis(CLOCK_SKEW);
        for now in [
            PUBLISHED_MS,
            PUBLISHED_MS + 3_600_000 + skew,
            PUBLISHED_MS - skew,
        ] {
            assert_eq!(check_freshness(PUBLISHED, now, HOUR), Ok(()), "{now}");
        }
        let err = check_freshness(PUBLISHED, PUBLISHED_MS + 3_600_000 + skew + 1, HOUR);
        assert!(
            matches!(
                err,
                Err(FreshnessError::Stale {
                    age_secs: 3900,
                    max_age_secs: 3600,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("XDM_SNS_MAX_AGE_SECS"),
            "the error names the setting"
        );
        // Eight days later: long past the bound (and the dedup records).
        assert!(matches!(
            check_freshness(PUBLISHED, PUBLISHED_MS + 8 * 24 * 3_600_000, HOUR),
            Err(FreshnessError::Stale { .. })
        ));
        assert_eq!(
            check_freshness(PUBLISHED, PUBLISHED_MS - skew - 1_000, HOUR),
            Err(FreshnessError::Ahead {
                timestamp: PUBLISHED.into(),
                ahead_secs: 301
            })
        );
        assert_eq!(
            check_freshness("yesterday", PUBLISHED_MS, HOUR),
            Err(FreshnessError::Unreadable("yesterday".into()))
        );
    }
}
