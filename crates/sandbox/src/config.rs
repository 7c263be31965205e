//! Sandbox configuration. `SandboxConfig::default()` gives fixed, documented development values so
//! that a bridge configured with the same values talks to the sandbox without further setup.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::x::dm_spec::PayloadShape;

/// Everything the sandbox needs to start. Every field has a default (see each type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Listen address; default `127.0.0.1:0` (a free port; read it back with `SandboxHandle::base_url`).
    pub listen: SocketAddr,
    pub x: XConfig,
    pub connect: ConnectConfig,
    /// Amazon Connect Customer Profiles: its domains.
    pub profiles: ProfilesConfig,
    pub sns: SnsConfig,
    pub media: MediaConfig,
    /// Seed of the fault profiles' PRNGs (default 0); a profile's own `seed` overrides it. Each
    /// operation mixes it with its own identity, so runs with the same calls draw the same faults.
    pub fault_seed: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            x: XConfig::default(),
            connect: ConnectConfig::default(),
            profiles: ProfilesConfig::default(),
            sns: SnsConfig::default(),
            media: MediaConfig::default(),
            fault_seed: 0,
        }
    }
}

/// The X side: the one app + user credential set the bridge is configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XConfig {
    /// Default `sandbox-consumer-key`.
    pub consumer_key: String,
    /// Default `sandbox-consumer-secret`. Also the key of CRC answers and webhook signatures.
    pub consumer_secret: String,
    /// Default `4337869213-sandbox-access-token` (X access tokens start with the user id).
    pub access_token: String,
    /// Default `sandbox-access-token-secret`.
    pub access_token_secret: String,
    /// The account the access token belongs to: sender of outbound DMs, `for_user_id` of deliveries.
    pub business: BusinessAccount,
    /// The app shown as `source_app_id` / `apps` in echoes of DMs sent through the API.
    pub app: XApp,
    /// A webhook registered at start. It is validated by a CRC on first use (the bridge may start later).
    pub webhook_url: Option<String>,
    /// Like X: a DM sent through the API is also delivered to the webhook (default true).
    pub echo_outbound: bool,
    /// Payload shape of those echoes (default Account Activity).
    pub echo_shape: PayloadShape,
    /// OAuth 1.0a `oauth_timestamp` tolerance in seconds (default 300).
    pub oauth_max_clock_skew_secs: u64,
    /// Per-user, per-endpoint request window; `None` (default) = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Timeout of CRC requests and event POSTs to the webhook, in milliseconds (default 10,000).
    pub webhook_timeout_ms: u64,
    /// Media upload v2.
    pub media: XMediaConfig,
    /// OAuth 2.0 client id (default `sandbox-client-id`).
    pub client_id: String,
    /// OAuth 2.0 client secret (default `sandbox-client-secret`): confidential-client token calls,
    /// the `x-twitter-webhooks-signature-oauth2` header and (by default) CRC answers.
    pub client_secret: String,
    /// The app-only Bearer token (default `sandbox-app-bearer-token`); any other Bearer that is not
    /// an issued OAuth 2.0 user token is refused.
    pub bearer_token: String,
    /// OAuth 2.0 authorization code flow with PKCE and refresh tokens.
    pub oauth2: OAuth2Config,
    /// The key of CRC `response_token`s (default the client secret, as X's current quickstart).
    pub crc_secret: CrcSecret,
    /// Which signature headers event POSTs carry (default both).
    pub signature_headers: SignatureHeaders,
    /// Serve the Account Activity API (default false: X retired it on 2027-01-01). When true,
    /// `set_webhook` also subscribes the business account through it.
    pub account_activity_api: bool,
    /// Webhooks per app (default 1).
    pub max_webhooks: usize,
    /// X Activity API subscriptions per app (default 1,500).
    pub max_subscriptions: usize,
    /// Keep-alive period of activity streams in milliseconds (default 20,000).
    pub stream_keepalive_ms: u64,
    /// Concurrent activity stream connections (default 2); one more is answered 429.
    pub max_stream_connections: usize,
    /// `GET /2/dm_events` window per user (default 15 per 900 s); `None` = unlimited.
    pub dm_events_rate_limit: Option<RateLimit>,
    /// Answer `POST /2/activity/subscriptions` with the quickstart's flat
    /// `{"data":{"subscription_id",…}}` instead of `{"data":{"subscription":{…}},"meta":{…}}`.
    pub flat_subscription_answers: bool,
}

/// OAuth 2.0 settings (changeable at run time: `SandboxHandle::set_oauth2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuth2Config {
    /// Lifetime of access tokens in seconds (default 7,200, X's two hours).
    pub access_token_lifetime_secs: u64,
    /// Refresh tokens are spent by use; a spent one revokes its family (default true, like X).
    pub refresh_single_use: bool,
    /// The user who approves authorize requests (default: the business account).
    pub approver: Option<String>,
}

