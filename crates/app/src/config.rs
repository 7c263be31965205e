//! Configuration: a TOML file (`--config`, default `xdm-connect.toml` when present) overridden by
//! `XDM_*` environment variables (docs/architecture.md, Configuration). AWS endpoints and credentials come from the
//! standard AWS variables, read by `aws-config`.
//!
//! Hand-written layering rather than figment/config: the environment names are a stable public
//! interface with a few list-valued and numeric settings, and every error must name the setting
//! it is about; an explicit table says both more plainly than a generic key splitter.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use xdm_core::BridgeConfig;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "xdm-connect.toml";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORE: &str = "sqlite:xdm-connect.db";
pub const DEFAULT_X_API_URL: &str = "https://api.x.com";
/// Where X asks a person to approve the app (OAuth 2.0); with another `XDM_X_API_URL` (an
/// emulator) the default is `<api url>/i/oauth2/authorize`.
pub const DEFAULT_X_AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
/// The loopback callback of `xdm-connect x login` (register it as a callback URL of the X app).
pub const DEFAULT_X_REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";
/// The stream sends a keep-alive at least every 20 s: silence past this means a dead connection.
pub const DEFAULT_X_STREAM_SILENCE_MS: u64 = 30_000;
/// X checks an unvalidated webhook every 30 minutes; a look every 5 minutes finds an invalid one
/// well before many DMs wait.
pub const DEFAULT_X_WEBHOOK_CHECK_MS: u64 = 300_000;
pub const DEFAULT_X_MEDIA_HOSTS: &[&str] = &["ton.twitter.com", "pbs.twimg.com", "video.twimg.com"];
/// X posts small JSON documents and SNS messages are at most 256 KiB: 1 MiB bounds both.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting} is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// How X's events reach the bridge (`XDM_X_DELIVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XDelivery {
    /// X POSTs to `/webhooks/x` (a public HTTPS URL registered with `x webhook create`).
    #[default]
    Webhook,
    /// The bridge holds `GET /2/activity/stream` open: no inbound port needed.
    Stream,
}

impl XDelivery {
    pub fn as_str(self) -> &'static str {
        match self {
            XDelivery::Webhook => "webhook",
            XDelivery::Stream => "stream",
        }
    }
}

/// Which secret keys the CRC answer (`XDM_X_CRC_KEY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrcKeySetting {
    /// The OAuth 2.0 client secret when one is configured, else the consumer secret.
    #[default]
    Auto,
    ClientSecret,
    ConsumerSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `XDM_STORE`: `sqlite:PATH` or `dynamodb:TABLE_PREFIX`.
    pub store: String,
    pub log_format: LogFormat,
    pub x: XSettings,
    pub connect: ConnectSettings,
    pub sns: SnsSettings,
    pub max_body_bytes: usize,
    pub delivery: BridgeConfig,
    /// `XDM_PUBLIC_URL`: where the platforms reach this bridge (`https://host`); the X webhook
    /// is `<it>/webhooks/x` unless `XDM_X_WEBHOOK_URL` says otherwise, the SNS endpoint
    /// `<it>/webhooks/connect`.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct XSettings {
    pub consumer_key: Option<SecretString>,
    pub consumer_secret: Option<SecretString>,
    pub access_token: Option<SecretString>,
    pub access_token_secret: Option<SecretString>,
    pub api_url: String,
    pub media_hosts: Vec<String>,
    /// Access tokens of further business accounts, by X user id.
    pub accounts: Vec<XAccount>,
    /// The app-only bearer token: webhooks, subscriptions list/delete, replay, the stream.
    pub bearer_token: Option<SecretString>,
    /// OAuth 2.0 client of the X app (`xdm-connect x login`; the secret also checks
    /// `x-twitter-webhooks-signature-oauth2` and, by default, keys the CRC).
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub authorize_url: String,
    pub redirect_uri: String,
    pub delivery: XDelivery,
    pub crc_key: CrcKeySetting,
    /// The public URL of `/webhooks/x` (what `x webhook create` and `setup` register).
    pub webhook_url: Option<String>,
    /// The webhook to use when several are registered (else the remembered or matching one).
    pub webhook_id: Option<String>,
    /// Silence on the activity stream after which it is reconnected.
    pub stream_silence_ms: u64,
    /// Whether `serve` reads missed DMs back from X after a gap (`XDM_X_CATCH_UP`).
    pub catch_up: bool,
    /// How often `serve` checks that X still considers its webhook valid (webhook delivery).
    pub webhook_check_ms: u64,
    /// The most backfill the stream asks X for after a reconnection (0–5 minutes); a longer gap
    /// is read back by the catch-up.
    pub stream_backfill_minutes: u8,
}

