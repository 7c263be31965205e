//! Configuration: a TOML file (`--config`, default `xdm-connect.toml` when present) overridden by
//! `XDM_*` environment variables (docs/architecture.md, Configuration). AWS endpoints and credentials come from the
//! standard AWS variables, read by `aws-config`.
//!
//! Hand-written layering rather than figment/config: the environment names are a stable public
//! interface with a few list-valued and numeric settings, and every error must name the setting
//! it is about; an explicit table says both more plainly than a generic key splitter.
//!
//! One typed configuration, layered file → environment, in modules by concern:
//!
//! * `model`: the typed, validated configuration ([`Config`] and its sections) and what it
//!   answers about itself;
//! * `load`: [`Config::load`] and friends: the file layer, then the environment over it, setting
//!   by setting, each value checked as it is read;
//! * `file`: the TOML file's shape; `parse`: one setting's text (lists, numbers, URLs);
//! * `file_mode`: whether the file gives its secrets away (readable by others);
//! * `http`: reading the HTTP listeners' settings (`[http]`, `[admin]`);
//! * `replay`: the replay defence's bounds (X event age, SNS message age, SNS signature version),
//!   checked against the job retention;
//! * `defaults`: the default values; `error`: [`ConfigError`].

mod defaults;
mod error;
mod file;
mod file_mode;
mod http;
mod load;
mod model;
mod parse;
mod replay;
#[cfg(test)]
mod tests;

pub use defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_CONFIG_FILE, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_STORE, DEFAULT_X_API_URL, DEFAULT_X_AUTHORIZE_URL, DEFAULT_X_MEDIA_HOSTS,
    DEFAULT_X_REDIRECT_URI, DEFAULT_X_STREAM_SILENCE_MS, DEFAULT_X_WEBHOOK_CHECK_MS,
};
pub use error::ConfigError;
pub(crate) use load::x_account;
pub use model::{
    AdminSettings, Config, ConnectSettings, CrcKeySetting, HttpSettings, LogFormat, SnsSettings,
    XAccount, XDelivery, XSettings,
};
