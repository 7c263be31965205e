//! AWS Lambda: the same binary as a `bootstrap` (provided.al2023). One function code serves
//! every function of the deployment, told apart by the event:
//!
//! * API Gateway (REST or HTTP API) / function URL → the `serve` router (`/webhooks/x`, and
//!   `/webhooks` like the AWS sample): verify, persist, answer X at once, wake the delivery queue;
//! * SQS (FIFO, one message group per customer) → deliver that customer's messages in order;
//! * SNS (the Connect chat stream) → accept the chat item and deliver it to X;
//! * an EventBridge schedule → deliver whatever is due (retries, missed wake-ups).
//!
//! Clients and configuration are built once per cold start; configuration from SSM and Secrets
//! Manager (the sample's layout) is re-read every `XDM_AWS_CONFIG_REFRESH_SECS` and the bridge is
//! rebuilt only when it changed. What an invocation measured is written after it as CloudWatch
//! EMF lines on stdout (namespace `XDM_METRICS_NAMESPACE`, [`crate::monitoring::emf`]); the sweep
//! samples the backlog gauges.

pub mod aws_sources;
pub mod event;
pub mod http;
pub mod queue;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use axum::Router;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tower::ServiceExt;
use xdm_amazon_connect::sns::{SnsMessage, chat_item_from_notification};
use xdm_core::jobs::JobQueue;
use xdm_core::ports::{Clock, SystemClock};

use crate::config::{Config, LogFormat, XDelivery};
use crate::monitoring::emf::Emf;
use crate::monitoring::gauges;
use crate::monitoring::webhooks::{self, Refusal, Source};
use crate::server;
use crate::server::AppState;
use crate::startup::{BuiltState, StateExtras, build_state};
use crate::x_events::webhook_watch::WebhookWatch;
use crate::x_link::XLink;
use aws_sources::AwsSources;
use event::Invocation;
use queue::{InboundTrigger, WakeUp};

/// Time kept back from the invocation deadline for answering.
const DEADLINE_MARGIN_MS: i64 = 2_000;
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// While the configuration is incomplete (e.g. the secret was just created with empty values and
/// X is about to send its first CRC), it is re-read this often instead.
const INCOMPLETE_REFRESH: Duration = Duration::from_secs(10);

/// The CloudWatch namespace of the EMF metrics when `XDM_METRICS_NAMESPACE` is not set.
pub const DEFAULT_METRICS_NAMESPACE: &str = "xdm-connect";

/// Runs the Lambda runtime loop.
pub async fn run() -> anyhow::Result<()> {
    let mut config = Config::load(None)?;
    config.log_format = LogFormat::Json;
    crate::telemetry::init(config.log_format);
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    // The process's recorder before anything records (the Prometheus one is then not installed).
    let emf = metrics_namespace(std::env::var("XDM_METRICS_NAMESPACE").ok()).map(Emf::new);
    if let Some(emf) = &emf
        && metrics::set_global_recorder(emf.clone()).is_err()
    {
        tracing::warn!("a metrics recorder is installed already: no EMF metrics");
    }
    let app = Box::pin(LambdaApp::new(config, sdk, &|k| std::env::var(k).ok())).await?;
    let app = Arc::new(match emf {
        Some(emf) => app.with_metrics(emf, Box::new(std::io::stdout())),
        None => app,
    });
    let runtime = Box::pin(lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let app = Arc::clone(&app);
            async move {
                let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
                Box::pin(app.handle(event.payload, deadline))
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    )));
    // SIGTERM ends the loop and the process exits normally. Lambda sends it between invocations
    // when it shuts the execution environment down (only with an extension registered; otherwise
    // it kills the process); scripts/lambda-cost.py sends it too, and an instrumented bootstrap
    // (scripts/build-pgo.sh) writes its profile only on a normal exit.
    tokio::select! {
        result = runtime => result.map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}")),
        () = crate::shutdown::signal() => Ok(()),
    }
}

/// The EMF namespace for the `XDM_METRICS_NAMESPACE` setting: the default when unset or empty,
/// `None` (no metrics: no CloudWatch custom-metric charges) for `off`.
fn metrics_namespace(setting: Option<String>) -> Option<String> {
    match setting.as_deref().map(str::trim) {
        None | Some("") => Some(DEFAULT_METRICS_NAMESPACE.to_owned()),
        Some("off") => None,
        Some(namespace) => Some(namespace.to_owned()),
    }
}

