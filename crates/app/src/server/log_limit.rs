//! [`LogLimit`]: at most so many log lines per reason and minute for refused requests, then one
//! line saying how many more were left out.
//!
//! A request refused before it is authenticated (bad or missing signature, a foreign topic, a
//! body that is not what the platform sends, a replayed message) can be sent by anyone, as
//! often as they like; a log line for each would let them fill the disk and bury what matters.
//! Every refusal is still counted in the metrics; only the lines are limited. The window is
//! fixed per reason: it starts with the first refusal of that reason, the next ones are logged
//! until the limit, the rest counted; when the window ends — at the next refusal of that reason,
//! or by a timer if none comes — one summary line gives the count.
//!
//! Hand-written: a dozen lines of counting per reason; the rate limiters on crates.io limit
//! calls, not lines with a summary.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Lines per reason and window.
pub(crate) const LINES_PER_WINDOW: u32 = 10;
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The process's limiter for refused requests (every listener, every handler).
pub(crate) static REFUSALS: LazyLock<LogLimit> =
    LazyLock::new(|| LogLimit::new(LINES_PER_WINDOW, WINDOW));

/// Limits log lines per reason; see the module's docs.
#[derive(Debug)]
pub(crate) struct LogLimit {
    per_window: u32,
    window: Duration,
    windows: Mutex<HashMap<&'static str, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Log this refusal.
    pub(crate) log: bool,
    /// Log first that this many refusals of the reason were left out in its last window.
    pub(crate) summary: Option<u64>,
    /// The first refusal left out of a window: a summary is due when the window ends, at this
    /// time (if no later refusal brings it first).
    pub(crate) flush_at: Option<Instant>,
}

impl LogLimit {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// One refusal of `reason` at `now`.
    pub(crate) fn admit_at(&self, reason: &'static str, now: Instant) -> Admission {
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock: log rather than lose the line.
            return Admission {
                log: true,
                summary: None,
                flush_at: None,
            };
        };
        let w = windows.entry(reason).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut summary = None;
        if now.saturating_duration_since(w.started) >= self.window {
            summary = (w.suppressed > 0).then_some(w.suppressed);
            *w = Window {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < self.per_window {
            w.logged += 1;
            return Admission {
                log: true,
                summary,
                flush_at: None,
            };
        }
        w.suppressed += 1;
        Admission {
            log: false,
            summary,
            flush_at: (w.suppressed == 1).then(|| w.started + self.window),
        }
    }

    /// The count left out of the window of `reason` that started at `started`, once: `None` if
    /// that window is gone (a later refusal summed it up) or nothing was left out.
    pub(crate) fn take_summary(&self, reason: &'static str, started: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().ok()?;
        let w = windows.get_mut(reason)?;
        if w.started != started || w.suppressed == 0 {
            return None;
        }
        Some(std::mem::take(&mut w.suppressed))
    }

    /// One refusal of `reason` now: whether to log it. Logs the summary of the reason's last
    /// window when one is due, and arranges for the current window's when it ends.
    pub(crate) fn admit(&'static self, reason: &'static str) -> bool {
        let admission = self.admit_at(reason, Instant::now());
        if let Some(n) = admission.summary {
            log_summary(reason, n, self.window);
        }
        if let Some(at) = admission.flush_at
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let started = at - self.window;
            runtime.spawn(async move {
                tokio::time::sleep_until(at).await;
                if let Some(n) = self.take_summary(reason, started) {
                    log_summary(reason, n, self.window);
                }
            });
        }
        admission.log
    }
}

fn log_summary(reason: &'static str, suppressed: u64, window: Duration) {
    tracing::warn!(
        reason,
        suppressed,
        "{suppressed} more rejected requests suppressed in the last {} s",
        window.as_secs()
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ten_lines_per_reason_and_minute_then_one_summary() {
        let limit = LogLimit::new(10, WINDOW);
        let t0 = Instant::now();
        let admitted: Vec<Admission> = (0..100)
            .map(|i| limit.admit_at("signature", t0 + Duration::from_millis(i * 100)))
            .collect();
        assert_eq!(admitted.iter().filter(|a| a.log).count(), 10);
        assert!(admitted[..10].iter().all(|a| a.log));
        assert_eq!(
            admitted[10].flush_at,
            Some(t0 + WINDOW),
            "the first one left out schedules the summary"
        );
        assert!(admitted[11..].iter().all(|a| a.flush_at.is_none()));
        assert!(admitted.iter().all(|a| a.summary.is_none()));
        // Another reason has its own window.
        assert!(
            limit
                .admit_at("foreign_topic", t0 + Duration::from_secs(5))
                .log
        );

        // The next minute: its first refusal carries the summary of the last, and is logged.
        let next = limit.admit_at("signature", t0 + WINDOW);
        assert_eq!(next.summary, Some(90));
        assert!(next.log);
        // The old window's timer finds nothing left to say.
        assert_eq!(limit.take_summary("signature", t0), None);
    }

    #[test]
    fn the_timer_sums_up_a_window_no_later_refusal_closes() {
        let limit = LogLimit::new(2, WINDOW);
        let t0 = Instant::now();
        for i in 0..5 {
            limit.admit_at("stale", t0 + Duration::from_secs(i));
        }
        assert_eq!(limit.take_summary("stale", t0), Some(3));
        assert_eq!(limit.take_summary("stale", t0), None, "once");
        // A refusal after that window does not repeat the count.
        assert_eq!(limit.admit_at("stale", t0 + WINDOW).summary, None);
    }

    /// Through the process-wide entry point, on tokio's paused clock: the summary line is
    /// written by the timer a minute after the window opened.
    #[tokio::test(start_paused = true)]
    async fn the_summary_line_is_logged_when_the_window_ends() {
        let limit: &'static LogLimit = Box::leak(Box::new(LogLimit::new(3, WINDOW)));
        let lines = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = std::sync::Arc::clone(&lines);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || CaptureLine(std::sync::Arc::clone(&sink)))
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let logged = (0..50).filter(|_| limit.admit("signature")).count();
        assert_eq!(logged, 3);
        assert!(lines.lock().unwrap().is_empty(), "nothing summed up yet");
        tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
        let lines = lines.lock().unwrap().join("");
        assert!(
            lines.contains("47 more rejected requests suppressed in the last 60 s"),
            "{lines}"
        );
        assert_eq!(lines.lines().count(), 1, "{lines}");
    }

    struct CaptureLine(std::sync::Arc<Mutex<Vec<String>>>);

    impl std::io::Write for CaptureLine {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