impl Default for OAuth2Config {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 7_200,
            refresh_single_use: true,
            approver: None,
        }
    }
}

/// The HMAC-SHA256 key of CRC answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CrcSecret {
    /// The OAuth 2.0 client secret (X's current webhook quickstart).
    #[default]
    ClientSecret,
    /// The OAuth 1.0a consumer secret (the Account Activity API documentation).
    ConsumerSecret,
}

/// Which signature headers webhook event POSTs carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureHeaders {
    /// `x-twitter-webhooks-signature` (consumer secret) and `…-oauth2` (client secret).
    #[default]
    Both,
    /// Only `x-twitter-webhooks-signature`, keyed with the consumer secret.
    Legacy,
    /// Only `x-twitter-webhooks-signature-oauth2`, keyed with the client secret.
    OAuth2,
}

impl Default for XConfig {
    fn default() -> Self {
        Self {
            consumer_key: "sandbox-consumer-key".into(),
            consumer_secret: "sandbox-consumer-secret".into(),
            access_token: "4337869213-sandbox-access-token".into(),
            access_token_secret: "sandbox-access-token-secret".into(),
            business: BusinessAccount::default(),
            app: XApp::default(),
            webhook_url: None,
            echo_outbound: true,
            echo_shape: PayloadShape::Aaa,
            oauth_max_clock_skew_secs: 300,
            rate_limit: None,
            webhook_timeout_ms: 10_000,
            media: XMediaConfig::default(),
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            bearer_token: "sandbox-app-bearer-token".into(),
            oauth2: OAuth2Config::default(),
            crc_secret: CrcSecret::default(),
            signature_headers: SignatureHeaders::default(),
            account_activity_api: false,
            max_webhooks: 1,
            max_subscriptions: 1_500,
            stream_keepalive_ms: 20_000,
            max_stream_connections: 2,
            dm_events_rate_limit: Some(RateLimit {
                requests: 15,
                window_secs: 900,
            }),
            flat_subscription_answers: false,
        }
    }
}

impl XConfig {
    /// The key CRC answers are checked with.
    pub fn crc_key(&self) -> &str {
        match self.crc_secret {
            CrcSecret::ClientSecret => &self.client_secret,
            CrcSecret::ConsumerSecret => &self.consumer_secret,
        }
    }
}

/// X media upload v2 behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct XMediaConfig {
    /// STATUS polls after `finalize` until a GIF or video is `succeeded` (default 2: the first
    /// answers `in_progress`, the second `succeeded`). A `MediaProcessing` fault makes the last
    /// one `failed` instead.
    pub processing_polls: u32,
    /// `processing_info.check_after_secs` (default 1).
    pub check_after_secs: u64,
    /// Largest `media` of one `append` (default 5 MiB; X's v2 maximum is undocumented, its v1.1
    /// sample used 4 MB and the v2 docs 1 MB chunks).
    pub max_segment_bytes: u64,
    /// `expires_after_secs` (default 86,400): media older than this cannot be sent.
    pub expires_after_secs: u64,
}

impl Default for XMediaConfig {
    fn default() -> Self {
        Self {
            processing_polls: 2,
            check_after_secs: 1,
            max_segment_bytes: 5 * MIB,
            expires_after_secs: 86_400,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// Stored files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Uploads (X media, Connect attachments) up to this size keep their bytes (default 1 MiB);
    /// larger ones keep only size and SHA-256, so the sandbox never holds a large file.
    pub keep_bytes_up_to: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            keep_bytes_up_to: MIB,
        }
    }
}

/// The business X account (default `4337869213` "Acme Support" `@AcmeSupport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BusinessAccount {
    pub id: String,
    pub name: String,
    pub username: String,
}

impl Default for BusinessAccount {
    fn default() -> Self {
        Self {
            id: "4337869213".into(),
            name: "Acme Support".into(),
            username: "AcmeSupport".into(),
        }
    }
}

/// The X app (default id `13090192`, name `AcmeSupportBridge`, url `https://example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct XApp {
    pub id: String,
    pub name: String,
    pub url: String,
}

impl Default for XApp {
    fn default() -> Self {
        Self {
            id: "13090192".into(),
            name: "AcmeSupportBridge".into(),
            url: "https://example.com".into(),
        }
    }
}

/// A fixed request window: at most `requests` calls per `window_secs`, per user and endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u64,
}

