//! Latency recording (HdrHistogram, microsecond resolution) and its summary.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Up to one hour, three significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

/// A thread-safe latency histogram.
#[derive(Debug)]
pub struct Recorder {
    hist: Mutex<Histogram<u64>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // Valid bounds (1 ≤ low, high ≥ 2 × low, 3 significant digits): this cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|e| panic!("HdrHistogram bounds: {e}"));
        Self {
            hist: Mutex::new(hist),
        }
    }

    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        self.lock().saturating_record(micros);
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.hist
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// `850 µs`, `12.3 ms`, `4.56 s`.
pub fn fmt_micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        #[allow(clippy::cast_precision_loss)]
        let ms = us as f64 / 1_000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else {
        #[allow(clippy::cast_precision_loss)]
        let s = us as f64 / 1_000_000.0;
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let r = Recorder::new();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary();
        assert_eq!(s.count, 100);
        assert!((49_900..=50_100).contains(&s.p50_us), "{s:?}");
        assert!((98_900..=99_100).contains(&s.p99_us), "{s:?}");
        assert!((99_900..=100_100).contains(&s.max_us), "{s:?}");
        assert_eq!(fmt_micros(850), "850 µs");
        assert_eq!(fmt_micros(1_234), "1.23 ms");
        assert_eq!(fmt_micros(4_560_000), "4.56 s");
    }
}
