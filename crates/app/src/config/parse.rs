//! Reading one setting's text: comma-separated lists, numbers, switches and http(s) URLs, every
//! error naming the setting.

use super::error::{ConfigError, invalid};

/// `a, b,,c` → `["a", "b", "c"]`.
pub(super) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_num<T: std::str::FromStr>(
    setting: &'static str,
    v: &str,
) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(setting, format!("`{v}` is not a valid number")))
}

/// A switch: `on`/`true`/`1` or `off`/`false`/`0`.
pub(super) fn parse_switch(setting: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(invalid(
            setting,
            format!("`{other}`: use on or off (true or false, 1 or 0)"),
        )),
    }
}

pub(super) fn check_http_url(setting: &'static str, v: &str) -> Result<(), ConfigError> {
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(invalid(setting, format!("`{v}` is not an http(s) URL"))),
    }
}
