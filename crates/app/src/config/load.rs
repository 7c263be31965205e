//! Loading: the file layer overridden by the `XDM_*` environment, setting by setting, each value
//! checked as it is read so that an error names the setting it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use xdm_core::BridgeConfig;

use super::defaults::{
    DEFAULT_CONFIG_FILE, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_STORE, DEFAULT_X_API_URL,
    DEFAULT_X_MEDIA_HOSTS, DEFAULT_X_REDIRECT_URI, DEFAULT_X_STREAM_SILENCE_MS,
    DEFAULT_X_WEBHOOK_CHECK_MS, MAX_BUFFER_WINDOW_MS, MAX_PERSISTENT_CHAT_DAYS,
    default_authorize_url,
};
use super::error::{ConfigError, invalid};
use super::file::{FileConfig, read_file};
use super::file_mode::secrets_readable_by_others;
use super::http::{admin_settings, http_settings};
use super::model::{
    Config, ConnectSettings, CrcKeySetting, LogFormat, SnsSettings, XAccount, XDelivery, XSettings,
};
use super::parse::{check_http_url, parse_num, parse_switch, split_list};
use super::replay::replay_settings;

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
        let path = match path {
            Some(p) => Some(p),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => Some(Path::new(DEFAULT_CONFIG_FILE)),
            None => None,
        };
        let (file, warning) = match path {
            Some(p) => {
                let file = read_file(p)?;
                let warning = secrets_readable_by_others(p, &file);
                (file, warning)
            }
            None => (FileConfig::default(), None),
        };
        let mut config = Self::from_layers(file, env)?;
        config.file_warnings.extend(warning);
        Ok(config)
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
        let x_max_event_age_hours = x.max_event_age_hours;
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
                x_account(
                    a.user_id,
                    a.access_token,
                    a.access_token_secret,
                    a.contact_flow_id,
                    a.attributes.unwrap_or_default(),
                    a.chat_keys,
                    a.chat_key_version,
                )
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
        let catch_up = match env("XDM_X_CATCH_UP") {
            Some(v) => parse_switch("XDM_X_CATCH_UP", &v)?,
            None => x.catch_up.unwrap_or(true),
        };
        let chat_keys = secret("XDM_X_CHAT_KEYS", x.chat_keys);
        let chat_key_version = env("XDM_X_CHAT_KEY_VERSION").or(x.chat_key_version);
        check_chat_keys(chat_keys.as_ref(), chat_key_version.as_deref())?;
        let x = XSettings {
            bearer_token: secret("XDM_X_BEARER_TOKEN", x.bearer_token),
            chat_keys,
            chat_key_version,
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
        let profiles_domain = env("XDM_CONNECT_PROFILES_DOMAIN")
            .or(connect.profiles_domain)
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        let persistent_chat_days = match env("XDM_CONNECT_PERSISTENT_CHAT_DAYS") {
            Some(v) => parse_num::<u32>("XDM_CONNECT_PERSISTENT_CHAT_DAYS", &v)?,
            None => connect.persistent_chat_days.unwrap_or(0),
        };
        if persistent_chat_days > MAX_PERSISTENT_CHAT_DAYS {
            return Err(invalid(
                "XDM_CONNECT_PERSISTENT_CHAT_DAYS",
                format!("must be between 0 (off) and {MAX_PERSISTENT_CHAT_DAYS} days"),
            ));
        }
        let connect = ConnectSettings {
            instance_id: env("XDM_CONNECT_INSTANCE_ID").or(connect.instance_id),
            contact_flow_id: env("XDM_CONNECT_CONTACT_FLOW_ID").or(connect.contact_flow_id),
            topic_arn,
            chat_duration_minutes,
            endpoint_url: connect.endpoint_url,
            participant_endpoint_url: connect.participant_endpoint_url,
            profiles_domain,
            profiles_endpoint_url: connect.profiles_endpoint_url,
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
        if let Some(v) =
            env("XDM_BUFFER_WINDOW_MS").or(delivery_file.buffer_window_ms.map(|n| n.to_string()))
        {
            delivery.buffer_window_ms = parse_num("XDM_BUFFER_WINDOW_MS", &v)?;
            if !(0..=MAX_BUFFER_WINDOW_MS).contains(&delivery.buffer_window_ms) {
                return Err(invalid(
                    "XDM_BUFFER_WINDOW_MS",
                    format!("must be between 0 (off) and {MAX_BUFFER_WINDOW_MS} ms"),
                ));
            }
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
        let replay = replay_settings(
            x_max_event_age_hours,
            sns.max_age_secs,
            sns.require_signature_v2,
            &env,
        )?;
        replay.apply(&mut delivery)?;
        // `XDM_CONNECT_PERSISTENT_CHAT_DAYS`, read with the Connect settings.
        delivery.persistent_chat_window_ms = i64::from(persistent_chat_days) * 24 * 3600 * 1000;

        let http = http_settings(file.http.unwrap_or_default(), &env, max_body_bytes)?;
        let admin = admin_settings(file.admin.unwrap_or_default(), &env, listen)?;

        Ok(Config {
            listen,
            store,
            log_format,
            x,
            connect,
            sns: SnsSettings {
                trusted_cert_urls,
                max_age_secs: replay.sns_max_age_secs,
                require_signature_v2: replay.sns_require_signature_v2,
            },
            max_body_bytes,
            delivery,
            public_url,
            http,
            admin,
            file_warnings: Vec::new(),
        })
    }
}

/// One further business account, checked: a numeric user id, both halves of an OAuth 1.0a
/// token or neither, a plausible contact flow id and contact attributes.
pub(crate) fn x_account(
    user_id: String,
    access_token: Option<String>,
    access_token_secret: Option<String>,
    contact_flow_id: Option<String>,
    attributes: BTreeMap<String, String>,
    chat_keys: Option<String>,
    chat_key_version: Option<String>,
) -> Result<XAccount, ConfigError> {
    if user_id.is_empty() || user_id.len() > 20 || !user_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "x.accounts.user_id",
            format!("`{user_id}` is not an X user id"),
        ));
    }
    let oauth1 = match (access_token, access_token_secret) {
        (Some(t), Some(s)) => Some((SecretString::from(t), SecretString::from(s))),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "x.accounts.access_token",
                format!(
                    "account {user_id}: set both access_token and access_token_secret, or neither (an OAuth 2.0 account)"
                ),
            ));
        }
    };
    let contact_flow_id = contact_flow_id
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty());
    if let Some(flow) = &contact_flow_id
        && (flow.len() > 500 || flow.chars().any(char::is_whitespace))
    {
        return Err(invalid(
            "x.accounts.contact_flow_id",
            format!("account {user_id}: `{flow}` is not a contact flow id"),
        ));
    }
    // Connect's limits: keys of letters, digits, '-' and '_'; 32 KB in all (with the bridge's own).
    let total: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !attributes.keys().all(|k| valid_key(k)) || total > 16 * 1024 {
        return Err(invalid(
            "x.accounts.attributes",
            format!(
                "account {user_id}: contact attribute keys are letters, digits, '-' and '_', and all of them at most 16 KB (Connect takes 32 KB with the bridge's own)"
            ),
        ));
    }
    let chat_keys = chat_keys.map(SecretString::from);
    check_chat_keys_of(
        chat_keys.as_ref(),
        chat_key_version.as_deref(),
        "x.accounts.chat_keys",
        "x.accounts.chat_key_version",
    )?;
    Ok(XAccount {
        chat: chat_keys.zip(chat_key_version),
        user_id,
        oauth1,
        contact_flow_id,
        attributes,
    })
}

/// The X Chat key blob and its version: both or neither, each usable (the blob is never
/// echoed in the error).
fn check_chat_keys(blob: Option<&SecretString>, version: Option<&str>) -> Result<(), ConfigError> {
    check_chat_keys_of(blob, version, "XDM_X_CHAT_KEYS", "XDM_X_CHAT_KEY_VERSION")
}

fn check_chat_keys_of(
    blob: Option<&SecretString>,
    version: Option<&str>,
    blob_setting: &'static str,
    version_setting: &'static str,
) -> Result<(), ConfigError> {
    use secrecy::ExposeSecret;
    match (blob, version) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid(
            version_setting,
            format!("is needed with {blob_setting}: the version X registered the keys under"),
        )),
        (None, Some(_)) => Err(invalid(
            blob_setting,
            format!("is needed with {version_setting} (the key blob)"),
        )),
        (Some(blob), Some(version)) => {
            xdm_x::chat::ChatIdentity::from_blob_base64(blob.expose_secret(), version)
                .map(|_| ())
                .map_err(|e| invalid(blob_setting, e.to_string()))
        }
    }
}
