//! Webhook delivery's watch (needs the bearer token): X stops delivering to a webhook it marked
//! invalid (a wrong CRC answer, or 28 hours without a successful one), and says so only in
//! `GET /2/webhooks`. Every `XDM_X_WEBHOOK_CHECK_MS` (5 minutes) `serve` looks; when its webhook
//! is invalid it asks X for a new CRC (`PUT /2/webhooks/:id`) and, once X accepts it, reads back
//! what X did not deliver meanwhile (the catch-up, from the last DM seen; inbound delivery held
//! while it runs, so older DMs go first).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use xdm_core::jobs::JobQueue;
use xdm_core::ports::{Clock, SystemClock};

use super::catch_up::{self, OVERLAP_MS};
use super::seen::SeenLog;
use super::stream::log_progress;
use crate::wiring::AppBridge;
use crate::x_link::XLink;

#[derive(Debug)]
pub struct WebhookWatch {
    pub link: XLink,
    pub bridge: Arc<AppBridge>,
    pub seen: Arc<SeenLog>,
    pub every: Duration,
}

impl WebhookWatch {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.check().await {
                tracing::warn!(error = %format!("{e:#}"), "cannot check the X webhook");
            }
        }
    }

    /// One look: re-validates an invalid webhook and catches up after it.
    pub async fn check(&self) -> anyhow::Result<()> {
        let Some(id) = self.link.webhook_id(None).await? else {
            return Ok(());
        };
        let app = self.link.app()?;
        let Some(hook) = app.webhooks().await?.into_iter().find(|w| w.id == id) else {
            tracing::error!(webhook = %id, "the X webhook is no longer registered: run `xdm-connect x webhook create`");
            return Ok(());
        };
        if hook.valid {
            return Ok(());
        }
        tracing::warn!(webhook = %id, "X marked the webhook invalid: asking for a new CRC");
        if !app.validate_webhook(&id).await? {
            tracing::error!(webhook = %id, "X still marks the webhook invalid after a new CRC");
            return Ok(());
        }
        tracing::info!(webhook = %id, "the X webhook is valid again; catching up");
        let _hold = self.bridge.hold(JobQueue::Inbound);
        self.seen.flush(SystemClock.now_ms()).await?;
        for (business, seen_ms) in self.seen.accounts().await? {
            let mut log = |p: catch_up::Progress| log_progress(&p);
            let report = catch_up::catch_up(
                &self.bridge,
                &self.link.client,
                &business,
                seen_ms - OVERLAP_MS,
                &mut log,
            )
            .await?;
            tracing::info!(
                business = %business,
                accepted = report.accepted,
                "caught up after the webhook was invalid"
            );
        }
        Ok(())
    }
}