/// One cold start's worth of state.
#[derive(Debug)]
pub struct LambdaApp {
    base: Config,
    sdk: SdkConfig,
    sources: AwsSources,
    trigger: Option<InboundTrigger>,
    refresh: Duration,
    current: tokio::sync::Mutex<Option<Current>>,
    metrics: Option<MetricsOut>,
}

/// Where each invocation's EMF lines go.
struct MetricsOut {
    emf: Emf,
    out: std::sync::Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for MetricsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsOut")
            .field("emf", &self.emf)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Current {
    fetched: Instant,
    fingerprint: String,
    built: Arc<Built>,
}

#[derive(Debug)]
struct Built {
    app: Arc<AppState>,
    /// Delivery is possible (X and Connect configured); otherwise events are only accepted.
    deliver: bool,
    router: Router,
    topic_arn: Option<String>,
    reorder_window_ms: i64,
    /// How long an inbound job waits before it is due: the reorder window, or the message
    /// buffering window when longer (a wake-up waits that long in the invocation).
    inbound_wait_ms: i64,
    /// The sweep's look at the X webhook (webhook delivery with the bearer token and the
    /// catch-up on): re-validates it when X marked it invalid and reads back what it missed.
    watch: Option<WebhookWatch>,
}

impl LambdaApp {
    /// `base`: the `XDM_*` configuration; `env` also provides `CONFIG_PARAM_NAME`, `SECRET_ARN`,
    /// `XDM_INBOUND_QUEUE_URL` and `XDM_AWS_CONFIG_REFRESH_SECS`.
    pub async fn new(
        base: Config,
        sdk: SdkConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let sources = AwsSources::new(&sdk, env)?;
        let trigger = env("XDM_INBOUND_QUEUE_URL")
            .filter(|v| !v.trim().is_empty())
            .map(|url| InboundTrigger::new(aws_sdk_sqs::Client::new(&sdk), url));
        let refresh = match env("XDM_AWS_CONFIG_REFRESH_SECS") {
            Some(v) => Duration::from_secs(
                v.trim()
                    .parse()
                    .context("XDM_AWS_CONFIG_REFRESH_SECS is not a number of seconds")?,
            ),
            None => DEFAULT_REFRESH,
        };
        let app = Self {
            base,
            sdk,
            sources,
            trigger,
            refresh,
            current: tokio::sync::Mutex::new(None),
            metrics: None,
        };
        // Build at cold start, not on the first request.
        app.built().await?;
        Ok(app)
    }

