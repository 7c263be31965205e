//! How the ports' errors become job outcomes: what is worth another attempt, what waits for a
//! rate-limit window, what is parked as failed.

use crate::engine::JobOutcome;
use crate::ports::{ConnectError, StoreError, XError};

impl From<StoreError> for JobOutcome {
    fn from(e: StoreError) -> Self {
        JobOutcome::retry(e)
    }
}

impl From<ConnectError> for JobOutcome {
    fn from(e: ConnectError) -> Self {
        match e {
            // Configuration problems (wrong instance/flow id, credentials) are retried: messages
            // wait for the operator to fix the setting instead of being parked.
            ConnectError::NotFound(_) | ConnectError::Unauthorized(_) => {
                tracing::error!(error = %e, "Amazon Connect configuration problem; will retry");
                JobOutcome::retry(e)
            }
            ConnectError::Invalid(_) => JobOutcome::Failed {
                reason: e.to_string(),
            },
            // ChatEnded is handled by the pipelines; if it reaches here, another try will
            // open a new chat.
            _ => JobOutcome::retry(e),
        }
    }
}

impl From<XError> for JobOutcome {
    fn from(e: XError) -> Self {
        match e {
            // X's window resets at `reset_at_s`; one second of margin for clock differences.
            XError::RateLimited { reset_at_s } => JobOutcome::Retry {
                not_before_ms: reset_at_s.map(|s| s.saturating_add(1).saturating_mul(1000)),
                reason: e.to_string(),
            },
            XError::Unavailable(_) => JobOutcome::retry(e),
            XError::Unauthorized(_) => {
                tracing::error!(error = %e, "X credentials refused; will retry");
                JobOutcome::retry(e)
            }
            _ => JobOutcome::Failed {
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_rate_limit_waits_for_reset() {
        let o = JobOutcome::from(XError::RateLimited {
            reset_at_s: Some(1_700_000_000),
        });
        assert!(matches!(
            o,
            JobOutcome::Retry {
                not_before_ms: Some(1_700_000_001_000),
                ..
            }
        ));
        assert!(matches!(
            JobOutcome::from(XError::Forbidden("x".into())),
            JobOutcome::Failed { .. }
        ));
        assert!(matches!(
            JobOutcome::from(XError::UsageCapped("x".into())),
            JobOutcome::Failed { .. }
        ));
    }
}
