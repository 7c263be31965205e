//! The catch-up (reconciler): DMs X holds that the bridge never received — it was stopped, the
//! stream was down longer than its backfill, the webhook was invalid — read back with
//! `GET /2/dm_events` (newest first, 100 a page) down to where the bridge's record of the last
//! DM seen begins, then accepted oldest first through the very accept path of a webhook
//! delivery. DMs the bridge already has are dropped there as duplicates (same event id), so the
//! overlap of a generous start costs nothing but the read. Unlike what X pushes (webhook,
//! stream), these DMs are accepted whatever their age (`Bridge::accept_caught_up`): a bridge
//! that was down longer than `XDM_X_MAX_EVENT_AGE_HOURS` still gets every DM of the gap.
//!
//! X allows 15 reads / 15 minutes per user on this endpoint: on 429 the catch-up waits for
//! `x-rate-limit-reset` and goes on from the same page, reporting the wait. While it runs, the
//! caller holds inbound delivery (`Bridge::hold`) so that the gap's DMs reach Connect before the
//! newer ones that arrived meanwhile.

use std::time::Duration;

use xdm_core::ids::XUserId;
use xdm_core::inbound::{InboundBatch, InboundDm, InboundEvent};
use xdm_core::ports::{Clock, SystemClock, XError};
use xdm_x::XClient;

use crate::wiring::AppBridge;

/// X keeps DM events for 30 days.
pub const MAX_LOOKBACK_MS: i64 = 30 * 24 * 3600 * 1000;
/// Read this much before the last DM seen (clocks, and DMs stored in the last unflushed seconds).
pub const OVERLAP_MS: i64 = 60_000;
/// DMs accepted per store write.
const ACCEPT_CHUNK: usize = 100;
/// Consecutive failed page reads (5xx, network) before giving up this run.
const MAX_FAILURES: u32 = 5;

/// What one catch-up of one account did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUpReport {
    pub pages: usize,
    /// Customer DMs X listed in the window.
    pub read: usize,
    /// Of them, new to the bridge.
    pub accepted: usize,
    pub duplicates: usize,
}

/// Where a catch-up is, for the terminal or the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Page {
        business: XUserId,
        pages: usize,
        read: usize,
        /// How far back the pages read so far reach.
        oldest_ms: Option<i64>,
    },
    /// X's rate limit: waiting until then (Unix seconds).
    Waiting { business: XUserId, until_s: i64 },
    Accepted {
        business: XUserId,
        report: CatchUpReport,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("reading DMs of account {business} back from X failed: {source}")]
    X { business: XUserId, source: XError },
    #[error("cannot store the DMs read back: {0}")]
    Store(#[from] xdm_core::ports::StoreError),
}

/// Reads back the customer DMs `business` received since `since_ms` and accepts them, oldest
/// first. `since_ms` is clamped to X's 30-day lookback.
pub async fn catch_up(
    bridge: &AppBridge,
    client: &XClient,
    business: &XUserId,
    since_ms: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<CatchUpReport, CatchUpError> {
    let now = SystemClock.now_ms();
    let since_ms = since_ms.max(now - MAX_LOOKBACK_MS);
    let mut report = CatchUpReport::default();
    let mut gathered: Vec<InboundDm> = Vec::new();
    let mut token: Option<String> = None;
    let mut failures = 0;
    loop {
        let page = match client.dm_events_page(business, token.as_deref()).await {
            Ok(page) => page,
            Err(XError::RateLimited { reset_at_s }) => {
                let until_s = reset_at_s.unwrap_or(now / 1000 + 60);
                progress(Progress::Waiting {
                    business: business.clone(),
                    until_s,
                });
                let wait_ms = (until_s * 1000 - SystemClock.now_ms()).clamp(1_000, 16 * 60_000);
                tokio::time::sleep(Duration::from_millis(
                    u64::try_from(wait_ms).unwrap_or(1_000),
                ))
                .await;
                continue;
            }
            Err(e) if e.is_retryable() && failures < MAX_FAILURES => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures))).await;
                continue;
            }
            Err(source) => {
                return Err(CatchUpError::X {
                    business: business.clone(),
                    source,
                });
            }
        };
        failures = 0;
        report.pages += 1;
        let mut reached_start = false;
        let mut oldest = None;
        for event in page.events {
            let at = event.created_ms();
            oldest = Some(oldest.map_or(at, |o: i64| o.min(at)));
            if at < since_ms {
                reached_start = true;
                continue;
            }
            if let Some(dm) = event.into_received() {
                report.read += 1;
                gathered.push(dm);
            }
        }
        progress(Progress::Page {
            business: business.clone(),
            pages: report.pages,
            read: report.read,
            oldest_ms: oldest,
        });
        match page.next_token {
            Some(next) if !reached_start => token = Some(next),
            _ => break,
        }
    }
    // Oldest first, so each customer's lane receives them in the order they were written.
    gathered.sort_by_key(|dm| (dm.created_ms, dm.event_id.as_str().to_owned()));
    gathered.dedup_by(|a, b| a.event_id == b.event_id);
    let mut events = gathered.into_iter().map(InboundEvent::Message).peekable();
    while events.peek().is_some() {
        let chunk: Vec<InboundEvent> = events.by_ref().take(ACCEPT_CHUNK).collect();
        // Read back by the bridge itself, not replayable by anyone: not bounded by age.
        let accepted = bridge
            .accept_caught_up(InboundBatch { events: chunk })
            .await?;
        report.accepted += accepted.accepted;
        report.duplicates += accepted.duplicates;
    }
    progress(Progress::Accepted {
        business: business.clone(),
        report: report.clone(),
    });
    Ok(report)
}
