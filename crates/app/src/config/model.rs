//! The typed configuration, as the rest of the app reads it once loaded and validated, and what
//! it answers about itself (secrets, derived URLs, what delivery still lacks).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use xdm_core::ids::XUserId;
use xdm_core::{AccountRouting, BridgeConfig};

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
    /// The limits every HTTP listener of `serve` applies (`[http]`, `XDM_HTTP_*`).
    pub http: HttpSettings,
    /// The admin listener of `serve` (`[admin]`, `XDM_ADMIN_*`).
    pub admin: AdminSettings,
    /// What loading the file found unsafe but did not refuse (a file holding secrets that others
    /// may read), each a sentence with its fix: logged by `serve`, printed by `doctor`.
    pub file_warnings: Vec<String>,
}

/// What an HTTP listener allows a client (`XDM_HTTP_*`; docs/setup.md, The HTTP listeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connections served at once per listener (the admin listener: at most 64); a connection
    /// beyond is closed as soon as it is accepted.
    pub max_connections: usize,
    /// From a request's first byte to the end of its headers.
    pub header_timeout_ms: u64,
    /// How long a connection may wait for its first or next request.
    pub idle_timeout_ms: u64,
    /// From the end of a request's headers to the end of its body.
    pub body_timeout_ms: u64,
    /// From the end of a request's headers to its response.
    pub request_timeout_ms: u64,
    /// Request bodies held in memory at once over all connections of a listener.
    pub max_buffered_bytes: usize,
}

/// The admin listener: `/metrics` and `/healthz` with its details, behind a bearer token.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// `XDM_ADMIN_LISTEN`; `None` when `off`.
    pub listen: Option<SocketAddr>,
    /// `XDM_ADMIN_TOKEN`; unset: the admin listener answers 401 to every request.
    pub token: Option<SecretString>,
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
    /// X Chat: the default business account's key blob (base64 of X's Chat SDK export) and the
    /// version X registered its public keys under (`xdm-connect x chat-keys`).
    pub chat_keys: Option<SecretString>,
    pub chat_key_version: Option<String>,
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

/// A business account beyond the default one (`[[x.accounts]]`; on Lambda the secret's
/// `accounts`): its OAuth 1.0a token, if it does not use OAuth 2.0, and how its chats start.
#[derive(Debug, Clone)]
pub struct XAccount {
    pub user_id: String,
    /// The OAuth 1.0a user token (token, secret); `None` for an OAuth 2.0 account.
    pub oauth1: Option<(SecretString, SecretString)>,
    /// The contact flow its chats start in; `None`: `XDM_CONNECT_CONTACT_FLOW_ID`.
    pub contact_flow_id: Option<String>,
    /// Contact attributes added to its chats.
    pub attributes: BTreeMap<String, String>,
    /// Its X Chat key blob (base64) and registered version; `None`: its customers on X Chat
    /// cannot be read (the default account's keys are the default account's only).
    pub chat: Option<(SecretString, String)>,
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
    /// `XDM_CONNECT_PROFILES_DOMAIN`: the Customer Profiles domain new chats find or create the
    /// customer's profile in; `None`: off.
    pub profiles_domain: Option<String>,
    /// Overrides the Customer Profiles endpoint (normally `AWS_ENDPOINT_URL_CUSTOMER_PROFILES`).
    pub profiles_endpoint_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SnsSettings {
    pub trusted_cert_urls: Vec<String>,
    /// `XDM_SNS_MAX_AGE_SECS`: messages published longer ago (plus 5 minutes of clock skew) are
    /// refused as replays.
    pub max_age_secs: u64,
    /// `XDM_SNS_REQUIRE_SIGNATURE_V2`: refuse `SignatureVersion` 1 (SHA1).
    pub require_signature_v2: bool,
}

impl Config {
    /// The core's configuration: `delivery` with each further business account's routing
    /// (`[[x.accounts]]`, or on Lambda the secret's `accounts`).
    pub fn bridge_config(&self) -> BridgeConfig {
        BridgeConfig {
            accounts: account_routing(&self.x.accounts),
            ..self.delivery.clone()
        }
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

/// The core's routing of each further business account's chats.
fn account_routing(accounts: &[XAccount]) -> BTreeMap<XUserId, AccountRouting> {
    accounts
        .iter()
        .filter_map(|a| {
            let id = XUserId::parse(a.user_id.clone()).ok()?;
            Some((
                id,
                AccountRouting {
                    contact_flow_id: a.contact_flow_id.clone(),
                    attributes: a.attributes.clone(),
                },
            ))
        })
        .collect()
}
