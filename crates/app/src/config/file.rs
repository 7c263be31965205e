//! The file layer: the shape of the TOML file (every key optional, unknown keys refused) and
//! reading it.

use std::path::Path;

use serde::Deserialize;

use super::error::ConfigError;

/// Reads and parses the TOML file at `path`.
pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The whole file: top-level settings and the `[x]`, `[connect]`, `[sns]`, `[delivery]`, `[http]`
/// and `[admin]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) store: Option<String>,
    pub(super) log_format: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) public_url: Option<String>,
    pub(super) x: Option<XFile>,
    pub(super) connect: Option<ConnectFile>,
    pub(super) sns: Option<SnsFile>,
    pub(super) delivery: Option<DeliveryFile>,
    pub(super) http: Option<HttpFile>,
    pub(super) admin: Option<AdminFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    pub(super) max_connections: Option<usize>,
    pub(super) header_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) body_timeout_ms: Option<u64>,
    pub(super) request_timeout_ms: Option<u64>,
    pub(super) max_buffered_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminFile {
    pub(super) listen: Option<String>,
    pub(super) token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct XFile {
    pub(super) consumer_key: Option<String>,
    pub(super) consumer_secret: Option<String>,
    pub(super) access_token: Option<String>,
    pub(super) access_token_secret: Option<String>,
    pub(super) api_url: Option<String>,
    pub(super) media_hosts: Option<Vec<String>>,
    pub(super) accounts: Option<Vec<XAccountFile>>,
    pub(super) bearer_token: Option<String>,
    pub(super) chat_keys: Option<String>,
    pub(super) chat_key_version: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) authorize_url: Option<String>,
    pub(super) redirect_uri: Option<String>,
    pub(super) delivery: Option<String>,
    pub(super) crc_key: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_id: Option<String>,
    pub(super) stream_silence_ms: Option<u64>,
    pub(super) catch_up: Option<bool>,
    pub(super) webhook_check_ms: Option<u64>,
    pub(super) stream_backfill_minutes: Option<u8>,
    pub(super) max_event_age_hours: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct XAccountFile {
    pub(super) user_id: String,
    /// OAuth 1.0a user token of the account; absent for an account logged in with OAuth 2.0
    /// (`x login`, tokens in the store).
    pub(super) access_token: Option<String>,
    pub(super) access_token_secret: Option<String>,
    /// The contact flow its chats start in (else `connect.contact_flow_id`).
    pub(super) contact_flow_id: Option<String>,
    /// Contact attributes added to its chats.
    pub(super) attributes: Option<std::collections::BTreeMap<String, String>>,
    /// Its X Chat key blob and the version X registered it under (`x chat-keys … --account`).
    pub(super) chat_keys: Option<String>,
    pub(super) chat_key_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectFile {
    pub(super) instance_id: Option<String>,
    pub(super) contact_flow_id: Option<String>,
    pub(super) topic_arn: Option<String>,
    pub(super) chat_duration_minutes: Option<u32>,
    pub(super) endpoint_url: Option<String>,
    pub(super) participant_endpoint_url: Option<String>,
    pub(super) attachment_types: Option<Vec<String>>,
    pub(super) profiles_domain: Option<String>,
    pub(super) profiles_endpoint_url: Option<String>,
    pub(super) persistent_chat_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnsFile {
    pub(super) trusted_cert_urls: Option<Vec<String>>,
    pub(super) max_age_secs: Option<u64>,
    pub(super) require_signature_v2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveryFile {
    pub(super) reorder_window_ms: Option<i64>,
    pub(super) max_attempts: Option<u32>,
    pub(super) retry_base_ms: Option<i64>,
    pub(super) lease_ms: Option<i64>,
    pub(super) concurrency: Option<usize>,
    pub(super) buffer_window_ms: Option<i64>,
}
