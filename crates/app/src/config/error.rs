//! The configuration's error: a file that cannot be read or parsed, or a setting that is
//! invalid (every message names the setting).

use std::path::PathBuf;

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

/// A setting's error: `{setting} is invalid: {reason}`.
pub(super) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}