/// The Amazon Connect instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectConfig {
    /// Default `6f8c1a52-3b7e-4d2a-9c11-5a0e2b7d9f40`.
    pub instance_id: String,
    /// Default `c2a9e4f7-8d13-4b6e-a5f2-0e7d3c9b1a68`.
    pub contact_flow_id: String,
    /// Default `us-east-1` (SigV4 credential scopes must name it; streaming topics must live in it).
    pub region: String,
    /// Default `123456789012`.
    pub account_id: String,
    /// Lifetime of a ConnectionToken, in seconds (default 86,400 = 24 h).
    pub connection_token_lifetime_secs: u64,
    /// Per-message limit of `text/plain` / `text/markdown`, in characters (default 1,024).
    pub max_message_chars: usize,
    /// Attachment MIME types StartAttachmentUpload accepts (default: docs/protocols.md B2's list
    /// `.csv .doc .docx .jpeg .jpg .pdf .png .ppt .pptx .txt .wav .xls .xlsx` plus `video/mp4` and
    /// `video/quicktime`, see [`DEFAULT_ATTACHMENT_TYPES`]).
    pub attachment_types: Vec<String>,
    /// Largest attachment (default 20 MiB).
    pub max_attachment_bytes: u64,
    /// Attachments per chat (default 35); one more is `ServiceQuotaExceededException` (402).
    pub max_attachments_per_chat: u32,
    /// How long pre-signed upload URLs stay valid (default 300 s).
    pub attachment_url_expiry_secs: u64,
    /// The scan of uploaded attachments (changeable at run time: `set_attachment_scan`).
    pub attachment_scan: AttachmentScan,
    /// More `HeadersToInclude` beyond the eight Connect sends (default none): e.g. an unusual
    /// header proves the bridge copies them all rather than a list it knows.
    pub attachment_extra_headers: Vec<(String, String)>,
}

/// Connect's documented attachment types plus the video types newer instances accept.
pub const DEFAULT_ATTACHMENT_TYPES: &[&str] = &[
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "image/jpeg",
    "application/pdf",
    "image/png",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text/plain",
    "audio/wav",
    "audio/x-wav",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "video/mp4",
    "video/quicktime",
];

/// What Connect's scan of a completed customer upload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentScan {
    /// `0` (default): the ATTACHMENT item carries the verdict at once. Otherwise the item is
    /// `IN_PROGRESS` and a second ATTACHMENT item with the verdict follows after this many ms.
    pub delay_ms: u64,
    pub verdict: ScanVerdict,
}

/// The outcome of an attachment scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanVerdict {
    #[default]
    Approved,
    Rejected,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            instance_id: "6f8c1a52-3b7e-4d2a-9c11-5a0e2b7d9f40".into(),
            contact_flow_id: "c2a9e4f7-8d13-4b6e-a5f2-0e7d3c9b1a68".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            connection_token_lifetime_secs: 86_400,
            max_message_chars: 1024,
            attachment_types: DEFAULT_ATTACHMENT_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            max_attachment_bytes: 20 * MIB,
            max_attachments_per_chat: 35,
            attachment_url_expiry_secs: 300,
            attachment_scan: AttachmentScan::default(),
            attachment_extra_headers: Vec::new(),
        }
    }
}

/// Amazon Connect Customer Profiles (service `profile`, SigV4 in `ConnectConfig::region`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfilesConfig {
    /// The domains that exist (default one, `xdm-demo`), each empty at start. SearchProfiles,
    /// CreateProfile and UpdateProfile on any other `DomainName` answer 404
    /// `ResourceNotFoundException`.
    pub domains: Vec<String>,
}

/// The Customer Profiles domain of the default configuration.
pub const DEFAULT_PROFILES_DOMAIN: &str = "xdm-demo";

impl Default for ProfilesConfig {
    fn default() -> Self {
        Self {
            domains: vec![DEFAULT_PROFILES_DOMAIN.to_owned()],
        }
    }
}

/// SNS: the streaming topic and how notifications are signed and retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnsConfig {
    /// Default `arn:aws:sns:us-east-1:123456789012:xdm-sandbox-chat`.
    pub topic_arn: String,
    /// `"1"` (SHA1withRSA, default) or `"2"` (SHA256withRSA).
    pub signature_version: SignatureVersion,
    /// Retries after a failed attempt (default 3; real SNS: 3 retries 20 s apart).
    pub retries: u32,
    /// Delay between attempts in milliseconds (default 1,000).
    pub retry_delay_ms: u64,
    /// Per-attempt HTTP timeout in milliseconds (default 15,000).
    pub timeout_ms: u64,
}

impl Default for SnsConfig {
    fn default() -> Self {
        Self {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:xdm-sandbox-chat".into(),
            signature_version: SignatureVersion::V1,
            retries: 3,
            retry_delay_ms: 1_000,
            timeout_ms: 15_000,
        }
    }
}

/// SNS `SignatureVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureVersion {
    /// SHA1withRSA.
    #[default]
    #[serde(rename = "1")]
    V1,
    /// SHA256withRSA.
    #[serde(rename = "2")]
    V2,
}

impl SignatureVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1",
            Self::V2 => "2",
        }
    }
}
