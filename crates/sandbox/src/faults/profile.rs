//! The settings of probabilistic faults, throttling bursts and the down switch, and the PRNG that
//! draws them.

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::faults::FaultOp;

/// Probabilistic faults of one operation: applied to every call of it until changed or cleared.
///
/// Per call, in this order: wait `latency_ms` plus a uniform `0..=jitter_ms`; then one draw `r` in
/// `[0, 1)`: `r < error_rate` answers `error`; `r < error_rate + throttle_rate` answers the
/// platform's throttling error (as a [`ThrottleBurst`] does; X announces a reset one second after
/// the call); `r < error_rate + throttle_rate + drop_rate` closes the connection without an answer
/// (before or after the call takes effect, per `drop_mode`); otherwise the call proceeds normally. Draws come from a PRNG per operation seeded with `seed` (or
/// `SandboxConfig::fault_seed`) mixed with the operation, so a run with the same calls per
/// operation draws the same faults.
///
/// On [`FaultOp::MediaProcessing`] (not a call) only `error_rate` applies: the processing of that
/// many GIFs / videos ends `failed` (with `error.message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultProfile {
    /// Share of calls answered with `error`, 0.0–1.0.
    pub error_rate: f64,
    /// The error answer; every part defaults to the platform's usual transient error.
    pub error: FaultError,
    /// Share of calls answered with the platform's throttling error, 0.0–1.0 (Connect: 429
    /// `ThrottlingException`; X: 429 with `x-rate-limit-*` headers, reset one second later; S3:
    /// 503 `SlowDown`).
    pub throttle_rate: f64,
    /// Fixed delay of every call, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Share of calls whose connection is closed without an answer, 0.0–1.0
    /// (`error_rate + throttle_rate + drop_rate` is capped at 1).
    pub drop_rate: f64,
    pub drop_mode: DropMode,
    /// PRNG seed of this profile; default: `SandboxConfig::fault_seed`.
    pub seed: Option<u64>,
}

impl FaultProfile {
    /// `rate` of the calls fail with the platform's default transient error.
    pub fn errors(rate: f64) -> Self {
        Self {
            error_rate: rate,
            ..Self::default()
        }
    }

    /// `rate` of the calls lose their connection (`mode`: before or after taking effect).
    pub fn drops(rate: f64, mode: DropMode) -> Self {
        Self {
            drop_rate: rate,
            drop_mode: mode,
            ..Self::default()
        }
    }

    /// Every call waits `fixed_ms` plus a uniform `0..=jitter_ms`.
    pub fn latency(fixed_ms: u64, jitter_ms: u64) -> Self {
        Self {
            latency_ms: fixed_ms,
            jitter_ms,
            ..Self::default()
        }
    }

    pub fn with_error_rate(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }

    /// `rate` of the calls are throttled (the platform's throttling answer).
    pub fn with_throttle_rate(mut self, rate: f64) -> Self {
        self.throttle_rate = rate;
        self
    }

    /// The error answer (status and code; `None` = the platform's default).
    pub fn with_error(mut self, error: FaultError) -> Self {
        self.error = error;
        self
    }

    pub fn with_latency(mut self, fixed_ms: u64, jitter_ms: u64) -> Self {
        self.latency_ms = fixed_ms;
        self.jitter_ms = jitter_ms;
        self
    }

    pub fn with_drops(mut self, rate: f64, mode: DropMode) -> Self {
        self.drop_rate = rate;
        self.drop_mode = mode;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A profile that changes nothing (setting it removes the operation's profile).
    pub fn is_noop(&self) -> bool {
        self.error_rate <= 0.0
            && self.throttle_rate <= 0.0
            && self.drop_rate <= 0.0
            && self.latency_ms == 0
            && self.jitter_ms == 0
    }

    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SandboxError::invalid(
                    "fault profile",
                    format!("{name} must be within 0.0..=1.0, not {rate}"),
                ));
            }
        }
        if let Some(status) = self.error.status
            && !(100..=599).contains(&status)
        {
            return Err(SandboxError::invalid(
                "fault profile",
                format!("error.status {status} is not an HTTP status"),
            ));
        }
        Ok(())
    }
}

