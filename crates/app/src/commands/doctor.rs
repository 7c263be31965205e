//! `xdm-connect doctor`: one line per check, `OK` or `FAIL` with the one-line fix; exit code 1 on
//! any FAIL. `WARN` lines (a configuration file or store files others may read or change) name
//! their fix too but do not fail. The store check opens the store, which on SQLite runs the
//! integrity check (a damaged file fails it), and says which `serve` holds the store's instance
//! lock, if any. Online by default — it asks X, Amazon Connect and SNS whether the configured
//! credentials and resources really work (fake-but-complete credentials fail here);
//! `--offline` checks the configuration and the store only. On AWS Lambda's layout
//! (`CONFIG_PARAM_NAME`, `SECRET_ARN`) it reads the SSM parameter and the secret the functions use.
#![allow(clippy::print_stdout)]

use std::path::Path;

use aws_config::{BehaviorVersion, SdkConfig};
use clap::Args;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::{ConnectError, Store};
use xdm_store::{AnyStore, LockState};

use xdm_amazon_connect::DescribeError;
use xdm_amazon_connect::sns::{SubscriptionState, TopicCheck};

use crate::config::{Config, XDelivery};
use crate::configured::Configured;
use crate::wiring::{configured_connect_client, instance_lock_state, open_store};
use crate::x_link::{XLink, event_types};

#[derive(Debug, Args, Default, Clone)]
pub struct DoctorArgs {
    /// Check the configuration and the store only (no call to X, Connect or SNS).
    #[arg(long)]
    pub offline: bool,
}

/// The check lines, printed as they are made; counts the failures.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub lines: Vec<String>,
    pub failures: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.line(format!("OK   {what}: {detail}"));
    }

    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, fix: impl std::fmt::Display) {
        self.line(format!("FAIL {what}: {detail} — fix: {fix}"));
        self.failures += 1;
    }

    /// Unsafe but not fatal: printed, not counted as a failure. `detail` carries its fix.
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.line(format!("WARN {what}: {detail}"));
    }

    fn line(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }
}

pub async fn run(config_path: Option<&Path>, args: DoctorArgs) -> anyhow::Result<()> {
    let mut config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL configuration: {e} — fix: correct the file or the variable it names");
            anyhow::bail!("1 problem found");
        }
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    if let Err(e) = crate::lambda::aws_sources::apply_from_env(&mut config, &sdk).await {
        println!(
            "FAIL AWS configuration sources: {e} — fix: check CONFIG_PARAM_NAME / SECRET_ARN and this role's access to them"
        );
        anyhow::bail!("1 problem found");
    }
    let failures = check_with(&config, args.offline, None, Some(&sdk))
        .await
        .failures;
    if failures > 0 {
        anyhow::bail!("{failures} problem(s) found");
    }
    println!("all checks passed");
    Ok(())
}

/// Runs every check; returns how many failed. `link`: clients already built (setup).
pub async fn check(config: &Config, offline: bool, link: Option<&XLink>) -> Report {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    check_with(config, offline, link, Some(&sdk)).await
}

