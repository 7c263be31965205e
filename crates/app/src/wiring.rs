//! Building the adapters from the configuration, once, and plugging them into the core: each
//! client as [`Configured`] (the client, or why the configuration does not allow it).

use std::sync::Arc;

use aws_config::SdkConfig;
use secrecy::ExposeSecret;
use xdm_amazon_connect::sns::SnsVerifier;
use xdm_amazon_connect::{ConnectClient, ConnectConfig};
use xdm_core::Bridge;
use xdm_core::ids::XUserId;
use xdm_core::ports::SystemClock;
use xdm_store::{AnyStore, InstanceLock, LockState, SqliteLocation, StoreUrl};
use xdm_x::chat::ChatIdentity;
use xdm_x::webhook::{CrcKey, WebhookSecrets};
use xdm_x::{AccessToken, AppClient, Consumer, MediaHosts, XClient, XClientConfig};

use crate::config::{Config, CrcKeySetting};
use crate::configured::Configured;
use crate::x_tokens::{StoreTokens, Tokens};

/// The core with the production adapters: the store, and the X and Amazon Connect clients
/// plugged into the core's ports (`XApi`, `ConnectApi`), each "the client, if configured"
/// ([`Configured`]: a missing client fails every call and leaves delivery off). The store is
/// shared with the OAuth 2.0 token keeper and the catch-up's records.
pub type AppBridge =
    Bridge<Arc<AnyStore>, Configured<XClient>, Configured<ConnectClient>, SystemClock>;

/// Opens the store named by `XDM_STORE` (DynamoDB uses `sdk` when given, else the default AWS
/// configuration).
pub async fn open_store(url: &str, sdk: Option<&SdkConfig>) -> anyhow::Result<AnyStore> {
    let parsed = StoreUrl::parse(url)?;
    Ok(xdm_store::open_with(&parsed, sdk.cloned()).await?)
}

/// The instance lock of a SQLite store file, for a process that delivers from it (`serve`,
/// `demo`): held until dropped, and refused with the holder's pid when another process has it
/// (`xdm_store::InstanceLock`). Other stores need none (`None`): `sqlite::memory:` is private to
/// the process, DynamoDB is shared through leases.
pub async fn instance_lock(url: &str) -> anyhow::Result<Option<InstanceLock>> {
    let Some(path) = sqlite_file(url)? else {
        return Ok(None);
    };
    // It may wait a moment for a lock that `doctor` is probing: not on the executor.
    let lock = tokio::task::spawn_blocking(move || InstanceLock::acquire(&path)).await??;
    Ok(Some(lock))
}

/// Whether a delivering process holds the lock of the SQLite store file `url` names (`None`:
/// not a SQLite file).
pub fn instance_lock_state(url: &str) -> anyhow::Result<Option<LockState>> {
    match sqlite_file(url)? {
        Some(path) => Ok(Some(InstanceLock::state(&path)?)),
        None => Ok(None),
    }
}

/// The file of a SQLite store URL (`None`: another store).
fn sqlite_file(url: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    Ok(match StoreUrl::parse(url)? {
        StoreUrl::Sqlite {
            location: SqliteLocation::File(path),
            ..
        } => Some(path),
        _ => None,
    })
}

/// The X client, if the configuration has credentials (OAuth 1.0a, or an OAuth 2.0 client
/// whose user tokens `tokens` keeps). When it is `Missing` the dispatchers are not started
/// (nothing would be delivered), but webhooks are still accepted and kept.
pub fn configured_x_client(config: &Config, tokens: Option<&Arc<Tokens>>) -> Configured<XClient> {
    if !config.has_oauth1() && tokens.is_none() {
        return Configured::Missing(
            "the X credentials are incomplete: set XDM_X_CLIENT_ID (OAuth 2.0) or the four OAuth 1.0a settings".to_owned(),
        );
    }
    match x_client(config, tokens) {
        Ok(client) => Configured::Ready(client),
        Err(e) => Configured::Missing(format!("{e:#}")),
    }
}

/// The Amazon Connect client, if the `XDM_CONNECT_*` settings are complete and the AWS
/// configuration `sdk` was loaded (see [`configured_x_client`]).
pub fn configured_connect_client(
    config: &Config,
    sdk: Option<&SdkConfig>,
) -> Configured<ConnectClient> {
    let c = &config.connect;
    let (Some(instance), Some(flow), Some(topic)) =
        (&c.instance_id, &c.contact_flow_id, &c.topic_arn)
    else {
        return Configured::Missing(
            "the Amazon Connect settings (XDM_CONNECT_*) are incomplete".to_owned(),
        );
    };
    let Some(sdk) = sdk else {
        return Configured::Missing("the AWS configuration could not be loaded".to_owned());
    };
    let mut cfg = ConnectConfig::new(instance, flow, topic);
    cfg.chat_duration_minutes = c.chat_duration_minutes;
    cfg.connect_endpoint = c.endpoint_url.clone();
    cfg.participant_endpoint = c.participant_endpoint_url.clone();
    cfg.profiles_domain = c.profiles_domain.clone();
    cfg.profiles_endpoint = c.profiles_endpoint_url.clone();
    match ConnectClient::new(cfg, sdk) {
        Ok(client) => Configured::Ready(client),
        Err(e) => Configured::Missing(e.to_string()),
    }
}

