//! The default of every setting that has one, and the defaults derived from other settings.

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

/// The longest message-buffering window (`XDM_BUFFER_WINDOW_MS`): every DM waits this long.
pub const MAX_BUFFER_WINDOW_MS: i64 = 60_000;

/// The longest look-back of persistent chat (`XDM_CONNECT_PERSISTENT_CHAT_DAYS`): two years,
/// how long Amazon Connect keeps contact records.
pub const MAX_PERSISTENT_CHAT_DAYS: u32 = 730;

/// Connections a listener serves at once; one more is closed at once (`XDM_HTTP_MAX_CONNECTIONS`).
/// Well under the common 1,024-file limit, beside the store and the outbound connections.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 512;
/// From a request's first byte to the end of its headers (slowloris).
pub const DEFAULT_HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;
/// How long a connection may wait for a request (the next one on a kept-alive connection): longer
/// than a load balancer's usual 60 s, so that the proxy in front closes idle connections first.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_MS: u64 = 75_000;
/// From the end of the headers to the end of the body (stalled bodies).
pub const DEFAULT_HTTP_BODY_TIMEOUT_MS: u64 = 15_000;
/// From the end of the headers to the response.
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Request bodies held in memory at once over all connections of a listener: 64 SNS messages
/// of the largest size (256 KiB), hundreds of X deliveries; 16 bodies of `XDM_MAX_BODY_BYTES`.
pub const DEFAULT_HTTP_MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
/// The admin listener (`/metrics`, `/healthz` with details): loopback only by default.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// X's authorize page, or the emulator's when `XDM_X_API_URL` is not X's.
pub(super) fn default_authorize_url(api_url: &str) -> String {
    if api_url.trim_end_matches('/') == DEFAULT_X_API_URL {
        DEFAULT_X_AUTHORIZE_URL.to_owned()
    } else {
        format!("{}/i/oauth2/authorize", api_url.trim_end_matches('/'))
    }
}
