//! Stream delivery (`XDM_X_DELIVERY=stream`): `serve` holds `GET /2/activity/stream` open instead
//! of needing a public HTTPS URL. Each event line goes through the webhook's accept path.
//!
//! * Silence (not even X's 20-second keep-alive) past `XDM_X_STREAM_SILENCE_MS`, an in-stream
//!   disconnect message, the end of the body or a transport error ⇒ reconnect, with X's back-off
//!   (network: linear to 16 s; HTTP errors: exponential from 5 s; 429, including "too many
//!   connections": exponential from 60 s), jittered.
//! * The reconnect asks for `backfill_minutes` covering the time since the last event received
//!   (up to X's 5 minutes, or `XDM_X_STREAM_BACKFILL_MINUTES`). A longer gap is filled first by
//!   the catch-up (inbound delivery held meanwhile), then the stream is opened with the most
//!   backfill allowed.
//! * An event that cannot be stored is retried until it is (the stream cannot be asked again for
//!   one event); if the process stops first, the catch-up of the next start reads it back.
//! * [`StreamHealth`] tells `/healthz` how the stream is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use xdm_core::jobs::JobQueue;
use xdm_core::ports::{Clock, SystemClock};
use xdm_x::stream::{ReconnectKind, StreamError, reconnect_delay};
use xdm_x::{AppClient, XClient};

use super::catch_up::{self, OVERLAP_MS, Progress};
use super::seen::{SeenLog, newest_per_account};
use crate::wiring::AppBridge;

/// X's longest backfill.
pub const MAX_BACKFILL_MINUTES: u8 = 5;

/// The stream's state, for `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamState {
    Connecting,
    Connected {
        since_ms: i64,
        events: u64,
    },
    Reconnecting {
        attempt: u32,
        error: String,
        since_ms: i64,
    },
    CatchingUp {
        since_ms: i64,
    },
}

/// Shared between the stream task and `/healthz`.
#[derive(Debug)]
pub struct StreamHealth {
    state: Mutex<StreamState>,
}

impl Default for StreamHealth {
    fn default() -> Self {
        Self {
            state: Mutex::new(StreamState::Connecting),
        }
    }
}

impl StreamHealth {
    pub fn state(&self) -> StreamState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(StreamState::Connecting)
    }

    fn set(&self, state: StreamState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    fn count_event(&self) {
        if let Ok(mut s) = self.state.lock()
            && let StreamState::Connected { events, .. } = &mut *s
        {
            *events += 1;
        }
    }
}

/// What the stream task needs.
#[derive(Debug, Clone)]
pub struct StreamTask {
    pub bridge: Arc<AppBridge>,
    pub app: AppClient,
    pub client: XClient,
    pub seen: Arc<SeenLog>,
    pub health: Arc<StreamHealth>,
    pub silence: Duration,
    /// Whether gaps longer than the backfill are read back (`XDM_X_CATCH_UP`).
    pub catch_up: bool,
    /// The most backfill asked for (`XDM_X_STREAM_BACKFILL_MINUTES`, at most X's 5).
    pub max_backfill_minutes: u8,
}

