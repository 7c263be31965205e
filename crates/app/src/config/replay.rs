//! The replay defence's settings (docs/delivery.md, Replays): how old a DM X pushes
//! (`XDM_X_MAX_EVENT_AGE_HOURS`) and an SNS message (`XDM_SNS_MAX_AGE_SECS`) may be, and
//! whether SNS `SignatureVersion` 1 is refused (`XDM_SNS_REQUIRE_SIGNATURE_V2`).
//!
//! Both ages stay inside the time accepted events are remembered for deduplication
//! (`xdm_core::jobs::JOB_RETENTION_MS`, 7 days) with at least a day to spare, so that anything
//! young enough to be accepted still finds the record of its first acceptance: checked here,
//! each error naming its setting, and again by `BridgeConfig::check`.

use xdm_amazon_connect::sns::CLOCK_SKEW;
use xdm_core::BridgeConfig;
use xdm_core::jobs::JOB_RETENTION_MS;

use super::error::{ConfigError, invalid};
use super::parse::{parse_num, parse_switch};

const HOUR_MS: i64 = 3600 * 1000;
/// The longest X age bound: a day shorter than the job retention (6 days).
const MAX_X_EVENT_AGE_HOURS: u64 = (JOB_RETENTION_MS / HOUR_MS - 24) as u64;
/// Default X age bound in hours (`xdm_core::DEFAULT_MAX_EVENT_AGE_MS`).
pub(super) const DEFAULT_X_MAX_EVENT_AGE_HOURS: u64 =
    (xdm_core::DEFAULT_MAX_EVENT_AGE_MS / HOUR_MS) as u64;
/// SNS retries for at most an hour: more than a day is never needed.
const SNS_MAX_AGE_RANGE_SECS: std::ops::RangeInclusive<u64> = 60..=86_400;

/// What the replay defence's settings decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplaySettings {
    /// X: DMs pushed older than this (hours) are acknowledged, not delivered.
    pub(super) x_max_event_age_hours: u64,
    /// SNS: messages published longer ago than this (seconds, plus the clock-skew allowance)
    /// are refused; chat items arriving that long after their chat ended are not delivered.
    pub(super) sns_max_age_secs: u64,
    pub(super) sns_require_signature_v2: bool,
}