/// [`check`] with the AWS configuration given (tests point it at the sandbox).
pub async fn check_with(
    config: &Config,
    offline: bool,
    link: Option<&XLink>,
    sdk: Option<&SdkConfig>,
) -> Report {
    let mut r = Report::default();
    let missing = config.missing_for_delivery();
    if missing.is_empty() {
        r.ok("configuration", "complete");
    } else {
        r.fail(
            "configuration",
            format!("not set: {}", missing.join(", ")),
            "set them (environment or xdm-connect.toml), or run `xdm-connect setup`",
        );
    }
    for warning in &config.file_warnings {
        r.warn("configuration file", warning);
    }
    check_instance_lock(&mut r, config);

    // The caller's store when it has one open (`setup`): a second opening would run the
    // start-up checks again and, on SQLite, hold a second connection to the file.
    let opened = match link {
        Some(l) => Ok(std::sync::Arc::clone(&l.store)),
        None => open_store(&config.store, sdk)
            .await
            .map(std::sync::Arc::new),
    };
    let store = match opened {
        Ok(store) => {
            if let AnyStore::Sqlite(sqlite) = &*store {
                for warning in sqlite.warnings() {
                    r.warn("store files", warning);
                }
            }
            let read = async {
                let failed = store
                    .jobs(JobQueue::Inbound, Some(JobState::Failed), 1000)
                    .await?
                    .len()
                    + store
                        .jobs(JobQueue::Outbound, Some(JobState::Failed), 1000)
                        .await?
                        .len();
                store.records("x/").await?;
                Ok::<usize, xdm_core::ports::StoreError>(failed)
            };
            match read.await {
                Ok(failed) => {
                    r.ok(
                        "store",
                        format!(
                            "{} readable ({failed} failed event(s){})",
                            config.store,
                            if failed > 0 {
                                "; `xdm-connect inbox list --state failed`"
                            } else {
                                ""
                            }
                        ),
                    );
                    Some(store)
                }
                Err(e) => {
                    r.fail("store", format!("{}: {e}", config.store), store_fix(config));
                    None
                }
            }
        }
        Err(e) => {
            r.fail(
                "store",
                format!("{}: {e:#}", config.store),
                store_fix(config),
            );
            None
        }
    };
    if offline {
        return r;
    }

    // ---- X ---------------------------------------------------------------------------------
    let owned;
    let link = match (link, store) {
        (Some(l), _) => Some(l),
        (None, Some(store)) => match XLink::with_store(config.clone(), store) {
            Ok(l) => {
                owned = l;
                Some(&owned)
            }
            Err(e) => {
                r.fail(
                    "X clients",
                    format!("{e:#}"),
                    "correct the X settings it names",
                );
                None
            }
        },
        (None, None) => None,
    };
    if let Some(link) = link {
        check_x(&mut r, link).await;
    }

    // ---- Amazon Connect and SNS -----------------------------------------------------------
    check_connect(&mut r, config, sdk).await;
    r
}

/// Who serves from the SQLite file (the instance lock; docs/setup.md, "One `serve` per SQLite
/// file"). Informational: `doctor` may run beside a `serve`.
fn check_instance_lock(r: &mut Report, config: &Config) {
    match instance_lock_state(&config.store) {
        Ok(None) | Err(_) => {} // not a SQLite file; a bad XDM_STORE is the store check's
        Ok(Some(LockState::Free)) => r.ok("store lock", "no xdm-connect is serving this store"),
        Ok(Some(LockState::Held(Some(holder)))) => r.ok(
            "store lock",
            format!("held by the xdm-connect serving this store ({holder})"),
        ),
        Ok(Some(LockState::Held(None))) => r.ok(
            "store lock",
            "held by an xdm-connect serving this store (its lock file does not say which)",
        ),
    }
}

fn store_fix(config: &Config) -> String {
    if config.store.starts_with("sqlite:") {
        "check XDM_STORE; a damaged SQLite file: stop xdm-connect, keep the file, and recover it with `sqlite3 FILE .recover | sqlite3 NEW` or restore a backup (docs/setup.md, \"A damaged SQLite store\")".to_owned()
    } else {
        "check XDM_STORE, the tables (docs/aws-tables.md) and this role's DynamoDB permissions"
            .to_owned()
    }
}

