//! The HTTP listeners' settings: the limits every listener applies (`[http]`, `XDM_HTTP_*`) and
//! the admin listener (`[admin]`, `XDM_ADMIN_*`), read file → environment and checked, each
//! error naming its setting.

use std::net::SocketAddr;

use secrecy::SecretString;

use super::defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_HTTP_BODY_TIMEOUT_MS, DEFAULT_HTTP_HEADER_TIMEOUT_MS,
    DEFAULT_HTTP_IDLE_TIMEOUT_MS, DEFAULT_HTTP_MAX_BUFFERED_BYTES, DEFAULT_HTTP_MAX_CONNECTIONS,
    DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
};
use super::error::{ConfigError, invalid};
use super::file::{AdminFile, HttpFile};
use super::model::{AdminSettings, HttpSettings};
use super::parse::parse_num;

/// An admin token shorter than this is refused: it is the only thing between the network and
/// the bridge's metrics and health details, and failed attempts are not slowed down.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// The most connections one listener may be allowed (tokio's semaphore holds at most
/// `usize::MAX >> 3` permits; far beyond any file limit anyway).
const MAX_CONNECTIONS_CEILING: usize = 1 << 20;

/// `[http]` over the defaults, the environment over both. `max_body_bytes` is the limit of one
/// body: the memory for bodies must hold at least one.
pub(super) fn http_settings(
    file: HttpFile,
    env: &dyn Fn(&str) -> Option<String>,
    max_body_bytes: usize,
) -> Result<HttpSettings, ConfigError> {
    let ms = |setting: &'static str, file_value: Option<u64>, default: u64| {
        let v = match env(setting) {
            Some(v) => parse_num(setting, &v)?,
            None => file_value.unwrap_or(default),
        };
        if v < 100 {
            return Err(invalid(setting, "must be at least 100"));
        }
        Ok(v)
    };
    let max_connections = match env("XDM_HTTP_MAX_CONNECTIONS") {
        Some(v) => parse_num("XDM_HTTP_MAX_CONNECTIONS", &v)?,
        None => file.max_connections.unwrap_or(DEFAULT_HTTP_MAX_CONNECTIONS),
    };
    if !(1..=MAX_CONNECTIONS_CEILING).contains(&max_connections) {
        return Err(invalid(
            "XDM_HTTP_MAX_CONNECTIONS",
            format!("must be between 1 and {MAX_CONNECTIONS_CEILING}"),
        ));
    }
    let max_buffered_bytes = match env("XDM_HTTP_MAX_BUFFERED_BYTES") {
        Some(v) => parse_num("XDM_HTTP_MAX_BUFFERED_BYTES", &v)?,
        None => file
            .max_buffered_bytes
            .unwrap_or(DEFAULT_HTTP_MAX_BUFFERED_BYTES),
    };
    if max_buffered_bytes < max_body_bytes {
        return Err(invalid(
            "XDM_HTTP_MAX_BUFFERED_BYTES",
            format!("must be at least XDM_MAX_BODY_BYTES ({max_body_bytes})"),
        ));
    }
    Ok(HttpSettings {
        max_connections,
        header_timeout_ms: ms(
            "XDM_HTTP_HEADER_TIMEOUT_MS",
            file.header_timeout_ms,
            DEFAULT_HTTP_HEADER_TIMEOUT_MS,
        )?,
        idle_timeout_ms: ms(
            "XDM_HTTP_IDLE_TIMEOUT_MS",
            file.idle_timeout_ms,
            DEFAULT_HTTP_IDLE_TIMEOUT_MS,
        )?,
        body_timeout_ms: ms(
            "XDM_HTTP_BODY_TIMEOUT_MS",
            file.body_timeout_ms,
            DEFAULT_HTTP_BODY_TIMEOUT_MS,
        )?,
        request_timeout_ms: ms(
            "XDM_HTTP_REQUEST_TIMEOUT_MS",
            file.request_timeout_ms,
            DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
        )?,
        max_buffered_bytes,
    })
}

/// `[admin]` over the defaults, the environment over both; `listen` is the public listener's
/// address (the two may not be the same).
pub(super) fn admin_settings(
    file: AdminFile,
    env: &dyn Fn(&str) -> Option<String>,
    listen: SocketAddr,
) -> Result<AdminSettings, ConfigError> {
    let raw = env("XDM_ADMIN_LISTEN")
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
    let admin_listen = match raw.trim() {
        "off" => None,
        other => Some(other.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "XDM_ADMIN_LISTEN",
                format!("`{raw}` is not an address like 127.0.0.1:9090, nor off"),
            )
        })?),
    };
    if let Some(a) = admin_listen
        && a.port() != 0
        && a == listen
    {
        return Err(invalid(
            "XDM_ADMIN_LISTEN",
            format!("`{a}` is XDM_LISTEN's address: the admin listener needs its own port"),
        ));
    }
    let token = env("XDM_ADMIN_TOKEN").or(file.token);
    if let Some(t) = &token
        && t.trim().chars().count() < MIN_ADMIN_TOKEN_CHARS
    {
        return Err(invalid(
            "XDM_ADMIN_TOKEN",
            format!(
                "shorter than {MIN_ADMIN_TOKEN_CHARS} characters: use a long random value (`openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(AdminSettings {
        listen: admin_listen,
        token: token.map(|t| SecretString::from(t.trim().to_owned())),
    })
}
