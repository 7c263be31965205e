//! Building and running the bridge process: store, adapters (built once), core, dispatchers,
//! HTTP server. Used by `serve`, `demo` and the tests (`spawn_app` on port 0).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use xdm_core::Bridge;
use xdm_core::jobs::{JOB_RETENTION_MS, JobQueue};
use xdm_core::ports::{Clock, Store, SystemClock};
use xdm_store::{AnyStore, InstanceLock};

use crate::config::{Config, HttpSettings, XDelivery};
use crate::server::{self, AppState};
use crate::wiring::{self, AppBridge};
use crate::x_events::catch_up::{self, OVERLAP_MS};
use crate::x_events::seen::SeenLog;
use crate::x_events::stream::{self, StreamHealth, StreamTask};
use crate::x_events::webhook_watch::WebhookWatch;
use crate::x_link::XLink;
use crate::x_tokens;

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
    /// The admin listener (`XDM_ADMIN_LISTEN`), unless off, and its address.
    admin: Option<(TcpListener, SocketAddr)>,
    admin_token: Option<SecretString>,
    http: HttpSettings,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    /// Held while the process runs (dropped with it): one delivering process per SQLite file.
    _instance_lock: Option<InstanceLock>,
}

impl Application {
    /// Takes the SQLite store's instance lock, binds the listener, then opens the store, builds
    /// the adapters and the core, and starts the dispatchers (when the configuration allows
    /// delivery). In that order: a start that cannot be the only one on its store, or cannot
    /// listen, fails before the store is opened, so it leaves the store as it found it
    /// (docs/setup.md, "One `serve` per SQLite file").
    pub async fn build(config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        for warning in &config.file_warnings {
            tracing::warn!("{warning}");
        }
        let instance_lock = wiring::instance_lock(&config.store)
            .await
            .context("XDM_STORE")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("XDM_LISTEN: cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let admin = bind_admin(&config).await?;
        let sdk = match overrides.sdk_config {
            Some(sdk) => Some(sdk),
            None if config.connect.instance_id.is_some()
                || config.store.starts_with("dynamodb:") =>
            {
                Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
            }
            None => None,
        };
        let stream_health =
            (config.x.delivery == XDelivery::Stream).then(|| Arc::new(StreamHealth::default()));
        let built = Box::pin(build_state(
            &config,
            sdk.as_ref(),
            StateExtras {
                stream: stream_health.clone(),
                ..StateExtras::default()
            },
        ))
        .await?;
        if let AnyStore::Sqlite(_) = &**built.app.bridge.store() {
            // One process delivers from a SQLite file (the instance lock above): whatever the
            // last process had in hand is ours to redo.
            let now = SystemClock.now_ms();
            for queue in JobQueue::ALL {
                let n = built.app.bridge.store().release_claims(queue, now).await?;
                if n > 0 {
                    tracing::info!(
                        queue = queue.as_str(),
                        events = n,
                        "resuming events left unfinished by the last run"
                    );
                }
            }
        }
        let bridge = Arc::clone(&built.app.bridge);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut workers = Vec::new();
        // Before any dispatcher runs: the DMs of the gap since the last run are stored first
        // and delivered before anything newer.
        let mut x_tasks = XTasks::new(&config, &built.app)?;
        if let Some(task) = x_tasks.start_catch_up(&bridge).await {
            workers.push(tokio::spawn(task));
        }
        if let Some(seen) = &built.app.seen {
            workers.push(tokio::spawn(Arc::clone(seen).run(shutdown_rx.clone())));
        }
        if config.x.delivery == XDelivery::Webhook
            && config.x.bearer_token.is_some()
            && config.x.catch_up
            && let Some(seen) = &built.app.seen
        {
            let client = built
                .app
                .x_client
                .clone()
                .context("the webhook watch needs X credentials")?;
            let link = XLink::from_parts(
                config.clone(),
                Arc::clone(bridge.store()),
                client,
                built.app.tokens.clone(),
            )?;
            let watch = WebhookWatch {
                link,
                bridge: Arc::clone(&bridge),
                seen: Arc::clone(seen),
                every: Duration::from_millis(config.x.webhook_check_ms),
            };
            workers.push(tokio::spawn(watch.run(shutdown_rx.clone())));
        }
        if let Some(health) = stream_health {
            workers.push(tokio::spawn(
                x_tasks
                    .stream_task(&config, &bridge, health)?
                    .run(x_tasks.resume_from_ms, shutdown_rx.clone()),
            ));
        }
        if built.deliver {
            for queue in JobQueue::ALL {
                workers.push(tokio::spawn(
                    Arc::clone(&bridge).run_dispatcher(queue, shutdown_rx.clone()),
                ));
            }
        }
        workers.push(tokio::spawn(crate::monitoring::gauges::run(
            Arc::clone(&built.app),
            shutdown_rx.clone(),
        )));
        workers.push(tokio::spawn(purge_periodically(
            Arc::clone(&bridge),
            shutdown_rx,
        )));
        Ok(Self {
            addr,
            listener,
            state: built.app,
            max_body_bytes: config.max_body_bytes,
            admin,
            admin_token: config.admin.token.clone(),
            http: config.http.clone(),
            shutdown,
            workers,
            _instance_lock: instance_lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` for loopback listeners.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin listener's address (`/metrics`, `/healthz` with details), unless it is off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// `http://127.0.0.1:PORT` of the admin listener, unless it is off.
    pub fn admin_base_url(&self) -> Option<String> {
        self.admin_addr().map(|a| format!("http://{a}"))
    }

    pub fn bridge(&self) -> Arc<AppBridge> {
        Arc::clone(&self.state.bridge)
    }

    /// Serves (the public listener and the admin listener, within the `XDM_HTTP_*` limits)
    /// until `stop` completes, then stops accepting, lets the requests and the dispatchers'
    /// jobs in hand finish, and returns.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_serving, serving) = watch::channel(false);
        let public = tokio::spawn(server::serve(
            self.listener,
            server::router(Arc::clone(&self.state), self.max_body_bytes),
            server::Limits::public(&self.http),
            "public",
            serving.clone(),
        ));
        let admin = self.admin.map(|(listener, _)| {
            tokio::spawn(server::serve(
                listener,
                server::admin_router(Arc::clone(&self.state), self.admin_token),
                server::Limits::admin(&self.http),
                "admin",
                serving,
            ))
        });
        stop.await;
        // Err only when both servers are gone already.
        let _ = stop_serving.send(true);
        // A failed server is reported only once the workers have stopped: the instance lock
        // (a field of `self`) must outlive the work it protects.
        let mut served = public.await.context("the HTTP server failed");
        if let Some(admin) = admin {
            let admin = admin.await.context("the admin HTTP server failed");
            served = served.and(admin);
        }
        // Err only when every receiver is gone, i.e. the workers have already stopped.
        let _ = self.shutdown.send(true);
        for w in self.workers {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "a worker failed while stopping");
            }
        }
        served
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
        match bridge.purge_previous_chats().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "forgot chats past the persistent-chat window"),
            Err(e) => tracing::warn!(error = %e, "purge of previous-chat records failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Binds the admin listener (`XDM_ADMIN_LISTEN`) unless it is off, and warns when no token lets
/// anyone in or when it listens beyond loopback.
async fn bind_admin(config: &Config) -> anyhow::Result<Option<(TcpListener, SocketAddr)>> {
    let Some(listen) = config.admin.listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("XDM_ADMIN_LISTEN: cannot listen on {listen} (`off` turns the admin listener off)")
    })?;
    let addr = listener.local_addr()?;
    if config.admin.token.is_none() {
        tracing::warn!(
            address = %addr,
            "XDM_ADMIN_TOKEN is not set: the admin listener (/metrics, /healthz details) refuses every request; set XDM_ADMIN_TOKEN (or `token` under [admin]) to a long random value, e.g. `openssl rand -hex 32`, and send it as `Authorization: Bearer <token>`"
        );
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(
            address = %addr,
            "the admin listener is not on loopback: let only your monitoring reach it"
        );
    }
    Ok(Some((listener, addr)))
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process;
/// `None` where another recorder came first, as EMF on Lambda).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(crate::monitoring::install_prometheus)
        .clone()
}

/// The shared parts of a bridge process, before any listener or worker.
#[derive(Debug)]
pub struct BuiltState {
    /// What the HTTP handlers share: the bridge, the webhook secrets, the X client, …
    pub app: Arc<AppState>,
    /// Delivery is possible (X and Connect configured); otherwise events are only accepted.
    pub deliver: bool,
}

/// What the process that builds the state adds to it: on Lambda the queue that wakes the
/// delivery function, in stream delivery the stream's health.
#[derive(Debug, Default)]
pub struct StateExtras {
    pub inbound_trigger: Option<crate::lambda::queue::InboundTrigger>,
    pub stream: Option<Arc<StreamHealth>>,
}

/// Opens the store and builds the adapters and the core from `config` — once per process (or
/// per Lambda cold start / configuration change).
pub async fn build_state(
    config: &Config,
    sdk: Option<&SdkConfig>,
    extras: StateExtras,
) -> anyhow::Result<BuiltState> {
    let store = Arc::new(
        wiring::open_store(&config.store, sdk)
            .await
            .context("XDM_STORE")?,
    );
    let tokens = x_tokens::keeper(config, &store)?;
    let x = wiring::configured_x_client(config, tokens.as_ref());
    let x_client = x.ready().ok().cloned();
    let connect = wiring::configured_connect_client(config, sdk);
    let sns = wiring::sns_verifier(config)?;

    let mut missing: Vec<&'static str> = config.missing_for_delivery();
    let problems: Vec<String> = [x.problem(), connect.problem()]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    let webhook_secrets = wiring::webhook_secrets(config);
    if webhook_secrets.is_none() {
        tracing::error!(
            "neither XDM_X_CLIENT_SECRET nor XDM_X_CONSUMER_SECRET is set: X webhooks cannot be verified and are refused"
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
    let bridge: Arc<AppBridge> = Bridge::new(
        Arc::clone(&store),
        x,
        connect,
        SystemClock,
        config.bridge_config(),
    );
    let app = Arc::new(AppState {
        bridge,
        webhook_secrets,
        sns,
        missing,
        metrics: metrics_handle(),
        inbound_trigger: extras.inbound_trigger,
        tokens,
        x_client,
        stream: extras.stream,
        seen: Some(Arc::new(SeenLog::new(store))),
    });
    Ok(BuiltState { app, deliver })
}

/// The X side's background work of `serve`: the start-up catch-up and the activity stream.
struct XTasks {
    client: Option<xdm_x::XClient>,
    seen: Option<Arc<SeenLog>>,
    tokens: Option<Arc<x_tokens::Tokens>>,
    catch_up: bool,
    /// The newest DM seen before this start, over every account.
    resume_from_ms: Option<i64>,
}

impl XTasks {
    fn new(config: &Config, state: &AppState) -> anyhow::Result<Self> {
        Ok(Self {
            client: state.x_client.clone(),
            seen: state.seen.clone(),
            tokens: state.tokens.clone(),
            catch_up: config.x.catch_up,
            resume_from_ms: None,
        })
    }

    /// Holds inbound delivery and returns the task that catches up every account seen before
    /// (releasing the hold when done); `None` when there is nothing to do.
    async fn start_catch_up(
        &mut self,
        bridge: &Arc<AppBridge>,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let seen = self.seen.clone()?;
        let now = SystemClock.now_ms();
        if let Some(tokens) = &self.tokens
            && let Ok(accounts) = tokens.accounts().await
        {
            for a in accounts {
                if let Err(e) = seen.start_at(&a, now).await {
                    tracing::warn!(error = %e, "cannot record the start of an account");
                }
            }
        }
        let accounts = match seen.accounts().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read where the last run stopped: no catch-up");
                return None;
            }
        };
        self.resume_from_ms = accounts.iter().map(|(_, ms)| *ms).max();
        if !self.catch_up || accounts.is_empty() {
            return None;
        }
        let client = self.client.clone()?;
        let hold = bridge.hold(JobQueue::Inbound);
        let bridge = Arc::clone(bridge);
        Some(async move {
            let _hold = hold;
            for (business, seen_ms) in accounts {
                let mut log = |p: catch_up::Progress| stream::log_progress(&p);
                match catch_up::catch_up(
                    &bridge,
                    &client,
                    &business,
                    seen_ms - OVERLAP_MS,
                    &mut log,
                )
                .await
                {
                    Ok(r) => tracing::info!(
                        business = %business,
                        read = r.read,
                        accepted = r.accepted,
                        "caught up with the DMs received while the bridge was not running"
                    ),
                    Err(e) => tracing::warn!(error = %e, "start-up catch-up failed"),
                }
            }
        })
    }

    fn stream_task(
        &self,
        config: &Config,
        bridge: &Arc<AppBridge>,
        health: Arc<StreamHealth>,
    ) -> anyhow::Result<StreamTask> {
        let app = wiring::app_client(config)?
            .context("XDM_X_DELIVERY=stream needs XDM_X_BEARER_TOKEN")?;
        let client = self
            .client
            .clone()
            .context("XDM_X_DELIVERY=stream needs X credentials")?;
        let seen = self
            .seen
            .clone()
            .context("the stream needs the record of DMs seen")?;
        Ok(StreamTask {
            bridge: Arc::clone(bridge),
            app,
            client,
            seen,
            health,
            silence: Duration::from_millis(config.x.stream_silence_ms),
            catch_up: config.x.catch_up,
            max_backfill_minutes: config.x.stream_backfill_minutes,
        })
    }
}