async fn check_x(r: &mut Report, link: &XLink) {
    // Read once: the subscriptions check below needs the same accounts.
    let accounts = link.business_accounts().await;
    match &accounts {
        Ok(accounts) => {
            for a in accounts {
                match link.client.me(&a.id).await {
                    Ok(me) => r.ok(
                        "X credentials",
                        format!(
                            "{} ({})",
                            me.username
                                .as_deref()
                                .map_or(a.id.to_string(), |u| format!("@{u}")),
                            a.auth
                        ),
                    ),
                    Err(e) => r.fail(
                        "X credentials",
                        format!("account {}: {e}", a.id),
                        if a.auth == "OAuth 2.0" {
                            "run `xdm-connect x login`"
                        } else {
                            "check XDM_X_CONSUMER_KEY/SECRET and XDM_X_ACCESS_TOKEN/SECRET (developer portal, Keys and tokens)"
                        },
                    ),
                }
            }
        }
        Err(e) => r.fail(
            "X credentials",
            format!("{e:#}"),
            "run `xdm-connect x login`, or check the OAuth 1.0a settings",
        ),
    }
    if let Some(tokens) = &link.tokens {
        match tokens.status().await {
            Ok(statuses) if statuses.is_empty() => r.fail(
                "OAuth 2.0 tokens",
                "no account logged in",
                "run `xdm-connect x login`",
            ),
            Ok(statuses) => {
                for s in statuses {
                    match &s.needs_login {
                        Some(reason) => r.fail(
                            "OAuth 2.0 tokens",
                            format!("account {}: {reason}", s.business),
                            "run `xdm-connect x login`",
                        ),
                        None => r.ok(
                            "OAuth 2.0 tokens",
                            format!(
                                "account {}: access token valid for {} more minute(s), refreshed automatically",
                                s.business,
                                (s.expires_at_ms - xdm_core::ports::Clock::now_ms(&xdm_core::ports::SystemClock)).max(0) / 60_000
                            ),
                        ),
                    }
                }
            }
            Err(e) => r.fail("OAuth 2.0 tokens", e, "check the store"),
        }
    }
    let Some(app) = &link.app else {
        r.fail(
            "X app bearer token",
            "XDM_X_BEARER_TOKEN is not set",
            "copy the app's bearer token from the developer portal (Keys and tokens)",
        );
        return;
    };
    let webhooks = match app.webhooks().await {
        Ok(w) => w,
        Err(e) => {
            r.fail(
                "X app bearer token",
                e,
                "check XDM_X_BEARER_TOKEN (developer portal, Keys and tokens)",
            );
            return;
        }
    };
    let mut webhook_id = None;
    if link.config.x.delivery == XDelivery::Webhook {
        match link.webhook_id(None).await {
            Ok(Some(id)) => match webhooks.iter().find(|w| w.id == id) {
                Some(w) if w.valid => {
                    r.ok("X webhook", format!("{} {} (valid)", w.id, w.url));
                    webhook_id = Some(id);
                }
                Some(w) => r.fail(
                    "X webhook",
                    format!("{} {} is marked invalid by X", w.id, w.url),
                    "start `xdm-connect serve` at that URL, then `xdm-connect x webhook validate`",
                ),
                None => r.fail(
                    "X webhook",
                    format!("{id} is not registered"),
                    "`xdm-connect x webhook create URL`",
                ),
            },
            Ok(None) => r.fail(
                "X webhook",
                "none registered for this bridge",
                "`xdm-connect x webhook create https://<host>/webhooks/x` (or XDM_X_DELIVERY=stream)",
            ),
            Err(e) => r.fail("X webhook", format!("{e:#}"), "check XDM_X_BEARER_TOKEN"),
        }
    } else {
        r.ok("X delivery", "activity stream (no webhook needed)");
    }
    match (app.activity_subscriptions().await, &accounts) {
        (Ok(subs), Ok(accounts)) => {
            for a in accounts {
                let wanted = event_types(&link.config, &a.id);
                let missing: Vec<&str> = wanted
                    .iter()
                    .copied()
                    .filter(|t| {
                        !subs.iter().any(|s| {
                            s.event_type == *t
                                && s.user_id.as_deref() == Some(a.id.as_str())
                                && (webhook_id.is_none() || s.webhook_id == webhook_id)
                        })
                    })
                    .collect();
                if missing.is_empty() {
                    r.ok("X subscriptions", format!("{a}: {}", wanted.join(", ")));
                } else {
                    r.fail(
                        "X subscriptions",
                        format!("{a}: missing {}", missing.join(", ")),
                        "`xdm-connect x subscribe`",
                    );
                }
            }
        }
        (Err(e), _) => r.fail("X subscriptions", e, "check XDM_X_BEARER_TOKEN"),
        (_, Err(e)) => r.fail(
            "X subscriptions",
            format!("{e:#}"),
            "run `xdm-connect x login`",
        ),
    }
}

