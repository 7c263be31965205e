//! The gauges read from the store rather than counted as things happen: the backlog of each job
//! queue (pending, processing and failed jobs; the oldest open job's age) and the OAuth 2.0
//! tokens of the business accounts (how many need a new login; the soonest expiry). `serve`
//! samples them every [`SAMPLE_EVERY`] (and runs the Prometheus recorder's upkeep, which drains
//! the histograms' samples even when nobody scrapes); on Lambda the sweep samples them once a
//! minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use xdm_core::jobs::JobQueue;
use xdm_core::metric_names::{
    ACCOUNTS_NEEDING_LOGIN, BACKLOG_COUNT_LIMIT, BACKLOG_JOBS, BACKLOG_OLDEST_AGE, TOKEN_EXPIRY,
};
use xdm_core::ports::{Clock, Store, SystemClock};

use crate::server::AppState;

/// How often `serve` samples the gauges.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// Reads the backlog and the token state once and sets the gauges. A store that does not
/// answer leaves the gauges as they were (the dispatchers report it).
pub async fn sample(state: &AppState) {
    let now = SystemClock.now_ms();
    let store = state.bridge.store();
    for queue in JobQueue::ALL {
        match store.backlog(queue, BACKLOG_COUNT_LIMIT).await {
            Ok(b) => {
                let q = queue.as_str();
                for (s, n) in [
                    ("pending", b.pending),
                    ("processing", b.processing),
                    ("failed", b.failed),
                ] {
                    metrics::gauge!(BACKLOG_JOBS, "queue" => q, "state" => s).set(n as f64);
                }
                let age_ms = b
                    .oldest_open_accepted_ms
                    .map_or(0, |at| now.saturating_sub(at).max(0));
                metrics::gauge!(BACKLOG_OLDEST_AGE, "queue" => q).set(age_ms as f64 / 1000.0);
            }
            Err(e) => {
                tracing::debug!(queue = queue.as_str(), error = %e, "cannot sample the backlog");
            }
        }
    }
    if let Some(tokens) = &state.tokens {
        match tokens.status().await {
            Ok(accounts) => {
                let needing_login = accounts.iter().filter(|a| a.needs_login.is_some()).count();
                metrics::gauge!(ACCOUNTS_NEEDING_LOGIN).set(needing_login as f64);
                if let Some(soonest) = accounts
                    .iter()
                    .filter(|a| a.needs_login.is_none())
                    .map(|a| a.expires_at_ms)
                    .min()
                {
                    metrics::gauge!(TOKEN_EXPIRY).set((soonest - now) as f64 / 1000.0);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot sample the OAuth 2.0 tokens");
            }
        }
    }
}

/// `serve`'s sampler: every [`SAMPLE_EVERY`] until `shutdown` turns true.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        sample(&state).await;
        if let Some(handle) = &state.metrics {
            handle.run_upkeep();
        }
        tokio::select! {
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
