//! `xdm-connect setup`: from nothing to live in one run — writes `xdm-connect.toml` (mode 0600),
//! logs the business account in (OAuth 2.0), registers the webhook (or uses the stream),
//! subscribes to the DM events, runs `doctor`, and prints the Amazon Connect console steps that
//! remain. Interactive by default; `--non-interactive` takes flags and `XDM_*` variables only.
//! Running it again is safe: what exists is kept.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::commands::doctor;
use crate::commands::x::login::{self, LoginArgs, Opener};
use crate::commands::x::{self as xcmd, Api};
use crate::config::{Config, DEFAULT_CONFIG_FILE, XDelivery};
use crate::x_link::XLink;

#[derive(Debug, Args, Default, Clone)]
pub struct SetupArgs {
    /// Ask nothing: take the values from these flags and the XDM_* environment.
    #[arg(long)]
    pub non_interactive: bool,
    /// Do not run the OAuth 2.0 login even if no account is logged in.
    #[arg(long)]
    pub skip_login: bool,
    #[arg(long)]
    pub x_api_url: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long)]
    pub client_secret: Option<String>,
    #[arg(long)]
    pub bearer_token: Option<String>,
    #[arg(long)]
    pub consumer_key: Option<String>,
    #[arg(long)]
    pub consumer_secret: Option<String>,
    #[arg(long)]
    pub access_token: Option<String>,
    #[arg(long)]
    pub access_token_secret: Option<String>,
    /// `webhook` (X posts to XDM_PUBLIC_URL/webhooks/x) or `stream` (no inbound port for X).
    #[arg(long)]
    pub delivery: Option<String>,
    /// Where the platforms reach this bridge, e.g. https://bridge.example.com.
    #[arg(long)]
    pub public_url: Option<String>,
    /// The X webhook URL, when it is not `<public url>/webhooks/x`.
    #[arg(long)]
    pub webhook_url: Option<String>,
    #[arg(long)]
    pub connect_instance_id: Option<String>,
    #[arg(long)]
    pub contact_flow_id: Option<String>,
    #[arg(long)]
    pub topic_arn: Option<String>,
    #[arg(long)]
    pub store: Option<String>,
    #[arg(long)]
    pub listen: Option<String>,
    /// The login's callback (one of the app's callback URLs; default http://127.0.0.1:8976/callback).
    #[arg(long)]
    pub redirect_uri: Option<String>,
}

/// One setting setup writes: (flag value, TOML table, key, prompt, secret).
type Setting = (
    Option<String>,
    Option<&'static str>,
    &'static str,
    &'static str,
    bool,
);

fn settings(a: &SetupArgs) -> Vec<Setting> {
    vec![
        (
            a.listen.clone(),
            None,
            "listen",
            "Address to listen on",
            false,
        ),
        (
            a.store.clone(),
            None,
            "store",
            "Store (sqlite:PATH or dynamodb:PREFIX)",
            false,
        ),
        (
            a.public_url.clone(),
            None,
            "public_url",
            "Public HTTPS URL of this bridge",
            false,
        ),
        (
            a.x_api_url.clone(),
            Some("x"),
            "api_url",
            "X API base URL",
            false,
        ),
        (
            a.client_id.clone(),
            Some("x"),
            "client_id",
            "X OAuth 2.0 client id",
            false,
        ),
        (
            a.client_secret.clone(),
            Some("x"),
            "client_secret",
            "X OAuth 2.0 client secret",
            true,
        ),
        (
            a.bearer_token.clone(),
            Some("x"),
            "bearer_token",
            "X app bearer token",
            true,
        ),
        (
            a.consumer_key.clone(),
            Some("x"),
            "consumer_key",
            "X consumer key (OAuth 1.0a, optional)",
            true,
        ),
        (
            a.consumer_secret.clone(),
            Some("x"),
            "consumer_secret",
            "X consumer secret (OAuth 1.0a, optional)",
            true,
        ),
        (
            a.access_token.clone(),
            Some("x"),
            "access_token",
            "X access token (OAuth 1.0a, optional)",
            true,
        ),
        (
            a.access_token_secret.clone(),
            Some("x"),
            "access_token_secret",
            "X access token secret (OAuth 1.0a, optional)",
            true,
        ),
        (
            a.delivery.clone(),
            Some("x"),
            "delivery",
            "X delivery: webhook or stream",
            false,
        ),
        (
            a.redirect_uri.clone(),
            Some("x"),
            "redirect_uri",
            "OAuth 2.0 callback URL (blank: http://127.0.0.1:8976/callback)",
            false,
        ),
        (
            a.webhook_url.clone(),
            Some("x"),
            "webhook_url",
            "X webhook URL (blank: <public url>/webhooks/x)",
            false,
        ),
        (
            a.connect_instance_id.clone(),
            Some("connect"),
            "instance_id",
            "Amazon Connect instance id",
            false,
        ),
        (
            a.contact_flow_id.clone(),
            Some("connect"),
            "contact_flow_id",
            "Amazon Connect inbound chat flow id",
            false,
        ),
        (
            a.topic_arn.clone(),
            Some("connect"),
            "topic_arn",
            "SNS topic ARN Connect streams chats to",
            false,
        ),
    ]
}