async fn check_connect(r: &mut Report, config: &Config, sdk: Option<&SdkConfig>) {
    let c = &config.connect;
    let (Some(instance), Some(flow)) = (&c.instance_id, &c.contact_flow_id) else {
        r.fail(
            "Amazon Connect",
            "XDM_CONNECT_INSTANCE_ID / XDM_CONNECT_CONTACT_FLOW_ID are not set",
            "set them (the UUIDs at the end of the instance's and the flow's ARNs)",
        );
        return;
    };
    let Configured::Ready(client) = configured_connect_client(config, sdk) else {
        r.fail(
            "Amazon Connect",
            "the Connect client cannot be built",
            "set AWS_REGION and the Connect settings",
        );
        return;
    };
    let api = client.contact_client();
    match api.describe_instance(instance).await {
        Ok(i) if i.is_active() => r.ok(
            "Amazon Connect instance",
            format!("{} ({instance})", i.alias.as_deref().unwrap_or("no alias")),
        ),
        Ok(i) => r.fail(
            "Amazon Connect instance",
            format!("{instance} is {}", i.status),
            "wait for the instance to be ACTIVE, or set XDM_CONNECT_INSTANCE_ID to one that is",
        ),
        Err(DescribeError::AccessDenied(m)) => r.fail(
            "Amazon Connect instance",
            format!("{instance}: access denied ({m})"),
            "allow connect:DescribeInstance to these credentials (only doctor needs it)",
        ),
        Err(e) => r.fail(
            "Amazon Connect instance",
            format!("{instance}: {e}"),
            "check XDM_CONNECT_INSTANCE_ID, AWS_REGION and the AWS credentials",
        ),
    }
    match api.describe_contact_flow(instance, flow).await {
        Ok(f) if f.problems().is_empty() => r.ok(
            "Amazon Connect contact flow",
            format!("{} ({flow})", f.name),
        ),
        Ok(f) => r.fail(
            "Amazon Connect contact flow",
            format!("{} ({flow}): {}", f.name, f.problems().join("; ")),
            "publish an inbound chat flow and set XDM_CONNECT_CONTACT_FLOW_ID to it",
        ),
        Err(DescribeError::AccessDenied(m)) => r.fail(
            "Amazon Connect contact flow",
            format!("{flow}: access denied ({m})"),
            "allow connect:DescribeContactFlow to these credentials (only doctor needs it)",
        ),
        Err(e) => r.fail(
            "Amazon Connect contact flow",
            format!("{flow}: {e}"),
            "check XDM_CONNECT_CONTACT_FLOW_ID (a published chat flow of this instance)",
        ),
    }
    if let Some(profiles) = client.profiles() {
        let domain = profiles.domain();
        match profiles.check().await {
            Ok(()) => r.ok("Customer Profiles domain", domain),
            Err(ConnectError::NotFound(m)) => r.fail(
                "Customer Profiles domain",
                format!("{domain}: not found ({m})"),
                "set XDM_CONNECT_PROFILES_DOMAIN to a domain of this Region (Amazon Connect console → Customer profiles), or unset it",
            ),
            Err(ConnectError::Unauthorized(m)) => r.fail(
                "Customer Profiles domain",
                format!("{domain}: access denied ({m})"),
                "allow profile:SearchProfiles, profile:CreateProfile and profile:UpdateProfile on the domain to these credentials",
            ),
            Err(e) => r.fail(
                "Customer Profiles domain",
                format!("{domain}: {e}"),
                "check XDM_CONNECT_PROFILES_DOMAIN, AWS_REGION and the AWS credentials",
            ),
        }
    }
    let Some(topic) = &c.topic_arn else {
        r.fail(
            "SNS topic",
            "XDM_CONNECT_TOPIC_ARN is not set",
            "create a standard SNS topic and set its ARN",
        );
        return;
    };
    let Some(sdk) = sdk else {
        return;
    };
    let endpoint = config.sns_endpoint_url();
    let check = TopicCheck::new(sdk, None);
    match check.check(topic, endpoint.as_deref()).await {
        Ok(report) if !report.exists => r.fail(
            "SNS topic",
            format!("{topic} does not exist"),
            "create a standard SNS topic in the instance's Region and set XDM_CONNECT_TOPIC_ARN",
        ),
        Ok(report) => {
            if report.fifo {
                r.fail(
                    "SNS topic",
                    format!("{topic} is FIFO"),
                    "Connect streams only to a standard topic: create one",
                );
            } else {
                r.ok("SNS topic", format!("{topic} exists"));
            }
            if report.connect_may_publish {
                r.ok("SNS topic policy", "connect.amazonaws.com may publish");
            } else {
                r.fail(
                    "SNS topic policy",
                    report
                        .policy_problem
                        .as_deref()
                        .unwrap_or("it does not let connect.amazonaws.com publish"),
                    "add an Allow statement for Service connect.amazonaws.com, Action sns:Publish (docs/setup.md)",
                );
            }
            if let Some(endpoint) = &endpoint {
                match report.subscription {
                    Some(SubscriptionState::Confirmed) => {
                        r.ok("SNS subscription", format!("{endpoint} confirmed"));
                        if let Some(arn) = &report.subscription_arn {
                            check_filter_policy(r, &check, arn).await;
                        }
                    }
                    Some(SubscriptionState::Pending) => r.fail(
                        "SNS subscription",
                        format!("{endpoint} is pending confirmation"),
                        "with `xdm-connect serve` answering there, request the confirmation again (SNS console: Subscriptions, Request confirmation); the bridge confirms it itself",
                    ),
                    _ => r.fail(
                        "SNS subscription",
                        format!("{endpoint} is not subscribed"),
                        "subscribe it to the topic (HTTPS, raw message delivery off)",
                    ),
                }
            }
        }
        Err(e) => r.fail(
            "SNS topic",
            format!("{topic}: {e}"),
            "check XDM_CONNECT_TOPIC_ARN, AWS_REGION and the credentials' sns:GetTopicAttributes",
        ),
    }
}