    /// The bridge for the current configuration, re-reading SSM / Secrets Manager when the
    /// refresh interval has passed.
    async fn built(&self) -> anyhow::Result<Arc<Built>> {
        let mut slot = self.current.lock().await;
        if let Some(cur) = slot.as_ref() {
            let complete = cur.built.deliver && cur.built.app.webhook_secrets.is_some();
            let refresh = if complete {
                self.refresh
            } else {
                self.refresh.min(INCOMPLETE_REFRESH)
            };
            if cur.fetched.elapsed() < refresh || self.sources.is_empty() {
                return Ok(Arc::clone(&cur.built));
            }
        }
        let mut config = self.base.clone();
        let (param, secret) = self.sources.fetch().await;
        let param = match param {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot read the configuration parameter");
                None
            }
            None => None,
        };
        let secret = match secret {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot read the X credentials secret");
                None
            }
            None => None,
        };
        if let Err(e) = aws_sources::apply(&mut config, param.as_ref(), secret.as_ref()) {
            tracing::error!(error = %e, "an account of the X credentials secret is invalid; it is left out");
        }
        let fingerprint = fingerprint(&config);
        if let Some(cur) = slot.as_mut()
            && cur.fingerprint == fingerprint
        {
            cur.fetched = Instant::now();
            return Ok(Arc::clone(&cur.built));
        }
        let BuiltState { app, deliver } = Box::pin(build_state(
            &config,
            Some(&self.sdk),
            StateExtras {
                inbound_trigger: self.trigger.clone(),
                ..StateExtras::default()
            },
        ))
        .await?;
        let router = server::router(Arc::clone(&app), config.max_body_bytes);
        let watch = match (&app.seen, &app.x_client, config.x.bearer_token.is_some()) {
            (Some(seen), Some(client), true)
                if config.x.catch_up && config.x.delivery == XDelivery::Webhook =>
            {
                let store = Arc::clone(app.bridge.store());
                Some(WebhookWatch {
                    link: XLink::from_parts(
                        config.clone(),
                        store,
                        client.clone(),
                        app.tokens.clone(),
                    )?,
                    bridge: Arc::clone(&app.bridge),
                    seen: Arc::clone(seen),
                    every: Duration::from_millis(config.x.webhook_check_ms),
                })
            }
            _ => None,
        };
        let built = Arc::new(Built {
            app,
            deliver,
            router,
            topic_arn: config.connect.topic_arn.clone(),
            reorder_window_ms: config
                .delivery
                .reorder_window_ms
                .max(config.delivery.outbound_reorder_window_ms),
            inbound_wait_ms: config
                .delivery
                .reorder_window_ms
                .max(config.delivery.buffer_window_ms),
            watch,
        });
        tracing::info!("bridge configuration loaded");
        *slot = Some(Current {
            fetched: Instant::now(),
            fingerprint,
            built: Arc::clone(&built),
        });
        Ok(built)
    }

    /// After each invocation, writes what `emf` (the installed recorder) gathered during it to
    /// `out` as EMF lines: stdout on Lambda, a buffer in tests.
    pub fn with_metrics(mut self, emf: Emf, out: Box<dyn Write + Send>) -> Self {
        self.metrics = Some(MetricsOut {
            emf,
            out: std::sync::Mutex::new(out),
        });
        self
    }

    /// The bridge of the current configuration (tests, admin).
    pub async fn bridge(&self) -> anyhow::Result<Arc<crate::wiring::AppBridge>> {
        Ok(Arc::clone(&self.built().await?.app.bridge))
    }

    /// Handles one invocation; `deadline_ms` is when Lambda stops it (ms since the epoch).
    /// Then writes its metrics (also when it failed).
    pub async fn handle(&self, event: Value, deadline_ms: i64) -> anyhow::Result<Value> {
        let result = Box::pin(self.invoke(event, deadline_ms)).await;
        if let Some(m) = &self.metrics {
            let mut out = m.out.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = m.emf.flush(SystemClock.now_ms(), &mut **out) {
                tracing::warn!(error = %e, "cannot write the invocation's metrics");
            }
        }
        result
    }

    async fn invoke(&self, event: Value, deadline_ms: i64) -> anyhow::Result<Value> {
        let built = self.built().await?;
        let deadline = deadline_ms.saturating_sub(DEADLINE_MARGIN_MS);
        match Invocation::classify(event)? {
            Invocation::HttpV1(req) => {
                let resp = built
                    .router
                    .clone()
                    .oneshot(http::request_v1(&req)?)
                    .await?;
                flush_seen(&built).await;
                Ok(http::response_v1(resp).await)
            }
            Invocation::HttpV2(req) => {
                let resp = built
                    .router
                    .clone()
                    .oneshot(http::request_v2(&req)?)
                    .await?;
                flush_seen(&built).await;
                Ok(http::response_v2(resp).await)
            }
            Invocation::Sns(records) => Box::pin(self.sns(&built, &records, deadline)).await,
            Invocation::Sqs(records) => Ok(Box::pin(self.sqs(&built, &records, deadline)).await),
            Invocation::Sweep => Ok(Box::pin(self.sweep(&built, deadline)).await),
        }
    }

    /// Chat items from SNS. The invocation itself is authenticated by AWS (the function's
    /// resource policy admits only this topic's SNS), so the topic is checked and the signature
    /// is not re-verified here. An error makes Lambda retry the invocation; items already
    /// accepted are deduplicated.
    async fn sns(&self, built: &Built, records: &[Value], deadline: i64) -> anyhow::Result<Value> {
        let bridge = &built.app.bridge;
        let mut accepted = 0;
        let mut lanes = Vec::new();
        for record in records {
            let sns = record
                .get("Sns")
                .context("an SNS record without its Sns object")?;
            let msg = SnsMessage::from_lambda_sns(sns)?;
            match &built.topic_arn {
                Some(topic) if *topic == msg.topic_arn => {}
                Some(_) => {
                    tracing::warn!(topic = %msg.topic_arn, "SNS record of a foreign topic refused");
                    webhooks::refused(Source::Connect, Refusal::ForeignTopic);
                    continue;
                }
                None => anyhow::bail!("XDM_CONNECT_TOPIC_ARN is not set: SNS records are refused"),
            }
            let item = match chat_item_from_notification(&msg) {
                Ok(item) => item,
                Err(e) => {
                    // Retrying cannot fix it: drop it loudly.
                    tracing::error!(error = %e, message_id = %msg.message_id, "SNS notification is not a chat item");
                    webhooks::refused(Source::Connect, Refusal::Malformed);
                    continue;
                }
            };
            let lane = xdm_core::jobs::Lane::chat(&item.initial_contact_id);
            let outcome = bridge.accept_chat_item(item).await.inspect_err(|_| {
                webhooks::refused(Source::Connect, Refusal::StoreUnavailable);
            })?;
            webhooks::handled(Source::Connect, webhooks::chat_item_result(outcome));
            accepted += 1;
            if !lanes.contains(&lane) {
                lanes.push(lane);
            }
        }
        if built.deliver {
            for lane in &lanes {
                bridge
                    .run_due(
                        JobQueue::Outbound,
                        Some(lane),
                        deadline,
                        built.reorder_window_ms + 100,
                    )
                    .await;
            }
        }
        Ok(json!({"accepted": accepted}))
    }

    /// Wake-ups from the FIFO queue: deliver each customer's due messages in order. A record
    /// whose lane could not be looked at is reported as failed so SQS redelivers it.
    async fn sqs(&self, built: &Built, records: &[event::SqsRecord], deadline: i64) -> Value {
        let bridge = &built.app.bridge;
        let mut failures = Vec::new();
        for record in records {
            let wake: WakeUp = match serde_json::from_str(&record.body) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, message_id = %record.message_id, "unreadable wake-up dropped");
                    continue;
                }
            };
            if !built.deliver {
                // The events are in the store; the sweep delivers them once the configuration is
                // complete. Failing the record would only fill the dead-letter queue.
                tracing::warn!(lane = %wake.lane, "delivery is not configured; wake-up acknowledged, events kept");
                continue;
            }
            let summary = bridge
                .run_due(
                    JobQueue::Inbound,
                    Some(&wake.lane),
                    deadline,
                    built.inbound_wait_ms + 100,
                )
                .await;
            if summary.store_errors > 0 {
                failures.push(json!({"itemIdentifier": record.message_id}));
            }
        }
        json!({"batchItemFailures": failures})
    }

    /// The periodic sweep: the X webhook's validity (and a catch-up after it was invalid), then
    /// everything due in both directions.
    async fn sweep(&self, built: &Built, deadline: i64) -> Value {
        if !built.deliver {
            return json!({"ran": 0, "reason": "delivery is not configured"});
        }
        if let Some(watch) = &built.watch
            && let Err(e) = watch.check().await
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot check the X webhook");
        }
        let bridge = &built.app.bridge;
        let wait = built.reorder_window_ms + 100;
        let (inbound, outbound) = tokio::join!(
            bridge.run_due(JobQueue::Inbound, None, deadline, wait),
            bridge.run_due(JobQueue::Outbound, None, deadline, wait),
        );
        // The gauges cost store queries: only when they go somewhere.
        if self.metrics.is_some() {
            gauges::sample(&built.app).await;
        }
        json!({"inbound": inbound.ran, "outbound": outbound.ran, "at": SystemClock.now_ms()})
    }
}