pub async fn run(config_path: Option<&Path>, args: SetupArgs) -> anyhow::Result<()> {
    Box::pin(run_with(config_path, args, Opener::System, None)).await
}

/// [`run`] with the browser of the login given (tests play the person approving) and the AWS
/// configuration of `doctor` (default: the environment's).
pub async fn run_with(
    config_path: Option<&Path>,
    args: SetupArgs,
    opener: Opener,
    sdk: Option<aws_config::SdkConfig>,
) -> anyhow::Result<()> {
    let file = config_path.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    println!("== 1. configuration: {}", file.display());
    write_config(&file, &args)?;
    let config = Config::load(Some(&file))?;
    if config.x.delivery == XDelivery::Webhook && config.x.webhook_url.is_none() {
        bail!(
            "webhook delivery needs the public URL: --public-url https://host (or --delivery stream)"
        );
    }

    let link = XLink::open(config).await?;
    println!("== 2. X account");
    let logged_in = match &link.tokens {
        Some(tokens) => !tokens.accounts().await?.is_empty(),
        None => false,
    };
    if link.oauth.is_some() && !logged_in && !args.skip_login {
        let account = login::login(&link, &LoginArgs::default(), opener).await?;
        println!("logged in as {account}");
    } else if logged_in {
        println!(
            "an OAuth 2.0 account is logged in already (`xdm-connect x login` adds or renews one)"
        );
    }
    let accounts = link.business_accounts().await?;
    for a in &accounts {
        println!("business account {a} ({})", a.auth);
    }

    println!("== 3. X delivery");
    let webhook_id = match link.config.x.delivery {
        XDelivery::Webhook => {
            let url = link
                .config
                .x
                .webhook_url
                .clone()
                .context("XDM_X_WEBHOOK_URL")?;
            let (id, created) = xcmd::ensure_webhook(&link, &url).await?;
            println!(
                "webhook {id} {} {url}",
                if created {
                    "registered for"
                } else {
                    "already registered for"
                }
            );
            Some(id)
        }
        XDelivery::Stream => {
            println!(
                "stream delivery: `serve` holds the X activity stream open; no webhook needed"
            );
            None
        }
    };
    let report = xcmd::subscribe(&link, Api::Xaa, webhook_id.as_deref()).await?;
    println!("{report}");

    println!("== 4. doctor");
    let failures = match &sdk {
        Some(sdk) => doctor::check_with(&link.config, false, Some(&link), Some(sdk)).await,
        None => doctor::check(&link.config, false, Some(&link)).await,
    }
    .failures;

    println!();
    println!("== What remains in the Amazon Connect console (a person's steps):");
    println!(
        "  1. A chat contact flow that routes to a queue with agents (its id: connect.contact_flow_id)."
    );
    println!(
        "  2. A standard SNS topic whose access policy lets connect.amazonaws.com publish (connect.topic_arn)."
    );
    match link.config.sns_endpoint_url() {
        Some(endpoint) => println!(
            "  3. Subscribe {endpoint} to that topic (HTTPS, raw message delivery off); the bridge confirms it."
        ),
        None => println!(
            "  3. Subscribe https://<this bridge>/webhooks/connect to that topic (HTTPS, raw message delivery off)."
        ),
    }
    println!(
        "  4. AWS credentials for `serve` with connect:StartChatContact, StartContactStreaming, StopContact."
    );
    if failures > 0 {
        bail!("setup is done, but doctor found {failures} problem(s): see the FAIL lines above");
    }
    println!("setup complete: start the bridge with `xdm-connect serve`");
    Ok(())
}

/// Merges the given (or prompted) values into the TOML file, written with mode 0600.
fn write_config(file: &Path, args: &SetupArgs) -> anyhow::Result<()> {
    let mut doc: toml::Table = match std::fs::read_to_string(file) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{} is not valid TOML", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    for (value, table, key, prompt, secret) in settings(args) {
        let current = match table {
            Some(t) => doc
                .get(t)
                .and_then(|v| v.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            None => doc.get(key).and_then(|v| v.as_str()).map(str::to_owned),
        };
        let value = match value {
            Some(v) => Some(v),
            None if !args.non_interactive => ask(prompt, current.as_deref(), secret)?,
            None => None,
        };
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match table {
            Some(t) => {
                let section = doc
                    .entry(t)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(section) = section.as_table_mut() else {
                    bail!("[{t}] in {} is not a table", file.display());
                };
                section.insert(key.to_owned(), toml::Value::String(value));
            }
            None => {
                doc.insert(key.to_owned(), toml::Value::String(value));
            }
        }
    }
    let text = toml::to_string(&doc).context("cannot write the configuration")?;
    crate::commands::private_file::write_private(file, &text)
}

/// One question on the terminal; Enter keeps `current`.
fn ask(prompt: &str, current: Option<&str>, secret: bool) -> anyhow::Result<Option<String>> {
    let shown = match current {
        Some(_) if secret => " [keep the current value]".to_owned(),
        Some(c) => format!(" [{c}]"),
        None => String::new(),
    };
    print!("{prompt}{shown}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() {
        current.map(str::to_owned)
    } else {
        Some(line.to_owned())
    })
}
