//! The newest DM the bridge accepted per business account (`x/seen/<account>` in the store):
//! where a catch-up starts. Accepting notes it in memory; a flusher writes it every few seconds
//! (and at shutdown), so a crash loses at most those seconds — which the catch-up then reads
//! again, harmlessly (events are deduplicated by id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use xdm_core::ids::XUserId;
use xdm_core::inbound::{InboundBatch, InboundEvent};
use xdm_core::ports::{Expect, Store, StoreError};
use xdm_store::AnyStore;

const PREFIX: &str = "x/seen/";
/// How often noted times are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// The customer DMs (not echoes) of a delivery: per business account, the newest `created_ms`.
pub fn newest_per_account(batch: &InboundBatch) -> Vec<(XUserId, i64)> {
    let mut newest: Vec<(XUserId, i64)> = Vec::new();
    for event in &batch.events {
        if let InboundEvent::Message(dm) = event
            && !dm.is_echo()
        {
            match newest.iter_mut().find(|(b, _)| *b == dm.business) {
                Some((_, ms)) => *ms = (*ms).max(dm.created_ms),
                None => newest.push((dm.business.clone(), dm.created_ms)),
            }
        }
    }
    newest
}

/// Noted in memory, written by [`SeenLog::flush`].
#[derive(Debug)]
pub struct SeenLog {
    store: Arc<AnyStore>,
    noted: Mutex<HashMap<XUserId, i64>>,
}

impl SeenLog {
    pub fn new(store: Arc<AnyStore>) -> Self {
        Self {
            store,
            noted: Mutex::new(HashMap::new()),
        }
    }

    /// Notes DMs that are stored (call after the accept succeeded).
    pub fn note(&self, newest: &[(XUserId, i64)]) {
        if newest.is_empty() {
            return;
        }
        if let Ok(mut noted) = self.noted.lock() {
            for (business, ms) in newest {
                let at = noted.entry(business.clone()).or_insert(*ms);
                *at = (*at).max(*ms);
            }
        }
    }

    /// The newest DM time stored for `business`.
    pub async fn last_seen(&self, business: &XUserId) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .record(&format!("{PREFIX}{business}"))
            .await?
            .and_then(|r| r.value.trim().parse().ok()))
    }

    /// Every account's newest DM time: stored, or noted since the last flush if newer.
    pub async fn newest(&self) -> Result<Vec<(XUserId, i64)>, StoreError> {
        let mut all: HashMap<XUserId, i64> = self.accounts().await?.into_iter().collect();
        if let Ok(noted) = self.noted.lock() {
            for (business, ms) in noted.iter() {
                let at = all.entry(business.clone()).or_insert(*ms);
                *at = (*at).max(*ms);
            }
        }
        let mut all: Vec<_> = all.into_iter().collect();
        all.sort();
        Ok(all)
    }

    /// Every account with a stored time.
    pub async fn accounts(&self) -> Result<Vec<(XUserId, i64)>, StoreError> {
        let records = self.store.records(PREFIX).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                let id = XUserId::parse(r.key.strip_prefix(PREFIX)?.to_owned()).ok()?;
                Some((id, r.value.trim().parse().ok()?))
            })
            .collect())
    }

    /// Starts the record of `business` at `ms` unless it has one (an account the bridge has not
    /// heard from yet: a later gap is measured from now, not from the beginning of time).
    pub async fn start_at(&self, business: &XUserId, ms: i64) -> Result<(), StoreError> {
        let key = format!("{PREFIX}{business}");
        self.store
            .put_record(&key, &ms.to_string(), Expect::Absent, ms)
            .await?;
        Ok(())
    }

    /// Writes what was noted: each time only moves forward, also against another process.
    pub async fn flush(&self, now_ms: i64) -> Result<(), StoreError> {
        let noted: Vec<(XUserId, i64)> = match self.noted.lock() {
            Ok(mut noted) => noted.drain().collect(),
            Err(_) => return Ok(()),
        };
        for (business, ms) in noted {
            let key = format!("{PREFIX}{business}");
            let result = self.advance(&key, ms, now_ms).await;
            if let Err(e) = result {
                // Keep it for the next flush.
                self.note(&[(business, ms)]);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn advance(&self, key: &str, ms: i64, now_ms: i64) -> Result<(), StoreError> {
        for _ in 0..5 {
            let current = self.store.record(key).await?;
            let expect = match &current {
                Some(r) if r.value.trim().parse::<i64>().is_ok_and(|v| v >= ms) => return Ok(()),
                Some(r) => Expect::Version(r.version),
                None => Expect::Absent,
            };
            if self
                .store
                .put_record(key, &ms.to_string(), expect, now_ms)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            let now = xdm_core::ports::Clock::now_ms(&xdm_core::ports::SystemClock);
            if let Err(e) = self.flush(now).await {
                tracing::warn!(error = %e, "cannot record the newest DM seen; will retry");
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