impl StreamTask {
    /// Runs until `shutdown`. `resume_from_ms`: when the last DM was received before this start
    /// (the first connection backfills from there, up to 5 minutes; the start-up catch-up has
    /// covered anything older).
    pub async fn run(self, resume_from_ms: Option<i64>, mut shutdown: watch::Receiver<bool>) {
        // Since when nothing has been received: the gap to cover at the next connection.
        let mut down_since_ms = resume_from_ms;
        let mut attempt: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = SystemClock.now_ms();
            let gap_ms = down_since_ms.map(|t| (now - t).max(0));
            let max_backfill = self.max_backfill_minutes.min(MAX_BACKFILL_MINUTES);
            if let (Some(gap), Some(from)) = (gap_ms, down_since_ms)
                && gap > i64::from(max_backfill) * 60_000
                && self.catch_up
            {
                self.fill_gap(from).await;
            }
            let backfill = gap_ms.map_or(0, backfill_minutes).min(max_backfill);
            tracing::info!(
                backfill_minutes = backfill,
                "connecting to the X activity stream"
            );
            let stream = tokio::select! {
                s = self.app.open_activity_stream(backfill) => s,
                _ = shutdown.changed() => return,
            };
            let error = match stream {
                Ok(mut stream) => {
                    attempt = 0;
                    self.health.set(StreamState::Connected {
                        since_ms: SystemClock.now_ms(),
                        events: 0,
                    });
                    tracing::info!("X activity stream connected");
                    loop {
                        let next = tokio::select! {
                            n = stream.next_event(self.silence) => n,
                            _ = shutdown.changed() => return,
                        };
                        match next {
                            Ok(line) => {
                                self.accept(&line, &mut shutdown).await;
                                self.health.count_event();
                            }
                            Err(e) => {
                                // A silent connection died when it went quiet.
                                let quiet = match e {
                                    StreamError::Silent => self.silence,
                                    _ => Duration::ZERO,
                                };
                                let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(0);
                                down_since_ms = Some(SystemClock.now_ms() - quiet_ms);
                                break e;
                            }
                        }
                    }
                }
                Err(e) => e,
            };
            // Could not connect at all: the gap runs from now on at the latest.
            if down_since_ms.is_none() {
                down_since_ms = Some(SystemClock.now_ms());
            }
            attempt = attempt.saturating_add(1);
            let kind = match &error {
                StreamError::TooManyConnections { .. } | StreamError::RateLimited { .. } => {
                    ReconnectKind::RateLimited
                }
                StreamError::Unauthorized(_) | StreamError::Http { .. } => ReconnectKind::Http,
                _ => ReconnectKind::Network,
            };
            // A clean drop (X restarting, silence) is retried at once the first time.
            let delay = if attempt == 1 && kind == ReconnectKind::Network {
                Duration::ZERO
            } else {
                reconnect_delay(kind, attempt, jitter())
            };
            tracing::warn!(error = %error, attempt, delay_ms = delay.as_millis() as u64, "X activity stream lost; reconnecting");
            self.health.set(StreamState::Reconnecting {
                attempt,
                error: error.to_string(),
                since_ms: SystemClock.now_ms(),
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Stores one event line like a webhook delivery, retrying the store until it works.
    async fn accept(&self, line: &[u8], shutdown: &mut watch::Receiver<bool>) {
        let batch = match xdm_x::payload::parse_delivery(line) {
            Ok(parsed) => parsed.batch,
            Err(e) => {
                tracing::warn!(error = %e, "X activity stream: an event that is not a delivery was skipped");
                return;
            }
        };
        let newest = newest_per_account(&batch);
        let mut pause = Duration::from_millis(100);
        loop {
            match self.bridge.accept_inbound(batch.clone()).await {
                Ok(report) => {
                    if report.stale > 0 {
                        tracing::warn!(
                            stale = report.stale,
                            "X activity stream: DMs older than XDM_X_MAX_EVENT_AGE_HOURS acknowledged, not delivered"
                        );
                    }
                    self.seen.note(&newest);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store an event of the X activity stream; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Reads back the DMs of every known account since `from_ms`, delivery held meanwhile.
    async fn fill_gap(&self, from_ms: i64) {
        self.health
            .set(StreamState::CatchingUp { since_ms: from_ms });
        let _hold = self.bridge.hold(JobQueue::Inbound);
        if let Err(e) = self.seen.flush(SystemClock.now_ms()).await {
            tracing::warn!(error = %e, "catch-up: cannot record the newest DM seen");
        }
        let accounts = match self.seen.accounts().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "catch-up: cannot read the accounts seen");
                return;
            }
        };
        for (business, seen_ms) in accounts {
            let since = from_ms.min(seen_ms) - OVERLAP_MS;
            let mut log = |p: Progress| log_progress(&p);
            match catch_up::catch_up(&self.bridge, &self.client, &business, since, &mut log).await {
                Ok(report) => tracing::info!(
                    business = %business,
                    accepted = report.accepted,
                    duplicates = report.duplicates,
                    "caught up after a stream gap"
                ),
                Err(e) => tracing::warn!(error = %e, "catch-up after a stream gap failed"),
            }
        }
    }
}

/// Minutes of backfill that cover `gap_ms` (rounded up, plus one for clock differences).
pub fn backfill_minutes(gap_ms: i64) -> u8 {
    if gap_ms <= 0 {
        return 1;
    }
    let minutes = gap_ms.div_euclid(60_000) + 2;
    u8::try_from(minutes.min(i64::from(MAX_BACKFILL_MINUTES))).unwrap_or(MAX_BACKFILL_MINUTES)
}

/// A fraction in [0, 1) for the reconnect jitter.
fn jitter() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 256.0
}

/// Catch-up progress in the log.
pub fn log_progress(p: &Progress) {
    match p {
        Progress::Page {
            business,
            pages,
            read,
            ..
        } => tracing::info!(business = %business, pages, read, "catch-up: reading DMs back"),
        Progress::Waiting { business, until_s } => {
            tracing::info!(business = %business, until_s, "catch-up: X rate limit, waiting")
        }
        Progress::Accepted { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_covers_the_gap_up_to_five_minutes() {
        assert_eq!(backfill_minutes(0), 1);
        assert_eq!(backfill_minutes(5_000), 2);
        assert_eq!(backfill_minutes(61_000), 3);
        assert_eq!(backfill_minutes(4 * 60_000), 5);
        assert_eq!(backfill_minutes(60 * 60_000), 5);
    }
}
