//! The state shared by every route, task and handle of one sandbox.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::watch;

use crate::config::SandboxConfig;
use crate::connect::chat::ConnectState;
use crate::connect::errors::{AwsError, Service};
use crate::events::{EventBus, SandboxEvent};
use crate::faults::{Fault, FaultBook, FaultOp, PendingFault};
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
/// another lock. No lock is held across an `.await`.
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
    faults: Mutex<FaultBook>,
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
        Arc::new_cyclic(|me| Self {
            cfg,
            base_url,
            x: Mutex::default(),
            connect: Mutex::default(),
            sns: Mutex::default(),
            media: Mutex::default(),
            faults: Mutex::default(),
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
        lock(&self.faults).push(op, count, fault);
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn pending_faults(&self) -> Vec<PendingFault> {
        lock(&self.faults).pending()
    }

    /// Consumes the next fault queued for `op`, reporting it.
    pub(crate) fn take_fault(&self, op: FaultOp) -> Option<Fault> {
        let fault = lock(&self.faults).take(op)?;
        tracing::info!(?op, status = ?fault.status, delay_ms = fault.delay_ms, "injecting fault");
        self.events.emit(SandboxEvent::FaultInjected {
            op,
            status: fault.status,
            delay_ms: fault.delay_ms,
        });
        Some(fault)
    }

    /// Applies the next fault queued for an AWS operation: waits its delay, then fails the call
    /// with its error (a delay-only fault lets the call proceed).
    pub(crate) async fn apply_aws_fault(
        &self,
        service: Service,
        op: FaultOp,
    ) -> Result<(), AwsError> {
        let Some(fault) = self.take_fault(op) else {
            return Ok(());
        };
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        match fault.status {
            None => Ok(()),
            Some(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Err(AwsError::from_fault(service, status, &fault))
            }
        }
    }
}