/// Writes the newest DM each account was seen with (the next catch-up's start): a Lambda
/// instance has no flusher running between invocations.
async fn flush_seen(built: &Built) {
    if let Some(seen) = &built.app.seen
        && let Err(e) = seen.flush(SystemClock.now_ms()).await
    {
        tracing::warn!(error = %e, "cannot record the newest DM seen");
    }
}

/// What, in the configuration, requires rebuilding the bridge when it changes.
fn fingerprint(c: &Config) -> String {
    use sha2::Digest;
    let secret = |s: &Option<secrecy::SecretString>| {
        s.as_ref()
            .map(|v| v.expose_secret().to_owned())
            .unwrap_or_default()
    };
    let text = [
        secret(&c.x.consumer_key),
        secret(&c.x.consumer_secret),
        secret(&c.x.access_token),
        secret(&c.x.access_token_secret),
        secret(&c.x.bearer_token),
        secret(&c.x.client_secret),
        c.x.client_id.clone().unwrap_or_default(),
        c.connect.instance_id.clone().unwrap_or_default(),
        c.connect.contact_flow_id.clone().unwrap_or_default(),
    ]
    .into_iter()
    .chain(c.x.accounts.iter().map(|a| {
        let (token, token_secret) = a
            .oauth1
            .as_ref()
            .map(|(t, s)| (t.expose_secret().to_owned(), s.expose_secret().to_owned()))
            .unwrap_or_default();
        let attributes: Vec<String> = a
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{}|{token}|{token_secret}|{}|{}",
            a.user_id,
            a.contact_flow_id.as_deref().unwrap_or_default(),
            attributes.join("&")
        )
    }))
    .collect::<Vec<_>>()
    .join("\n");
    // Hashed: the fingerprint is kept beside the state and must not be a copy of the secrets.
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
