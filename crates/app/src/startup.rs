//! Building and running the bridge process: store, adapters (built once), core, dispatchers,
//! HTTP server. Used by `serve`, `demo` and the tests (`spawn_app` on port 0).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use xdm_core::Bridge;
use xdm_core::jobs::Queue;
use xdm_core::ports::{Clock, Store, SystemClock};
use xdm_store::AnyStore;

use crate::config::Config;
use crate::server::{self, AppState};
use crate::wiring::{self, AppBridge, ConnectPort, XPort};

/// Done and failed events are kept this long for deduplication and inspection.
const JOB_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Ended sessions are kept this long (late streamed items still find their customer).
const SESSION_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What callers may inject instead of what the environment provides.
#[derive(Debug, Default)]
pub struct Overrides {
    /// AWS configuration (credentials, region, endpoints); default: `aws_config::load_defaults`.
    pub sdk_config: Option<SdkConfig>,
}

/// A running bridge.
#[derive(Debug)]
pub struct Application {
    addr: SocketAddr,
    listener: TcpListener,
    state: Arc<AppState>,
    max_body_bytes: usize,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl Application {
    /// Opens the store, builds the adapters and the core, starts the dispatchers (when the
    /// configuration allows delivery) and binds the listener.
    pub async fn build(config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        let sdk = match overrides.sdk_config {
            Some(sdk) => Some(sdk),
            None if config.connect.instance_id.is_some()
                || config.store.starts_with("dynamodb:") =>
            {
                Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
            }
            None => None,
        };
        let built = Box::pin(build_state(&config, sdk.as_ref())).await?;
        if let AnyStore::Sqlite(_) = built.state.bridge.store() {
            // One process owns a SQLite file: whatever the last process had in hand is ours to redo.
            let now = SystemClock.now_ms();
            for queue in [Queue::Inbound, Queue::Outbound] {
                let n = built
                    .state
                    .bridge
                    .store()
                    .release_claims(queue, now)
                    .await?;
                if n > 0 {
                    tracing::info!(
                        queue = queue.as_str(),
                        events = n,
                        "resuming events left unfinished by the last run"
                    );
                }
            }
        }
        let bridge = Arc::clone(&built.state.bridge);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut workers = Vec::new();
        if built.deliver {
            for queue in [Queue::Inbound, Queue::Outbound] {
                workers.push(tokio::spawn(
                    Arc::clone(&bridge).run_dispatcher(queue, shutdown_rx.clone()),
                ));
            }
        }
        workers.push(tokio::spawn(purge_periodically(
            Arc::clone(&bridge),
            shutdown_rx,
        )));
        let state = built.state;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("XDM_LISTEN: cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            addr,
            listener,
            state,
            max_body_bytes: config.max_body_bytes,
            shutdown,
            workers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` for loopback listeners.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bridge(&self) -> Arc<AppBridge> {
        Arc::clone(&self.state.bridge)
    }

    /// Serves until `stop` completes, then stops accepting, lets the dispatchers finish the
    /// jobs in hand, and returns.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = server::router(self.state, self.max_body_bytes);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await
            .context("the HTTP server failed")?;
        // Err only when every receiver is gone, i.e. the workers have already stopped.
        let _ = self.shutdown.send(true);
        for w in self.workers {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "a worker failed while stopping");
            }
        }
        Ok(())
    }
}

async fn purge_periodically(bridge: Arc<AppBridge>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = SystemClock.now_ms();
        match bridge
            .store()
            .purge(now - JOB_RETENTION_MS, now - SESSION_RETENTION_MS, now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged old events, sessions and profiles"),
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

/// The shared parts of a bridge process, before any listener or worker.
#[derive(Debug)]
pub struct BuiltState {
    pub state: Arc<AppState>,
    /// Delivery is possible (X and Connect configured); otherwise events are only accepted.
    pub deliver: bool,
}

/// Opens the store and builds the adapters and the core from `config` — once per process (or
/// per Lambda cold start / configuration change).
pub async fn build_state(config: &Config, sdk: Option<&SdkConfig>) -> anyhow::Result<BuiltState> {
    let store = wiring::open_store(&config.store, sdk)
        .await
        .context("XDM_STORE")?;
    let x = XPort::from_config(config);
    let connect = ConnectPort::from_config(config, sdk);
    let sns = wiring::sns_verifier(config)?;

    let mut missing: Vec<&'static str> = config.missing_for_delivery();
    let problems: Vec<String> = [x.problem(), connect.problem()]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    if config.webhook_secret().is_none() {
        tracing::error!(
            "XDM_X_CONSUMER_SECRET is not set: X webhooks cannot be verified and are refused"
        );
    }
    let deliver = problems.is_empty();
    if !deliver {
        for p in &problems {
            tracing::error!(problem = %p, "delivery is off until the configuration is complete; accepted events are kept");
        }
        if missing.is_empty() {
            missing.push("a valid X / Amazon Connect configuration");
        }
    }
    let bridge: Arc<AppBridge> =
        Bridge::new(store, x, connect, SystemClock, config.delivery.clone());
    let state = Arc::new(AppState {
        bridge,
        webhook_secret: config.x.consumer_secret.clone(),
        sns,
        missing,
        metrics: metrics_handle(),
        inbound_trigger: None,
    });
    Ok(BuiltState { state, deliver })
}