#[derive(Debug, Clone)]
pub struct XAccount {
    pub user_id: String,
    pub access_token: SecretString,
    pub access_token_secret: SecretString,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    pub instance_id: Option<String>,
    pub contact_flow_id: Option<String>,
    pub topic_arn: Option<String>,
    pub chat_duration_minutes: Option<u32>,
    /// Overrides of the AWS endpoints (normally `AWS_ENDPOINT_URL_CONNECT` / `…_CONNECTPARTICIPANT`).
    pub endpoint_url: Option<String>,
    pub participant_endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SnsSettings {
    pub trusted_cert_urls: Vec<String>,
}

impl Config {
    /// Reads the file (the given one, else `xdm-connect.toml` if it exists) and the process
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, &|k| std::env::var(k).ok())
    }

    /// As [`Config::load`] with an injectable environment (tests).
    pub fn load_with(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) => read_file(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::from_layers(file, env)
    }

    /// Parses a TOML document as the file layer (tests, embedded defaults).
    pub fn from_toml(
        toml_text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = toml::from_str(toml_text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        Self::from_layers(file, env)
    }

    fn from_layers(
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // An empty environment variable counts as unset (`XDM_X_API_URL= xdm-connect serve`).
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let x = file.x.unwrap_or_default();
        let connect = file.connect.unwrap_or_default();
        let sns = file.sns.unwrap_or_default();
        let delivery_file = file.delivery.unwrap_or_default();

        let listen_raw = env("XDM_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw.parse().map_err(|_| {
            invalid(
                "XDM_LISTEN",
                format!("`{listen_raw}` is not an address like 127.0.0.1:8080"),
            )
        })?;

        let store = env("XDM_STORE")
            .or(file.store)
            .unwrap_or_else(|| DEFAULT_STORE.to_owned());

        let log_format = match env("XDM_LOG_FORMAT").or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "XDM_LOG_FORMAT",
                    format!("`{other}`: use text or json"),
                ));
            }
        };

        let secret = |name: &str, file_value: Option<String>| {
            env(name).or(file_value).map(SecretString::from)
        };
        let api_url = env("XDM_X_API_URL")
            .or(x.api_url)
            .unwrap_or_else(|| DEFAULT_X_API_URL.to_owned());
        check_http_url("XDM_X_API_URL", &api_url)?;
        let media_hosts = match env("XDM_X_MEDIA_HOSTS") {
            Some(v) => split_list(&v),
            None => x.media_hosts.unwrap_or_else(|| {
                DEFAULT_X_MEDIA_HOSTS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            }),
        };
        let accounts = x
            .accounts
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                if a.user_id.is_empty() || !a.user_id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(
                        "x.accounts.user_id",
                        format!("`{}` is not an X user id", a.user_id),
                    ));
                }
                Ok(XAccount {
                    user_id: a.user_id,
                    access_token: SecretString::from(a.access_token),
                    access_token_secret: SecretString::from(a.access_token_secret),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let delivery_raw = env("XDM_X_DELIVERY").or(x.delivery);
        let x_delivery = match delivery_raw.as_deref().map(str::trim) {
            None | Some("webhook") => XDelivery::Webhook,
            Some("stream") => XDelivery::Stream,
            Some(other) => {
                return Err(invalid(
                    "XDM_X_DELIVERY",
                    format!("`{other}`: use webhook or stream"),
                ));
            }
        };
        let crc_key = match env("XDM_X_CRC_KEY").or(x.crc_key).as_deref().map(str::trim) {
            None | Some("auto") => CrcKeySetting::Auto,
            Some("client_secret") => CrcKeySetting::ClientSecret,
            Some("consumer_secret") => CrcKeySetting::ConsumerSecret,
            Some(other) => {
                return Err(invalid(
                    "XDM_X_CRC_KEY",
                    format!("`{other}`: use auto, client_secret or consumer_secret"),
                ));
            }
        };
        let authorize_url = env("XDM_X_AUTHORIZE_URL")
            .or(x.authorize_url)
            .unwrap_or_else(|| default_authorize_url(&api_url));
        check_http_url("XDM_X_AUTHORIZE_URL", &authorize_url)?;
        let redirect_uri = env("XDM_X_REDIRECT_URI")
            .or(x.redirect_uri)
            .unwrap_or_else(|| DEFAULT_X_REDIRECT_URI.to_owned());
        check_http_url("XDM_X_REDIRECT_URI", &redirect_uri)?;
        let public_url = env("XDM_PUBLIC_URL")
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &public_url {
            check_http_url("XDM_PUBLIC_URL", u)?;
        }
        let webhook_url = env("XDM_X_WEBHOOK_URL")
            .or(x.webhook_url)
            .or_else(|| public_url.as_ref().map(|p| format!("{p}/webhooks/x")));
        if let Some(u) = &webhook_url {
            check_http_url("XDM_X_WEBHOOK_URL", u)?;
        }
        let webhook_id = env("XDM_X_WEBHOOK_ID").or(x.webhook_id);
        if let Some(id) = &webhook_id
            && (id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "XDM_X_WEBHOOK_ID",
                format!("`{id}` is not an X webhook id"),
            ));
        }
        let stream_silence_ms = match env("XDM_X_STREAM_SILENCE_MS") {
            Some(v) => parse_num("XDM_X_STREAM_SILENCE_MS", &v)?,
            None => x.stream_silence_ms.unwrap_or(DEFAULT_X_STREAM_SILENCE_MS),
        };
        if stream_silence_ms < 100 {
            return Err(invalid("XDM_X_STREAM_SILENCE_MS", "must be at least 100"));
        }
        let webhook_check_ms = match env("XDM_X_WEBHOOK_CHECK_MS") {
            Some(v) => parse_num("XDM_X_WEBHOOK_CHECK_MS", &v)?,
            None => x.webhook_check_ms.unwrap_or(DEFAULT_X_WEBHOOK_CHECK_MS),
        };
        if webhook_check_ms < 100 {
            return Err(invalid("XDM_X_WEBHOOK_CHECK_MS", "must be at least 100"));
        }
        let stream_backfill_minutes: u8 = match env("XDM_X_STREAM_BACKFILL_MINUTES") {
            Some(v) => parse_num("XDM_X_STREAM_BACKFILL_MINUTES", &v)?,
            None => x.stream_backfill_minutes.unwrap_or(5),
        };
        if stream_backfill_minutes > 5 {
            return Err(invalid(
                "XDM_X_STREAM_BACKFILL_MINUTES",
                "X keeps 5 minutes: use 0 to 5",
            ));
        }
        let catch_up = match env("XDM_X_CATCH_UP").as_deref().map(str::trim) {
            Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => {
                return Err(invalid(
                    "XDM_X_CATCH_UP",
                    format!("`{other}`: use on or off"),
                ));
            }
            None => x.catch_up.unwrap_or(true),
        };
        let x = XSettings {
            bearer_token: secret("XDM_X_BEARER_TOKEN", x.bearer_token),
            client_id: env("XDM_X_CLIENT_ID").or(x.client_id),
            client_secret: secret("XDM_X_CLIENT_SECRET", x.client_secret),
            authorize_url,
            redirect_uri,
            delivery: x_delivery,
            crc_key,
            webhook_url,
            webhook_id,
            stream_silence_ms,
            catch_up,
            webhook_check_ms,
            stream_backfill_minutes,
            consumer_key: secret("XDM_X_CONSUMER_KEY", x.consumer_key),
            consumer_secret: secret("XDM_X_CONSUMER_SECRET", x.consumer_secret),
            access_token: secret("XDM_X_ACCESS_TOKEN", x.access_token),
            access_token_secret: secret("XDM_X_ACCESS_TOKEN_SECRET", x.access_token_secret),
            api_url,
            media_hosts,
            accounts,
        };

        let chat_duration_minutes = match env("XDM_CONNECT_CHAT_DURATION_MINUTES") {
            Some(v) => Some(parse_num::<u32>("XDM_CONNECT_CHAT_DURATION_MINUTES", &v)?),
            None => connect.chat_duration_minutes,
        };
        if let Some(m) = chat_duration_minutes
            && !(60..=10_080).contains(&m)
        {
            return Err(invalid(
                "XDM_CONNECT_CHAT_DURATION_MINUTES",
                "must be between 60 and 10080 minutes",
            ));
        }
        let topic_arn = env("XDM_CONNECT_TOPIC_ARN").or(connect.topic_arn);
        if let Some(arn) = &topic_arn
            && !arn.starts_with("arn:")
        {
            return Err(invalid(
                "XDM_CONNECT_TOPIC_ARN",
                format!("`{arn}` is not an SNS topic ARN"),
            ));
        }
        let connect_attachment_types = connect.attachment_types;
        let connect = ConnectSettings {
            instance_id: env("XDM_CONNECT_INSTANCE_ID").or(connect.instance_id),
            contact_flow_id: env("XDM_CONNECT_CONTACT_FLOW_ID").or(connect.contact_flow_id),
            topic_arn,
            chat_duration_minutes,
            endpoint_url: connect.endpoint_url,
            participant_endpoint_url: connect.participant_endpoint_url,
        };

        let trusted_cert_urls = match env("XDM_SNS_TRUSTED_CERT_URLS") {
            Some(v) => split_list(&v),
            None => sns.trusted_cert_urls.unwrap_or_default(),
        };
        for u in &trusted_cert_urls {
            check_http_url("XDM_SNS_TRUSTED_CERT_URLS", u)?;
        }

        let max_body_bytes = match env("XDM_MAX_BODY_BYTES") {
            Some(v) => parse_num("XDM_MAX_BODY_BYTES", &v)?,
            None => file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        };
        if max_body_bytes < 1024 {
            return Err(invalid("XDM_MAX_BODY_BYTES", "must be at least 1024"));
        }

        let mut delivery = BridgeConfig::default();
        if let Some(v) =
            env("XDM_REORDER_WINDOW_MS").or(delivery_file.reorder_window_ms.map(|n| n.to_string()))
        {
            delivery.reorder_window_ms = parse_num("XDM_REORDER_WINDOW_MS", &v)?;
            delivery.outbound_reorder_window_ms = delivery.reorder_window_ms;
        }
        if let Some(v) =
            env("XDM_MAX_ATTEMPTS").or(delivery_file.max_attempts.map(|n| n.to_string()))
        {
            delivery.max_attempts = parse_num("XDM_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) =
            env("XDM_RETRY_BASE_MS").or(delivery_file.retry_base_ms.map(|n| n.to_string()))
        {
            delivery.retry_base_ms = parse_num("XDM_RETRY_BASE_MS", &v)?;
        }
        if let Some(v) = env("XDM_LEASE_MS").or(delivery_file.lease_ms.map(|n| n.to_string())) {
            delivery.lease_ms = parse_num("XDM_LEASE_MS", &v)?;
        }
        if let Some(v) = env("XDM_CONCURRENCY").or(delivery_file.concurrency.map(|n| n.to_string()))
        {
            delivery.concurrency = parse_num("XDM_CONCURRENCY", &v)?;
        }
        let attachment_types = match env("XDM_CONNECT_ATTACHMENT_TYPES") {
            Some(v) => Some(split_list(&v)),
            None => connect_attachment_types,
        };
        if let Some(types) = attachment_types {
            if types.iter().any(|t| !t.contains('/')) {
                return Err(invalid(
                    "XDM_CONNECT_ATTACHMENT_TYPES",
                    "list MIME types such as image/jpeg,application/pdf",
                ));
            }
            delivery.attachments.allowed_types =
                types.iter().map(|t| xdm_core::media::essence(t)).collect();
        }
        if delivery.max_attempts == 0 || delivery.concurrency == 0 || delivery.retry_base_ms <= 0 {
            return Err(invalid(
                "delivery",
                "max_attempts, concurrency and retry_base_ms must be positive",
            ));
        }

        Ok(Config {
            listen,
            store,
            log_format,
            x,
            connect,
            sns: SnsSettings { trusted_cert_urls },
            max_body_bytes,
            delivery,
            public_url,
        })
    }

    /// The consumer secret (legacy webhook signature; the CRC key without an OAuth 2.0 client).
    pub fn webhook_secret(&self) -> Option<&str> {
        self.x
            .consumer_secret
            .as_ref()
            .map(ExposeSecret::expose_secret)
    }

    /// The OAuth 2.0 client secret (`x-twitter-webhooks-signature-oauth2`, the CRC by default).
    pub fn client_secret(&self) -> Option<&str> {
        self.x
            .client_secret
            .as_ref()
            .map(ExposeSecret::expose_secret)
    }

    /// The URL SNS posts the Connect chat stream to (`<XDM_PUBLIC_URL>/webhooks/connect`).
    pub fn sns_endpoint_url(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|p| format!("{p}/webhooks/connect"))
    }

    /// Whether every OAuth 1.0a user-context setting is present.
    pub fn has_oauth1(&self) -> bool {
        let x = &self.x;
        x.consumer_key.is_some()
            && x.consumer_secret.is_some()
            && x.access_token.is_some()
            && x.access_token_secret.is_some()
    }

    /// Settings missing for delivering messages (both directions), by their variable names.
    /// X needs either the four OAuth 1.0a settings or an OAuth 2.0 client (whose user tokens
    /// `xdm-connect x login` puts in the store).
    pub fn missing_for_delivery(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let x = &self.x;
        let oauth1 = [
            ("XDM_X_CONSUMER_KEY", x.consumer_key.is_some()),
            ("XDM_X_CONSUMER_SECRET", x.consumer_secret.is_some()),
            ("XDM_X_ACCESS_TOKEN", x.access_token.is_some()),
            ("XDM_X_ACCESS_TOKEN_SECRET", x.access_token_secret.is_some()),
        ];
        if x.client_id.is_none() {
            missing.extend(oauth1.iter().filter(|(_, set)| !set).map(|(name, _)| *name));
        }
        if x.client_id.is_some() && x.consumer_secret.is_none() && x.client_secret.is_none() {
            // Webhook signatures and the CRC need one of the two secrets.
            missing.push("XDM_X_CLIENT_SECRET");
        }
        if x.delivery == XDelivery::Stream && x.bearer_token.is_none() {
            missing.push("XDM_X_BEARER_TOKEN");
        }
        for (name, v) in [
            (
                "XDM_CONNECT_INSTANCE_ID",
                self.connect.instance_id.is_some(),
            ),
            (
                "XDM_CONNECT_CONTACT_FLOW_ID",
                self.connect.contact_flow_id.is_some(),
            ),
            ("XDM_CONNECT_TOPIC_ARN", self.connect.topic_arn.is_some()),
        ] {
            if !v {
                missing.push(name);
            }
        }
        missing
    }
}