/// The echo filter of the bridge's subscription: without it every message the customer writes
/// comes back (a second request per DM, dropped by the bridge) — a warning, not a failure.
async fn check_filter_policy(r: &mut Report, check: &TopicCheck, subscription_arn: &str) {
    use xdm_amazon_connect::sns::{ECHO_FILTER_POLICY, ECHO_FILTER_POLICY_SCOPE};
    let set_it = format!(
        "aws sns set-subscription-attributes --subscription-arn {subscription_arn} \
--attribute-name FilterPolicy --attribute-value '{ECHO_FILTER_POLICY}' (docs/setup.md)"
    );
    match check.filter_policy(subscription_arn).await {
        Ok(filter) if filter.is_echo_filter() => r.ok(
            "SNS filter policy",
            "the customer's own messages are not streamed back",
        ),
        Ok(filter) if filter.policy.is_none() => r.warn(
            "SNS filter policy",
            format!(
                "none: each message the customer writes comes back to the bridge and is dropped — set it: {set_it}"
            ),
        ),
        Ok(filter) => r.warn(
            "SNS filter policy",
            format!(
                "not the bridge's ({} on {}): it may keep items for the customer from the bridge — replace it: {set_it}",
                filter.policy.unwrap_or_default(),
                filter.scope.as_deref().unwrap_or(ECHO_FILTER_POLICY_SCOPE)
            ),
        ),
        Err(e) => r.warn(
            "SNS filter policy",
            format!("cannot be read ({e}; only doctor needs sns:GetSubscriptionAttributes)"),
        ),
    }
}
