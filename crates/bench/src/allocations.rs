//! The bridge's heap allocations, read from its admin `/metrics`: a bridge built with
//! `--features count-allocations` counts every allocation and the bytes asked for
//! (`xdm_allocations_total`, `xdm_allocated_bytes_total`, crates/app/src/monitoring/allocations.rs);
//! two readings, at the start and the end of the measured window, give allocations per message.
//! A bridge built without the feature has no such counters: the figures are then "n/a" with the
//! reason, never a zero.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;

use crate::options::Admin;

/// The counter of allocations (`alloc`, `alloc_zeroed` and `realloc` count one each).
pub const ALLOCATIONS: &str = "xdm_allocations_total";
/// The counter of the bytes they asked for.
pub const ALLOCATED_BYTES: &str = "xdm_allocated_bytes_total";

/// Why there are no figures, when the bridge's `/metrics` has no allocation counters.
pub const NOT_BUILT: &str = "n/a (build the bridge with --features count-allocations)";

/// The bridge's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Allocated {
    pub allocations: u64,
    pub bytes: u64,
}

/// A reading of the counters, or why there is none (`n/a (…)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Counted(Allocated),
    NotAvailable(String),
}

impl Reading {
    /// Reads the bridge's `/metrics` (no admin listener known: not available).
    pub async fn of(admin: Option<&Admin>) -> Self {
        let Some(admin) = admin else {
            return Reading::NotAvailable(
                "n/a (the bridge's admin listener is not known)".to_owned(),
            );
        };
        match scrape(admin).await {
            Ok(text) => parse(&text).map_or_else(
                || Reading::NotAvailable(NOT_BUILT.to_owned()),
                Reading::Counted,
            ),
            Err(e) => {
                Reading::NotAvailable(format!("n/a (cannot read the bridge's /metrics: {e:#})"))
            }
        }
    }
}

async fn scrape(admin: &Admin) -> anyhow::Result<String> {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    let http = match HTTP.get() {
        Some(c) => c,
        None => {
            let c = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?;
            HTTP.get_or_init(|| c)
        }
    };
    let answer = http
        .get(format!("{}/metrics", admin.url))
        .bearer_auth(&admin.token)
        .send()
        .await?
        .error_for_status()?;
    Ok(answer.text().await?)
}

/// The two counters in Prometheus text; `None` unless both are there (a bridge built without
/// the feature).
pub fn parse(text: &str) -> Option<Allocated> {
    Some(Allocated {
        allocations: sample(text, ALLOCATIONS)?,
        bytes: sample(text, ALLOCATED_BYTES)?,
    })
}

/// The value of the unlabelled sample `name` (`name 123`, or `name 1.5e6`).
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        // The value, then an optional timestamp.
        let value = value.split_whitespace().next()?;
        value.parse::<u64>().ok().or_else(|| {
            let f = value.parse::<f64>().ok()?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            (f.is_finite() && f >= 0.0).then_some(f as u64)
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WITH: &str = "\
# HELP xdm_allocations_total Heap allocations since the process started.
# TYPE xdm_allocations_total counter
xdm_allocations_total 1234567
# HELP xdm_allocated_bytes_total Bytes asked for by those allocations.
# TYPE xdm_allocated_bytes_total counter
xdm_allocated_bytes_total 8.5e7
xdm_allocations_total_other 5
# TYPE xdm_job_attempts_total counter
xdm_job_attempts_total{queue=\"inbound\",outcome=\"done\"} 42
";

    #[test]
    fn reads_both_counters() {
        assert_eq!(
            parse(WITH),
            Some(Allocated {
                allocations: 1_234_567,
                bytes: 85_000_000
            })
        );
    }

    #[test]
    fn a_bridge_without_the_feature_has_no_figures_not_zeros() {
        let without = "# TYPE xdm_job_attempts_total counter\nxdm_job_attempts_total{queue=\"inbound\",outcome=\"done\"} 42\n";
        assert_eq!(parse(without), None);
        assert_eq!(parse(""), None);
        // One counter alone is not a reading either.
        assert_eq!(parse("xdm_allocations_total 12\n"), None);
        // A name that only starts like it is another metric.
        assert_eq!(
            parse("xdm_allocations_total_x 1\nxdm_allocated_bytes_total 2\n"),
            None
        );
    }

    #[test]
    fn ignores_a_timestamp_and_refuses_garbage() {
        assert_eq!(
            parse("xdm_allocations_total 10 1700000000000\nxdm_allocated_bytes_total 20\n"),
            Some(Allocated {
                allocations: 10,
                bytes: 20
            })
        );
        assert_eq!(
            parse("xdm_allocations_total NaN\nxdm_allocated_bytes_total 20\n"),
            None
        );
    }
}