/// The file's values (`x.max_event_age_hours`, `sns.max_age_secs`, `sns.require_signature_v2`)
/// under the environment's, checked.
pub(super) fn replay_settings(
    x_max_event_age_hours: Option<u64>,
    sns_max_age_secs: Option<u64>,
    sns_require_signature_v2: Option<bool>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ReplaySettings, ConfigError> {
    const X_AGE: &str = "XDM_X_MAX_EVENT_AGE_HOURS";
    const SNS_AGE: &str = "XDM_SNS_MAX_AGE_SECS";
    const SNS_V2: &str = "XDM_SNS_REQUIRE_SIGNATURE_V2";
    let hours = match env(X_AGE) {
        Some(v) => parse_num(X_AGE, &v)?,
        None => x_max_event_age_hours.unwrap_or(DEFAULT_X_MAX_EVENT_AGE_HOURS),
    };
    if !(1..=MAX_X_EVENT_AGE_HOURS).contains(&hours) {
        return Err(invalid(
            X_AGE,
            format!(
                "{hours}: use 1 to {MAX_X_EVENT_AGE_HOURS} hours (accepted DMs are remembered 7 days; the bound must stay a day inside that)"
            ),
        ));
    }
    let secs = match env(SNS_AGE) {
        Some(v) => parse_num(SNS_AGE, &v)?,
        None => sns_max_age_secs.unwrap_or(xdm_amazon_connect::sns::DEFAULT_MAX_AGE.as_secs()),
    };
    if !SNS_MAX_AGE_RANGE_SECS.contains(&secs) {
        return Err(invalid(
            SNS_AGE,
            format!("{secs}: use 60 to 86400 seconds (SNS retries for at most 3600)"),
        ));
    }
    let require_v2 = match env(SNS_V2) {
        Some(v) => parse_switch(SNS_V2, &v)?,
        None => sns_require_signature_v2.unwrap_or(false),
    };
    Ok(ReplaySettings {
        x_max_event_age_hours: hours,
        sns_max_age_secs: secs,
        sns_require_signature_v2: require_v2,
    })
}

impl ReplaySettings {
    /// Sets the core's replay bounds from these settings and checks them against the job
    /// retention (`BridgeConfig::check`).
    pub(super) fn apply(&self, delivery: &mut BridgeConfig) -> Result<(), ConfigError> {
        let skew_ms = i64::try_from(CLOCK_SKEW.as_millis()).unwrap_or(i64::MAX);
        delivery.max_event_age_ms = i64::try_from(self.x_max_event_age_hours)
            .unwrap_or(i64::MAX)
            .saturating_mul(HOUR_MS);
        delivery.ended_chat_window_ms = i64::try_from(self.sns_max_age_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000)
            .saturating_add(skew_ms);
        delivery.check().map_err(|e| match e {
            xdm_core::BridgeConfigError::ReplayBound { field, .. } => invalid(
                if field == "max_event_age_ms" {
                    "XDM_X_MAX_EVENT_AGE_HOURS"
                } else {
                    "XDM_SNS_MAX_AGE_SECS"
                },
                e.to_string(),
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_fit_inside_the_job_retention() {
        let r = replay_settings(None, None, None, &env_of(&[])).unwrap();
        assert_eq!(
            r,
            ReplaySettings {
                x_max_event_age_hours: 48,
                sns_max_age_secs: 3600,
                sns_require_signature_v2: false
            }
        );
        let mut d = BridgeConfig::default();
        r.apply(&mut d).unwrap();
        assert_eq!(d.max_event_age_ms, 48 * HOUR_MS);
        assert_eq!(d.ended_chat_window_ms, 65 * 60 * 1000);
        assert_eq!(d, BridgeConfig::default(), "the core's defaults agree");
        assert!(d.max_event_age_ms + 24 * HOUR_MS <= JOB_RETENTION_MS);
    }

    #[test]
    fn the_environment_wins_and_bounds_are_checked_naming_the_setting() {
        let r = replay_settings(
            Some(24),
            Some(600),
            Some(true),
            &env_of(&[
                ("XDM_X_MAX_EVENT_AGE_HOURS", "72"),
                ("XDM_SNS_REQUIRE_SIGNATURE_V2", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                r.x_max_event_age_hours,
                r.sns_max_age_secs,
                r.sns_require_signature_v2
            ),
            (72, 600, false)
        );
        for (k, v) in [
            ("XDM_X_MAX_EVENT_AGE_HOURS", "0"),
            ("XDM_X_MAX_EVENT_AGE_HOURS", "145"),
            ("XDM_X_MAX_EVENT_AGE_HOURS", "a week"),
            ("XDM_SNS_MAX_AGE_SECS", "59"),
            ("XDM_SNS_MAX_AGE_SECS", "604800"),
            ("XDM_SNS_REQUIRE_SIGNATURE_V2", "maybe"),
        ] {
            let err = replay_settings(None, None, None, &env_of(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("{k} is invalid")),
                "{k}={v}: {err}"
            );
        }
        // Through the whole configuration, from the file.
        let config = super::super::Config::from_toml(
            "[x]\nmax_event_age_hours = 24\n[sns]\nmax_age_secs = 600\nrequire_signature_v2 = true\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(config.delivery.max_event_age_ms, 24 * HOUR_MS);
        assert_eq!(config.delivery.ended_chat_window_ms, 900_000);
        assert_eq!(
            (config.sns.max_age_secs, config.sns.require_signature_v2),
            (600, true)
        );
        // The longest accepted X bound still leaves a day of the retention.
        let r = replay_settings(Some(144), None, None, &env_of(&[])).unwrap();
        r.apply(&mut BridgeConfig::default()).unwrap();
    }
}
