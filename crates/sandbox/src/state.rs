//! The state shared by every route, task and handle of one sandbox.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock;
use crate::config::SandboxConfig;
use crate::connect::chat::ConnectState;
use crate::connect::errors::{AwsError, Service};
use crate::events::{EventBus, SandboxEvent};
use crate::faults::{
    self, DownMode, Fault, FaultOp, FaultProfile, FaultState, Injected, PendingFault, SandboxStats,
    Side, ThrottleBurst, ThrottleBurstView,
};
use crate::ids::Snowflake;
use crate::media::registry::MediaState;
use crate::sns::delivery::SnsState;
use crate::sns::signer::SnsSigner;
use crate::x::state::XState;

/// Locks a mutex; a panic elsewhere while holding it does not make the state unusable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lock order, where two are held: `connect` before `sns`; `media` and `x` are never held with
/// another lock; `faults` is a leaf (nothing is locked while holding it). No lock is held across an
/// `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: SandboxConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub x: Mutex<XState>,
    pub connect: Mutex<ConnectState>,
    pub sns: Mutex<SnsState>,
    /// Files, media paths and media GET records.
    pub media: Mutex<MediaState>,
    faults: Mutex<FaultState>,
    pub events: EventBus,
    /// Client for calls to the bridge (webhook, SNS endpoints): no redirects, no proxy.
    pub http: reqwest::Client,
    pub signer: SnsSigner,
    pub snowflake: Snowflake,
    runtime: tokio::runtime::Handle,
    shutdown: watch::Sender<bool>,
    me: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(
        cfg: SandboxConfig,
        base_url: String,
        http: reqwest::Client,
        signer: SnsSigner,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let faults = FaultState::new(cfg.fault_seed, clock::now_iso_ms());
        Arc::new_cyclic(|me| Self {
            cfg,
            base_url,
            x: Mutex::default(),
            connect: Mutex::default(),
            sns: Mutex::default(),
            media: Mutex::default(),
            faults: Mutex::new(faults),
            events: EventBus::new(),
            http,
            signer,
            snowflake: Snowflake::default(),
            runtime,
            shutdown,
            me: me.clone(),
        })
    }

    /// This state as an `Arc` (for tasks spawned from `&self` methods).
    pub(crate) fn arc(&self) -> Option<Arc<Self>> {
        self.me.upgrade()
    }

    /// Runs `task` on the sandbox's runtime until it finishes or the sandbox shuts down.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.shutdown.subscribe();
        self.runtime.spawn(async move {
            tokio::select! {
                () = task => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when `shutdown` is called.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.shutdown.subscribe();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }

    pub(crate) fn push_fault(&self, op: FaultOp, count: u32, fault: Fault) {
        lock(&self.faults).queued.push(op, count, fault);
    }

    /// Every fault setting: queued faults, profiles, bursts, down switches.
    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear_all();
    }

    pub(crate) fn pending_faults(&self) -> Vec<PendingFault> {
        lock(&self.faults).queued.pending()
    }

    pub(crate) fn set_fault_profile(&self, op: FaultOp, profile: FaultProfile) {
        lock(&self.faults).set_profile(op, profile);
    }

    pub(crate) fn fault_profiles(&self) -> std::collections::BTreeMap<FaultOp, FaultProfile> {
        lock(&self.faults).profiles()
    }

    pub(crate) fn clear_fault_profiles(&self) {
        lock(&self.faults).clear_profiles();
    }

    pub(crate) fn throttle_burst(&self, op: FaultOp, burst: ThrottleBurst) {
        lock(&self.faults).set_burst(op, burst, clock::now_unix_secs());
    }

    pub(crate) fn throttle_bursts(&self) -> Vec<ThrottleBurstView> {
        lock(&self.faults).bursts()
    }

    pub(crate) fn clear_throttle_bursts(&self) {
        lock(&self.faults).clear_bursts();
    }

    pub(crate) fn set_down(&self, side: Side, mode: Option<DownMode>) {
        lock(&self.faults).set_down(side, mode);
    }

    pub(crate) fn down(&self, side: Side) -> Option<DownMode> {
        lock(&self.faults).down(side)
    }

    pub(crate) fn stats(&self) -> SandboxStats {
        lock(&self.faults).stats.snapshot()
    }

    pub(crate) fn reset_stats(&self) {
        lock(&self.faults).stats = faults::StatsBook::new(clock::now_iso_ms());
    }

    /// Counts a call's answer (`None`: its connection was dropped).
    pub(crate) fn count_answer(&self, op: FaultOp, status: Option<u16>) {
        lock(&self.faults).stats.answered(op, status);
    }

    /// SendMessage added a message to a transcript.
    pub(crate) fn count_message_created(&self) {
        lock(&self.faults).stats.messages_created += 1;
    }

    /// A SendMessage / SendEvent was answered from its ClientToken's earlier call.
    pub(crate) fn count_client_token_replay(&self) {
        lock(&self.faults).stats.client_token_replays += 1;
    }

    /// CreateDm recorded a DM.
    pub(crate) fn count_dm_created(&self) {
        lock(&self.faults).stats.dms_created += 1;
    }

    /// Fault injection for one call of `op` (after its authentication): waits the injected delay,
    /// arranges a dropped connection, and returns the error to answer, if any. When the connection
    /// is to be dropped before the call takes effect, the error is returned too: the handler answers
    /// it (and records it), and the answer is replaced by the abort.
    pub(crate) async fn gate(&self, op: FaultOp) -> Option<Injected> {
        faults::note_call(op);
        let plan = lock(&self.faults).decide(op, clock::now_unix_secs());
        if let Some((kind, status)) = plan.event {
            tracing::info!(
                ?op,
                ?kind,
                ?status,
                delay_ms = plan.delay_ms,
                "injecting fault"
            );
            self.events.emit(SandboxEvent::FaultInjected {
                op,
                status,
                delay_ms: plan.delay_ms,
                kind,
            });
        }
        if plan.drop {
            faults::flag_drop();
        }
        if plan.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
        }
        plan.answer
    }

    /// Whether the GIF / video being finalized fails processing (queued `MediaProcessing` fault or
    /// its profile's error rate), with the failure message.
    pub(crate) fn processing_failure(&self) -> Option<String> {
        let (message, status) = lock(&self.faults).processing_failure()?;
        tracing::info!(op = ?FaultOp::MediaProcessing, "injecting fault");
        self.events.emit(SandboxEvent::FaultInjected {
            op: FaultOp::MediaProcessing,
            status,
            delay_ms: 0,
            kind: faults::FaultKind::Error,
        });
        Some(message)
    }

    /// Applies fault injection to an AWS operation: waits the injected delay, then fails the call
    /// with the injected error, if any.
    pub(crate) async fn apply_aws_fault(
        &self,
        service: Service,
        op: FaultOp,
    ) -> Result<(), AwsError> {
        match self.gate(op).await {
            None => Ok(()),
            Some(injected) => Err(AwsError::from_fault(
                service,
                injected.status(),
                &injected.fault,
            )),
        }
    }
}