/// The error a profile answers. `status: None` = the platform's usual transient error: Connect
/// `503 ServiceUnavailableException`, participant service `500 InternalServerException`, S3 `500
/// InternalError`, X `503` problem (`about:blank`, "Service Unavailable"), public media `503`.
/// `code: None` = the platform's code for the status (as for queued [`crate::Fault`]s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl FaultError {
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    pub fn error(status: u16, code: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            code: Some(code.into()),
            ..Self::default()
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// When a dropped call's connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DropMode {
    /// Before the operation runs: it has no effect.
    #[default]
    #[serde(alias = "before")]
    Before,
    /// After the operation ran (a message is in the transcript, a DM is recorded): only the answer
    /// is lost. What a client's retry with the same `ClientToken` must cope with.
    #[serde(alias = "after")]
    After,
}

/// How a platform switched down answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DownMode {
    /// 503: Connect `ServiceUnavailableException`, S3 `ServiceUnavailable`, X's 503 problem.
    #[default]
    #[serde(alias = "unavailable")]
    Unavailable,
    /// The connection is closed without an answer (the call has no effect).
    #[serde(alias = "drop")]
    Drop,
}

/// A throttling burst: the next `count` calls are throttled. X: 429, X's "Too Many Requests"
/// problem, `x-rate-limit-limit: limit`, `x-rate-limit-remaining: 0`, `x-rate-limit-reset` = the
/// burst's start + `reset_after_secs` (Unix seconds; for a call answered after that time, the
/// call's time + `reset_after_secs`). Connect: 429 `ThrottlingException` "Rate exceeded"; S3: 503
/// `SlowDown`; public media: 429.
///
/// With `hold_window`, calls after the `count` throttled ones keep being throttled until the reset
/// time, like an exhausted X window (`count: 0` then throttles exactly until the reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleBurst {
    pub count: u32,
    pub reset_after_secs: u64,
    pub hold_window: bool,
    /// X's `x-rate-limit-limit`; default `XConfig::rate_limit`'s `requests`, else 15.
    pub limit: Option<u32>,
}

impl ThrottleBurst {
    pub fn new(count: u32, reset_after_secs: u64) -> Self {
        Self {
            count,
            reset_after_secs,
            ..Self::default()
        }
    }

    /// Keep throttling after the burst until the reset time.
    pub fn holding_window(mut self) -> Self {
        self.hold_window = true;
        self
    }

    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A burst still in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleBurstView {
    pub op: FaultOp,
    /// Throttled calls left in the burst.
    pub remaining: u32,
    /// The announced reset (Unix seconds).
    pub reset_at: i64,
    pub hold_window: bool,
    pub limit: Option<u32>,
}

/// SplitMix64: tiny, fast, and good enough to draw fault decisions reproducibly.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    #[cfg(test)]
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The seed of `op`'s PRNG: `seed` mixed with the operation, so operations sharing a seed still
    /// draw different sequences.
    pub(crate) fn for_op(seed: u64, op: FaultOp) -> Self {
        let mut mixer = Self(seed ^ (op as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        Self(mixer.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// Uniform in `0..=max` (the modulo bias is irrelevant at millisecond jitters).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn prng_is_reproducible_uniform_and_per_op() {
        let mut a = SplitMix64::for_op(7, FaultOp::SendMessage);
        let mut b = SplitMix64::for_op(7, FaultOp::SendMessage);
        let mut c = SplitMix64::for_op(7, FaultOp::CreateDm);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut r = SplitMix64::new(1);
        let mean = (0..10_000).map(|_| r.unit()).sum::<f64>() / 10_000.0;
        assert!((0.48..0.52).contains(&mean), "{mean}");
        assert!((0..1000).map(|_| r.up_to(3)).all(|v| v <= 3));
        assert!((0..1000).all(|_| r.up_to(0) == 0));
    }

    #[test]
    fn profiles_validate_rates_and_status() {
        assert!(FaultProfile::errors(0.2).validate().is_ok());
        assert!(FaultProfile::errors(1.5).validate().is_err());
        assert!(
            FaultProfile::drops(-0.1, DropMode::After)
                .validate()
                .is_err()
        );
        assert!(FaultProfile::errors(f64::NAN).validate().is_err());
        assert!(
            FaultProfile::default()
                .with_throttle_rate(1.1)
                .validate()
                .is_err()
        );
        assert!(!FaultProfile::default().with_throttle_rate(0.1).is_noop());
        let bad = FaultProfile::errors(0.1).with_error(FaultError::status(42));
        assert!(bad.validate().is_err());
        assert!(FaultProfile::default().is_noop());
        assert!(!FaultProfile::latency(5, 0).is_noop());
        let json: FaultProfile =
            serde_json::from_str(r#"{"error_rate":0.5,"drop_mode":"after"}"#).unwrap();
        assert_eq!(json.drop_mode, DropMode::After);
    }
}
