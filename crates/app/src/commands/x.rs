//! `xdm-connect x …`: the X side of going live and of recovering — OAuth 2.0 login, the webhook,
//! the X Activity API subscriptions, replay and catch-up.
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xdm_core::Bridge;
use xdm_core::ports::SystemClock;
use xdm_x::manage::{ManageError, ManageReason, NewSubscription};

use crate::config::{Config, XDelivery};
use crate::configured::Configured;
use crate::wiring::AppBridge;
use crate::x_events::catch_up::{self, Progress};
use crate::x_link::{SUBSCRIPTION_TAG, XLink, event_types, same_url};

pub mod chat_keys;
pub mod login;

#[derive(Debug, Subcommand)]
pub enum XCommand {
    /// Authorise a business account with OAuth 2.0 (PKCE); its tokens are kept in the store.
    Login(login::LoginArgs),
    /// The webhook X posts events to (app bearer token).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Subscribe every business account to its DM events; running it again changes nothing.
    Subscribe(SubscribeArgs),
    /// List the app's subscriptions (ours are tagged `xdm-connect`).
    Subscriptions(ApiArgs),
    /// Remove the subscriptions this bridge created.
    Unsubscribe(SubscribeArgs),
    /// Ask X to deliver again what it delivered (or tried to) to the webhook between two times
    /// (X keeps 24 hours).
    Replay(ReplayArgs),
    /// Read the DMs received since a time back from X and accept the ones the bridge lacks.
    CatchUp(CatchUpArgs),
    /// The business account's X Chat keys (end-to-end encrypted messages).
    #[command(subcommand)]
    ChatKeys(chat_keys::ChatKeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register URL (the bridge must answer X's CRC there) and remember its id.
    Create { url: Option<String> },
    /// The app's webhooks and whether X considers them valid.
    List,
    /// Make X run the CRC again (re-enables an invalid webhook).
    Validate { id: Option<String> },
    /// Delete a webhook.
    Delete { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Api {
    /// X Activity API (`/2/activity/subscriptions`).
    #[default]
    Xaa,
    /// Account Activity API, while X still serves it (it ends on 2027-01-01).
    Aaa,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[arg(long, value_enum, default_value_t = Api::Xaa)]
    pub api: Api,
    /// The webhook to use (default: XDM_X_WEBHOOK_ID, the remembered one, or the one at
    /// XDM_X_WEBHOOK_URL).
    #[arg(long)]
    pub webhook_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start, RFC 3339 (`2026-12-04T10:00:00Z`), minute precision.
    #[arg(long)]
    pub from: String,
    /// End, RFC 3339, minute precision (inclusive).
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub webhook_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct CatchUpArgs {
    /// RFC 3339 time (`2026-12-04T10:00:00Z`) or a duration back from now (`90m`, `6h`, `2d`).
    #[arg(long)]
    pub since: String,
}

pub async fn run(config_path: Option<&Path>, command: XCommand) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let link = XLink::open(config).await?;
    match command {
        XCommand::Login(args) => login::run(&link, &args, login::Opener::System).await,
        XCommand::Webhook(cmd) => webhook(&link, cmd).await,
        XCommand::Subscribe(args) => {
            let report = subscribe(&link, args.api.api, args.api.webhook_id.as_deref()).await?;
            println!("{report}");
            Ok(())
        }
        XCommand::Subscriptions(args) => subscriptions(&link, &args).await,
        XCommand::Unsubscribe(args) => unsubscribe(&link, &args.api).await,
        XCommand::Replay(args) => replay(&link, &args).await,
        XCommand::ChatKeys(cmd) => chat_keys::run(config_path, &link, cmd).await,
        XCommand::CatchUp(args) => {
            let since = parse_since(&args.since, OffsetDateTime::now_utc())?;
            catch_up_all(&link, since, true).await.map(|_| ())
        }
    }
}

/// What makes a webhook refusal actionable.
fn explain(e: ManageError, url: &str) -> anyhow::Error {
    match e.reason() {
        Some(ManageReason::CrcValidationFailed) => anyhow::anyhow!(
            "X's CRC check of {url} failed: is `xdm-connect serve` answering at that URL (HTTPS, no port) with the app's secrets (XDM_X_CLIENT_SECRET / XDM_X_CONSUMER_SECRET, XDM_X_CRC_KEY)? ({e})"
        ),
        Some(ManageReason::DuplicateUrlFailed) => anyhow::anyhow!(
            "{url} is already registered: `xdm-connect x webhook list` shows its id ({e})"
        ),
        Some(ManageReason::WebhookLimitExceeded) => anyhow::anyhow!(
            "the app has as many webhooks as its tier allows: delete one with `xdm-connect x webhook delete ID` ({e})"
        ),
        _ => anyhow::Error::new(e),
    }
}

/// Registers `url` unless it is registered already (then it is validated again if X marked it
/// invalid). Returns its id, remembered in the store.
pub async fn ensure_webhook(link: &XLink, url: &str) -> anyhow::Result<(String, bool)> {
    check_webhook_url(&link.config, url)?;
    let app = link.app()?;
    let registered = app.webhooks().await?;
    if let Some(existing) = registered.iter().find(|w| same_url(&w.url, url)) {
        if !existing.valid {
            let valid = app
                .validate_webhook(&existing.id)
                .await
                .map_err(|e| explain(e, url))?;
            if !valid {
                bail!(
                    "X still marks the webhook {} ({url}) invalid after a new CRC check: is the bridge answering there?",
                    existing.id
                );
            }
        }
        link.remember_webhook(&existing.id, url).await?;
        return Ok((existing.id.clone(), false));
    }
    let created = app.create_webhook(url).await.map_err(|e| explain(e, url))?;
    link.remember_webhook(&created.id, url).await?;
    Ok((created.id, true))
}

/// X takes only public `https://` URLs without a port; an emulator (another XDM_X_API_URL) is
/// given whatever it accepts.
fn check_webhook_url(config: &Config, url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let talking_to_x = config.x.api_url.trim_end_matches('/') == crate::config::DEFAULT_X_API_URL;
    if talking_to_x && (parsed.scheme() != "https" || parsed.port().is_some()) {
        bail!("X accepts only https:// webhook URLs without a port, not `{url}`");
    }
    Ok(())
}

async fn webhook(link: &XLink, cmd: WebhookCommand) -> anyhow::Result<()> {
    match cmd {
        WebhookCommand::Create { url } => {
            let url = url.or_else(|| link.config.x.webhook_url.clone()).context(
                "give the URL (`x webhook create https://host/webhooks/x`) or set XDM_X_WEBHOOK_URL / XDM_PUBLIC_URL",
            )?;
            let (id, created) = ensure_webhook(link, &url).await?;
            if created {
                println!("webhook {id} registered for {url} (CRC passed)");
            } else {
                println!("webhook {id} was already registered for {url} and is valid");
            }
        }
        WebhookCommand::List => {
            let hooks = link.app()?.webhooks().await?;
            if hooks.is_empty() {
                println!("no webhook registered");
            }
            for w in hooks {
                println!(
                    "{}  {}  {}",
                    w.id,
                    if w.valid { "valid  " } else { "INVALID" },
                    w.url
                );
            }
        }
        WebhookCommand::Validate { id } => {
            let id = match id {
                Some(id) => id,
                None => link
                    .webhook_id(None)
                    .await?
                    .context("no webhook of this bridge is registered: give its id")?,
            };
            let valid = link
                .app()?
                .validate_webhook(&id)
                .await
                .map_err(|e| explain(e, &id))?;
            if !valid {
                bail!("X ran the CRC on webhook {id} and still considers it invalid");
            }
            println!("webhook {id} is valid");
        }
        WebhookCommand::Delete { id } => {
            link.app()?.delete_webhook(&id).await?;
            link.forget_webhook(&id).await?;
            println!("webhook {id} deleted");
        }
    }
    Ok(())
}

/// What `subscribe` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeReport {
    pub created: Vec<String>,
    pub kept: Vec<String>,
    pub updated: Vec<String>,
}

impl std::fmt::Display for SubscribeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (what, list) in [
            ("created", &self.created),
            ("updated", &self.updated),
            ("already there", &self.kept),
        ] {
            for s in list {
                writeln!(f, "{what:<14} {s}")?;
            }
        }
        write!(
            f,
            "{} created, {} updated, {} already there",
            self.created.len(),
            self.updated.len(),
            self.kept.len()
        )
    }
}

/// Subscribes every business account to `dm.received`, `dm.read` and `dm.indicate_typing`
/// (X Activity API; with the configured webhook, or none in stream mode), or to the Account
/// Activity API. Idempotent: what exists is kept.
pub async fn subscribe(
    link: &XLink,
    api: Api,
    webhook_id: Option<&str>,
) -> anyhow::Result<SubscribeReport> {
    let accounts = link.business_accounts().await?;
    let app = link.app()?;
    let mut report = SubscribeReport::default();
    let stream = link.config.x.delivery == XDelivery::Stream;
    let webhook = if stream && api == Api::Xaa {
        None
    } else {
        Some(link.webhook_id(webhook_id).await?.context(
            "no webhook registered for this bridge: run `xdm-connect x webhook create URL` first (or use XDM_X_DELIVERY=stream)",
        )?)
    };
    if api == Api::Aaa {
        let webhook = webhook.unwrap_or_default();
        let subscribed = app.account_activity_subscriptions(&webhook).await?;
        for account in accounts {
            let what = format!("Account Activity {account} → webhook {webhook}");
            if subscribed.contains(&account.id) {
                report.kept.push(what);
                continue;
            }
            link.client
                .subscribe_account_activity(&account.id, &webhook)
                .await?;
            report.created.push(what);
        }
        return Ok(report);
    }
    let existing = app.activity_subscriptions().await?;
    for account in accounts {
        for event_type in event_types(&link.config, &account.id) {
            let what = format!(
                "{event_type} {account} → {}",
                webhook
                    .as_deref()
                    .map_or("the stream".to_owned(), |w| format!("webhook {w}"))
            );
            let same = existing.iter().find(|s| {
                s.event_type == event_type && s.user_id.as_ref() == Some(&account.id.to_string())
            });
            match same {
                Some(s) if s.webhook_id.as_deref() == webhook.as_deref() => {
                    report.kept.push(what);
                }
                Some(s) if s.tag.as_deref() == Some(SUBSCRIPTION_TAG) && webhook.is_some() => {
                    app.update_activity_subscription(
                        &s.id,
                        Some(SUBSCRIPTION_TAG),
                        webhook.as_deref(),
                    )
                    .await?;
                    report.updated.push(what);
                }
                _ => {
                    let new = NewSubscription {
                        event_type: event_type.to_owned(),
                        user_id: account.id.to_string(),
                        tag: Some(SUBSCRIPTION_TAG.to_owned()),
                        webhook_id: webhook.clone(),
                    };
                    match link
                        .client
                        .create_activity_subscription(&account.id, &new)
                        .await
                    {
                        Ok(_) => report.created.push(what),
                        Err(e) if e.reason() == Some(ManageReason::DuplicateSubscriptionFailed) => {
                            report.kept.push(what)
                        }
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!(
                                "X refused the subscription {event_type} for {account}"
                            )));
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

async fn subscriptions(link: &XLink, args: &ApiArgs) -> anyhow::Result<()> {
    let app = link.app()?;
    if args.api == Api::Aaa {
        let webhook = link
            .webhook_id(args.webhook_id.as_deref())
            .await?
            .context("no webhook registered for this bridge")?;
        for user in app.account_activity_subscriptions(&webhook).await? {
            println!("Account Activity  user {user}  webhook {webhook}");
        }
        return Ok(());
    }
    let subs = app.activity_subscriptions().await?;
    if subs.is_empty() {
        println!("no subscriptions");
    }
    for s in subs {
        let ours = s.tag.as_deref() == Some(SUBSCRIPTION_TAG);
        println!(
            "{} {:<20} {:<22} user {:<20} {}",
            if ours { "*" } else { " " },
            s.id,
            s.event_type,
            s.user_id.as_deref().unwrap_or("-"),
            s.webhook_id
                .as_deref()
                .map_or("stream".to_owned(), |w| format!("webhook {w}"))
        );
    }
    println!("(* = created by xdm-connect)");
    Ok(())
}

pub async fn unsubscribe(link: &XLink, args: &ApiArgs) -> anyhow::Result<()> {
    let app = link.app()?;
    if args.api == Api::Aaa {
        let webhook = link
            .webhook_id(args.webhook_id.as_deref())
            .await?
            .context("no webhook registered for this bridge")?;
        for account in link.business_accounts().await? {
            app.unsubscribe_account_activity(&webhook, &account.id)
                .await?;
            println!("removed the Account Activity subscription of {account}");
        }
        return Ok(());
    }
    let mut removed = 0;
    for s in app.activity_subscriptions().await? {
        if s.tag.as_deref() == Some(SUBSCRIPTION_TAG) {
            app.delete_activity_subscription(&s.id).await?;
            println!("removed {} {}", s.id, s.event_type);
            removed += 1;
        }
    }
    println!("{removed} subscription(s) removed");
    Ok(())
}

pub async fn replay(link: &XLink, args: &ReplayArgs) -> anyhow::Result<()> {
    let from = parse_time("--from", &args.from)?;
    let to = parse_time("--to", &args.to)?;
    if to < from {
        bail!("--to is before --from");
    }
    let now = OffsetDateTime::now_utc();
    if now - from > time::Duration::hours(24) {
        bail!("X replays only the last 24 hours: --from is older");
    }
    let webhook = link
        .webhook_id(args.webhook_id.as_deref())
        .await?
        .context("no webhook registered for this bridge: give --webhook-id")?;
    let job = link.app()?.replay(&webhook, from, to).await?;
    println!(
        "replay job {} created: X delivers again what it sent to webhook {webhook} between {} and {} (duplicates are dropped by the bridge)",
        job.job_id,
        from.format(&Rfc3339).unwrap_or_default(),
        to.format(&Rfc3339).unwrap_or_default()
    );
    Ok(())
}

fn parse_time(flag: &str, v: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(v.trim(), &Rfc3339)
        .with_context(|| format!("{flag}: `{v}` is not an RFC 3339 time like 2026-12-04T10:00:00Z"))
}

/// `--since`: an RFC 3339 time or `<n>m|h|d` back from `now`.
pub fn parse_since(v: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    let v = v.trim();
    if let Some((n, unit)) = v
        .char_indices()
        .last()
        .map(|(i, c)| (&v[..i], c))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        let n: i64 = n.parse()?;
        let back = match unit {
            'm' => time::Duration::minutes(n),
            'h' => time::Duration::hours(n),
            'd' => time::Duration::days(n),
            _ => bail!("--since: use an RFC 3339 time or a duration like 90m, 6h, 2d"),
        };
        return Ok(now - back);
    }
    parse_time("--since", v)
}

/// Reads back and accepts every business account's DMs since `since`; the running `serve`
/// delivers them (it looks at the store every second).
pub async fn catch_up_all(
    link: &XLink,
    since: OffsetDateTime,
    verbose: bool,
) -> anyhow::Result<Vec<catch_up::CatchUpReport>> {
    let bridge: Arc<AppBridge> = Bridge::new(
        Arc::clone(&link.store),
        Configured::Missing("accepting only".into()),
        Configured::Missing("accepting only".into()),
        SystemClock,
        link.config.bridge_config(),
    );
    let since_ms = i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut reports = Vec::new();
    for account in link.business_accounts().await? {
        let mut show = |p: Progress| {
            if !verbose {
                return;
            }
            match p {
                Progress::Page {
                    pages,
                    read,
                    oldest_ms,
                    ..
                } => println!(
                    "  {account}: page {pages}, {read} DM(s) so far{}",
                    oldest_ms
                        .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .map(|t| format!(", back to {t}"))
                        .unwrap_or_default()
                ),
                Progress::Waiting { until_s, .. } => println!(
                    "  {account}: X's rate limit (15 reads / 15 min): waiting until {}",
                    OffsetDateTime::from_unix_timestamp(until_s)
                        .ok()
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .unwrap_or_default()
                ),
                Progress::Accepted { .. } => {}
            }
        };
        let report =
            catch_up::catch_up(&bridge, &link.client, &account.id, since_ms, &mut show).await?;
        if verbose {
            println!(
                "{account}: {} DM(s) read back, {} new (accepted for delivery), {} already had",
                report.read, report.accepted, report.duplicates
            );
        }
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now = OffsetDateTime::parse("2026-12-04T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(
            parse_since("90m", now).unwrap(),
            OffsetDateTime::parse("2026-12-04T10:30:00Z", &Rfc3339).unwrap()
        );
        assert_eq!(
            parse_since("2d", now).unwrap(),
            OffsetDateTime::parse("2026-12-02T12:00:00Z", &Rfc3339).unwrap()
        );
        assert_eq!(
            parse_since("2026-12-04T11:00:00Z", now).unwrap(),
            OffsetDateTime::parse("2026-12-04T11:00:00Z", &Rfc3339).unwrap()
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5w", now).is_err());
    }
}