/// The OAuth 1.0a access token of the default business account, when configured.
pub fn oauth1_default_token(config: &Config) -> Option<AccessToken> {
    let x = &config.x;
    match (&x.access_token, &x.access_token_secret) {
        (Some(t), Some(s)) if x.consumer_key.is_some() && x.consumer_secret.is_some() => {
            Some(AccessToken::new(t.expose_secret(), s.expose_secret()))
        }
        _ => None,
    }
}

/// The X REST client: OAuth 2.0 user tokens from `tokens` where an account has one, else
/// OAuth 1.0a when configured.
pub fn x_client(config: &Config, tokens: Option<&Arc<Tokens>>) -> anyhow::Result<XClient> {
    let x = &config.x;
    let mut cfg = XClientConfig::new(&x.api_url)?
        .with_media_hosts(MediaHosts::parse(&x.media_hosts.join(","))?);
    if let (Some(key), Some(secret)) = (&x.consumer_key, &x.consumer_secret) {
        cfg = cfg.with_consumer(Consumer::new(key.expose_secret(), secret.expose_secret()));
        if let Some(token) = oauth1_default_token(config) {
            cfg = cfg.with_default_token(token)?;
        }
        for account in &x.accounts {
            let (Ok(id), Some((token, secret))) =
                (XUserId::parse(account.user_id.clone()), &account.oauth1)
            else {
                continue;
            };
            cfg = cfg.with_account_token(
                id,
                AccessToken::new(token.expose_secret(), secret.expose_secret()),
            )?;
        }
    }
    if let Some(tokens) = tokens {
        cfg = cfg.with_user_tokens(Arc::new(StoreTokens(Arc::clone(tokens))));
    }
    if let Some(identity) = chat_identity(config)? {
        cfg = cfg.with_default_chat_identity(identity);
    }
    for account in &x.accounts {
        let Ok(id) = XUserId::parse(account.user_id.clone()) else {
            continue;
        };
        let own = match &account.chat {
            Some((blob, version)) => Some(
                ChatIdentity::from_blob_base64(blob.expose_secret(), version.clone())
                    .map_err(|e| anyhow::anyhow!("x.accounts.chat_keys of account {id}: {e}"))?,
            ),
            None => None,
        };
        cfg = cfg.with_chat_identity(id, own);
    }
    Ok(XClient::new(cfg)?)
}

/// The default business account's X Chat keys, when configured (both the blob and its
/// version, or neither).
pub fn chat_identity(config: &Config) -> anyhow::Result<Option<ChatIdentity>> {
    match (&config.x.chat_keys, &config.x.chat_key_version) {
        (None, None) => Ok(None),
        (Some(blob), Some(version)) => Ok(Some(
            ChatIdentity::from_blob_base64(blob.expose_secret(), version.clone())
                .map_err(|e| anyhow::anyhow!("XDM_X_CHAT_KEYS / XDM_X_CHAT_KEY_VERSION: {e}"))?,
        )),
        (Some(_), None) => anyhow::bail!(
            "XDM_X_CHAT_KEYS is set without XDM_X_CHAT_KEY_VERSION (the version X registered the keys under)"
        ),
        (None, Some(_)) => {
            anyhow::bail!("XDM_X_CHAT_KEY_VERSION is set without XDM_X_CHAT_KEYS")
        }
    }
}

/// The app-only client (webhooks, subscriptions, replay, the stream), when the bearer token is set.
pub fn app_client(config: &Config) -> anyhow::Result<Option<AppClient>> {
    let Some(bearer) = &config.x.bearer_token else {
        return Ok(None);
    };
    Ok(Some(AppClient::new(
        &config.x.api_url,
        bearer.expose_secret(),
    )?))
}

/// The secrets of X's webhook traffic: the OAuth 2.0 client secret and/or the consumer secret
/// (`None` when neither is set: X webhooks are refused).
pub fn webhook_secrets(config: &Config) -> Option<WebhookSecrets> {
    if config.webhook_secret().is_none() && config.client_secret().is_none() {
        return None;
    }
    Some(WebhookSecrets {
        consumer_secret: config.webhook_secret().map(str::to_owned),
        client_secret: config.client_secret().map(str::to_owned),
        crc_key: match config.x.crc_key {
            CrcKeySetting::Auto => CrcKey::Auto,
            CrcKeySetting::ClientSecret => CrcKey::ClientSecret,
            CrcKeySetting::ConsumerSecret => CrcKey::ConsumerSecret,
        },
    })
}

/// The SNS verifier for `/webhooks/connect`, when the topic is configured.
pub fn sns_verifier(config: &Config) -> anyhow::Result<Option<SnsVerifier>> {
    let Some(topic) = &config.connect.topic_arn else {
        return Ok(None);
    };
    Ok(Some(
        SnsVerifier::new(topic.clone(), config.sns.trusted_cert_urls.iter().cloned())?
            .with_max_age(std::time::Duration::from_secs(config.sns.max_age_secs))
            .with_signature_v2_required(config.sns.require_signature_v2),
    ))
}