/// X's authorize page, or the emulator's when `XDM_X_API_URL` is not X's.
fn default_authorize_url(api_url: &str) -> String {
    if api_url.trim_end_matches('/') == DEFAULT_X_API_URL {
        DEFAULT_X_AUTHORIZE_URL.to_owned()
    } else {
        format!("{}/i/oauth2/authorize", api_url.trim_end_matches('/'))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_num<T: std::str::FromStr>(setting: &'static str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(setting, format!("`{v}` is not a valid number")))
}

fn check_http_url(setting: &'static str, v: &str) -> Result<(), ConfigError> {
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(invalid(setting, format!("`{v}` is not an http(s) URL"))),
    }
}

// ---- the file layer ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    store: Option<String>,
    log_format: Option<String>,
    max_body_bytes: Option<usize>,
    public_url: Option<String>,
    x: Option<XFile>,
    connect: Option<ConnectFile>,
    sns: Option<SnsFile>,
    delivery: Option<DeliveryFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct XFile {
    consumer_key: Option<String>,
    consumer_secret: Option<String>,
    access_token: Option<String>,
    access_token_secret: Option<String>,
    api_url: Option<String>,
    media_hosts: Option<Vec<String>>,
    accounts: Option<Vec<XAccountFile>>,
    bearer_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    authorize_url: Option<String>,
    redirect_uri: Option<String>,
    delivery: Option<String>,
    crc_key: Option<String>,
    webhook_url: Option<String>,
    webhook_id: Option<String>,
    stream_silence_ms: Option<u64>,
    catch_up: Option<bool>,
    webhook_check_ms: Option<u64>,
    stream_backfill_minutes: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XAccountFile {
    user_id: String,
    access_token: String,
    access_token_secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectFile {
    instance_id: Option<String>,
    contact_flow_id: Option<String>,
    topic_arn: Option<String>,
    chat_duration_minutes: Option<u32>,
    endpoint_url: Option<String>,
    participant_endpoint_url: Option<String>,
    attachment_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnsFile {
    trusted_cert_urls: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFile {
    reorder_window_ms: Option<i64>,
    max_attempts: Option<u32>,
    retry_base_ms: Option<i64>,
    lease_ms: Option<i64>,
    concurrency: Option<usize>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let c = Config::from_toml("", &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.store, DEFAULT_STORE);
        assert_eq!(c.x.api_url, DEFAULT_X_API_URL);
        assert_eq!(
            c.x.media_hosts,
            vec!["ton.twitter.com", "pbs.twimg.com", "video.twimg.com"]
        );
        assert_eq!(c.missing_for_delivery().len(), 7);
        assert!(c.webhook_secret().is_none());
    }

    #[test]
    fn env_overrides_file() {
        let toml = r#"
            listen = "127.0.0.1:9000"
            [x]
            consumer_secret = "from-file"
            api_url = "http://127.0.0.1:1"
            [connect]
            instance_id = "i-file"
        "#;
        let c = Config::from_toml(
            toml,
            &env(&[
                ("XDM_X_CONSUMER_SECRET", "from-env"),
                ("XDM_X_MEDIA_HOSTS", "ton.twitter.com, http://127.0.0.1:9"),
                (
                    "XDM_SNS_TRUSTED_CERT_URLS",
                    "http://127.0.0.1:9/sns/cert.pem",
                ),
                ("XDM_LISTEN", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.listen.to_string(),
            "127.0.0.1:9000",
            "empty env var counts as unset"
        );
        assert_eq!(c.webhook_secret(), Some("from-env"));
        assert_eq!(c.x.api_url, "http://127.0.0.1:1");
        assert_eq!(c.connect.instance_id.as_deref(), Some("i-file"));
        assert_eq!(
            c.x.media_hosts,
            vec!["ton.twitter.com", "http://127.0.0.1:9"]
        );
        assert_eq!(
            c.sns.trusted_cert_urls,
            vec!["http://127.0.0.1:9/sns/cert.pem"]
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let err =
            |pairs: &[(&str, &str)]| Config::from_toml("", &env(pairs)).unwrap_err().to_string();
        assert!(err(&[("XDM_LISTEN", "nope")]).starts_with("XDM_LISTEN is invalid"));
        assert!(err(&[("XDM_X_API_URL", "api.x.com")]).starts_with("XDM_X_API_URL is invalid"));
        assert!(
            err(&[("XDM_CONNECT_TOPIC_ARN", "topic")])
                .starts_with("XDM_CONNECT_TOPIC_ARN is invalid")
        );
        assert!(err(&[("XDM_MAX_BODY_BYTES", "ten")]).starts_with("XDM_MAX_BODY_BYTES is invalid"));
        assert!(err(&[("XDM_LOG_FORMAT", "xml")]).starts_with("XDM_LOG_FORMAT is invalid"));
        let unknown = Config::from_toml("[x]\nconsumer_sekret = \"a\"", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("consumer_sekret"), "{unknown}");
    }

    #[test]
    fn x_activity_settings() {
        let c = Config::from_toml(
            "[x]\ndelivery = \"stream\"\nclient_id = \"cid\"\nwebhook_id = \"123\"",
            &env(&[
                ("XDM_X_CLIENT_SECRET", "cs"),
                ("XDM_X_CRC_KEY", "consumer_secret"),
                ("XDM_X_API_URL", "http://127.0.0.1:9"),
            ]),
        )
        .unwrap();
        assert_eq!(c.x.delivery, XDelivery::Stream);
        assert_eq!(c.x.crc_key, CrcKeySetting::ConsumerSecret);
        assert_eq!(c.x.webhook_id.as_deref(), Some("123"));
        assert_eq!(c.x.authorize_url, "http://127.0.0.1:9/i/oauth2/authorize");
        assert_eq!(c.x.redirect_uri, DEFAULT_X_REDIRECT_URI);
        assert!(c.x.catch_up);
        assert_eq!(c.client_secret(), Some("cs"));
        // OAuth 2.0 only: no OAuth 1.0a setting is missing; the stream needs the bearer token.
        assert_eq!(
            c.missing_for_delivery(),
            vec![
                "XDM_X_BEARER_TOKEN",
                "XDM_CONNECT_INSTANCE_ID",
                "XDM_CONNECT_CONTACT_FLOW_ID",
                "XDM_CONNECT_TOPIC_ARN"
            ]
        );
        let d = Config::from_toml("", &env(&[])).unwrap();
        assert_eq!(d.x.authorize_url, DEFAULT_X_AUTHORIZE_URL);
        assert_eq!(d.x.delivery, XDelivery::Webhook);
        let err =
            |pairs: &[(&str, &str)]| Config::from_toml("", &env(pairs)).unwrap_err().to_string();
        assert!(err(&[("XDM_X_DELIVERY", "poll")]).starts_with("XDM_X_DELIVERY is invalid"));
        assert!(err(&[("XDM_X_CRC_KEY", "bearer")]).starts_with("XDM_X_CRC_KEY is invalid"));
        assert!(err(&[("XDM_X_WEBHOOK_ID", "abc")]).starts_with("XDM_X_WEBHOOK_ID is invalid"));
        assert!(err(&[("XDM_X_CATCH_UP", "maybe")]).starts_with("XDM_X_CATCH_UP is invalid"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_toml("", &env(&[("XDM_X_CONSUMER_SECRET", "hunter2")])).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
