//! Building the adapters from the configuration, once, and plugging them into the core.

use std::sync::Arc;

use aws_config::SdkConfig;
use secrecy::ExposeSecret;
use xdm_aws_connect::sns::SnsVerifier;
use xdm_aws_connect::{ConnectClient, ConnectConfig};
use xdm_core::Bridge;
use xdm_core::chat_item::AttachmentRef;
use xdm_core::ids::{ConnectionToken, ContactId, ParticipantToken, XUserId};
use xdm_core::inbound::InboundMedia;
use xdm_core::media::{MediaStream, XMediaCategory};
use xdm_core::ports::{
    ChatMessage, ConnectApi, ConnectError, DmRequest, SentDm, SentDmRecord, StartChat, StartedChat,
    SystemClock, XApi, XError,
};
use xdm_core::profile::XProfile;
use xdm_core::session::ConnectionCredentials;
use xdm_store::{AnyStore, StoreUrl};
use xdm_x::{AccessToken, AppClient, Consumer, MediaHosts, XClient, XClientConfig};

use crate::x_tokens::{StoreTokens, Tokens};

use crate::config::{Config, CrcKeySetting};
use xdm_x::webhook::{CrcKey, WebhookSecrets};

/// The core with the production adapters. The store is shared with the OAuth 2.0 token keeper
/// and the catch-up's records.
pub type AppBridge = Bridge<Arc<AnyStore>, XPort, ConnectPort, SystemClock>;

/// Opens the store named by `XDM_STORE` (DynamoDB uses `sdk` when given, else the default AWS
/// configuration).
pub async fn open_store(url: &str, sdk: Option<&SdkConfig>) -> anyhow::Result<AnyStore> {
    let parsed = StoreUrl::parse(url)?;
    Ok(xdm_store::open_with(&parsed, sdk.cloned()).await?)
}

/// The X adapter, or why it cannot be built. When it is `Unconfigured` the dispatchers are not
/// started (nothing would be delivered), but webhooks are still accepted and kept.
#[derive(Debug)]
pub enum XPort {
    Client(XClient),
    Unconfigured(String),
}

impl XPort {
    /// The X client, when the configuration has credentials (OAuth 1.0a, or an OAuth 2.0 client
    /// whose user tokens `tokens` keeps).
    pub fn from_config(config: &Config, tokens: Option<&Arc<Tokens>>) -> Self {
        if !config.has_oauth1() && tokens.is_none() {
            return XPort::Unconfigured(
                "the X credentials are incomplete: set XDM_X_CLIENT_ID (OAuth 2.0) or the four OAuth 1.0a settings".to_owned(),
            );
        }
        match x_client(config, tokens) {
            Ok(client) => XPort::Client(client),
            Err(e) => XPort::Unconfigured(format!("{e:#}")),
        }
    }

    pub fn problem(&self) -> Option<&str> {
        match self {
            XPort::Client(_) => None,
            XPort::Unconfigured(why) => Some(why),
        }
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
            let Ok(id) = XUserId::parse(account.user_id.clone()) else {
                continue;
            };
            cfg = cfg.with_account_token(
                id,
                AccessToken::new(
                    account.access_token.expose_secret(),
                    account.access_token_secret.expose_secret(),
                ),
            )?;
        }
    }
    if let Some(tokens) = tokens {
        cfg = cfg.with_user_tokens(Arc::new(StoreTokens(Arc::clone(tokens))));
    }
    Ok(XClient::new(cfg)?)
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

impl XApi for XPort {
    async fn send_dm(&self, dm: &DmRequest) -> Result<SentDm, XError> {
        match self {
            XPort::Client(c) => c.send_dm(dm).await,
            XPort::Unconfigured(why) => Err(XError::Unauthorized(why.clone())),
        }
    }

    async fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> Result<Vec<SentDmRecord>, XError> {
        match self {
            XPort::Client(c) => c.sent_dms(business, recipient, since_ms).await,
            XPort::Unconfigured(why) => Err(XError::Unauthorized(why.clone())),
        }
    }

    async fn user(&self, business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        match self {
            XPort::Client(c) => c.user(business, id).await,
            XPort::Unconfigured(why) => Err(XError::Unauthorized(why.clone())),
        }
    }

    async fn download_media(
        &self,
        business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaStream, XError> {
        match self {
            XPort::Client(c) => c.download_media(business, media, max_bytes).await,
            XPort::Unconfigured(why) => Err(XError::Unauthorized(why.clone())),
        }
    }

    async fn upload_media(
        &self,
        business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> Result<String, XError> {
        match self {
            XPort::Client(c) => c.upload_media(business, category, file).await,
            XPort::Unconfigured(why) => Err(XError::Unauthorized(why.clone())),
        }
    }
}

/// The Amazon Connect adapter, or why it cannot be built (see [`XPort`]).
#[derive(Debug)]
pub enum ConnectPort {
    Client(Box<ConnectClient>),
    Unconfigured(String),
}

impl ConnectPort {
    pub fn from_config(config: &Config, sdk: Option<&SdkConfig>) -> Self {
        let c = &config.connect;
        let (Some(instance), Some(flow), Some(topic)) =
            (&c.instance_id, &c.contact_flow_id, &c.topic_arn)
        else {
            return ConnectPort::Unconfigured(
                "the Amazon Connect settings (XDM_CONNECT_*) are incomplete".to_owned(),
            );
        };
        let Some(sdk) = sdk else {
            return ConnectPort::Unconfigured(
                "the AWS configuration could not be loaded".to_owned(),
            );
        };
        let mut cfg = ConnectConfig::new(instance, flow, topic);
        cfg.chat_duration_minutes = c.chat_duration_minutes;
        cfg.connect_endpoint = c.endpoint_url.clone();
        cfg.participant_endpoint = c.participant_endpoint_url.clone();
        match ConnectClient::new(cfg, sdk) {
            Ok(client) => ConnectPort::Client(Box::new(client)),
            Err(e) => ConnectPort::Unconfigured(e.to_string()),
        }
    }

    pub fn problem(&self) -> Option<&str> {
        match self {
            ConnectPort::Client(_) => None,
            ConnectPort::Unconfigured(why) => Some(why),
        }
    }

    fn unconfigured(why: &str) -> ConnectError {
        ConnectError::Unauthorized(why.to_owned())
    }
}

impl ConnectApi for ConnectPort {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        match self {
            ConnectPort::Client(c) => c.start_chat(req).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn start_streaming(
        &self,
        contact: &ContactId,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        match self {
            ConnectPort::Client(c) => c.start_streaming(contact, client_token).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        match self {
            ConnectPort::Client(c) => c.stop_contact(contact).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn connect_participant(
        &self,
        token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        match self {
            ConnectPort::Client(c) => c.connect_participant(token).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn send_message(
        &self,
        connection: &ConnectionToken,
        message: &ChatMessage,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        match self {
            ConnectPort::Client(c) => c.send_message(connection, message, client_token).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn disconnect(
        &self,
        connection: &ConnectionToken,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        match self {
            ConnectPort::Client(c) => c.disconnect(connection, client_token).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn upload_attachment(
        &self,
        connection: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        match self {
            ConnectPort::Client(c) => c.upload_attachment(connection, file, client_token).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }

    async fn open_attachment(
        &self,
        connection: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        match self {
            ConnectPort::Client(c) => c.open_attachment(connection, attachment).await,
            ConnectPort::Unconfigured(why) => Err(Self::unconfigured(why)),
        }
    }
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
    Ok(Some(SnsVerifier::new(
        topic.clone(),
        config.sns.trusted_cert_urls.iter().cloned(),
    )?))
}
