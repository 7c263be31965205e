//! [`XClientConfig`]: how to reach X and as whom — the API base URL, the OAuth 1.0a consumer and
//! tokens, the OAuth 2.0 token source, the timeouts and the media host allow-list — each setting
//! checked as it is given ([`XConfigError`] names the setting that cannot work).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;
use xdm_core::ids::XUserId;

use crate::auth::{Credentials, UserTokenSource};
use crate::chat::ChatIdentity;
use crate::media_hosts::{MediaHosts, MediaHostsError};
use crate::oauth1::{AccessToken, Consumer};

/// X's REST base when `XDM_X_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.x.com";
/// The setting that overrides the base URL (emulators, tests).
pub const API_URL_SETTING: &str = "XDM_X_API_URL";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Media downloads: the longest silence between two reads (there is no total timeout).
const DEFAULT_MEDIA_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Media upload: the whole of one `append` request (one chunk of at most
/// [`crate::media_upload::MEDIA_CHUNK_BYTES`]: 1 MiB in 60 s is ~140 kbit/s at the least).
const DEFAULT_MEDIA_APPEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Media upload: how long to wait for X to process a file after `finalize`.
const DEFAULT_MEDIA_PROCESSING_LIMIT: Duration = Duration::from_secs(600);

/// A setting that cannot work. The message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XConfigError {
    #[error("{API_URL_SETTING} is not a usable base URL: {0}")]
    ApiUrl(String),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("the access token for X account {0} is empty")]
    EmptyAccountToken(XUserId),
    #[error("cannot build the HTTP client for X: {0}")]
    HttpClient(String),
    #[error(transparent)]
    MediaHosts(#[from] MediaHostsError),
}

/// How to reach X and as whom.
#[derive(Debug, Clone)]
pub struct XClientConfig {
    /// Normalised: http(s), no query or fragment, no trailing slash.
    pub(crate) api_url: String,
    pub(crate) credentials: Credentials,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) media_hosts: MediaHosts,
    pub(crate) media: MediaTimeouts,
    /// X Chat keys, per business account (`None`: that account has none), and those of the
    /// accounts not named here (the default account).
    pub(crate) chat: BTreeMap<XUserId, Option<ChatIdentity>>,
    pub(crate) default_chat: Option<ChatIdentity>,
}

/// The timeouts of the media calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaTimeouts {
    /// Downloads: the longest wait for the next bytes (answer head or body).
    pub(crate) read: Duration,
    /// Upload: one whole `append` request.
    pub(crate) append: Duration,
    /// Upload: the total wait for X's processing after `finalize`.
    pub(crate) processing: Duration,
}

impl XClientConfig {
    /// OAuth 1.0a with a consumer and a default token (the set-up before OAuth 2.0): [`Self::new`]
    /// with [`Self::with_consumer`] and [`Self::with_default_token`], all checked here.
    pub fn oauth1(
        api_url: &str,
        consumer: Consumer,
        default_token: AccessToken,
    ) -> Result<Self, XConfigError> {
        check_consumer(&consumer)?;
        Self::new(api_url)?
            .with_consumer(consumer)
            .with_default_token(default_token)
    }

    /// `api_url` is the base of every call (`https://api.x.com`, or an emulator's
    /// `http://127.0.0.1:port[/prefix]`); a trailing slash is ignored. No credentials yet: add
    /// OAuth 1.0a ([`Self::with_consumer`], [`Self::with_default_token`],
    /// [`Self::with_account_token`]) and/or OAuth 2.0 ([`Self::with_user_tokens`]). A call for an
    /// account with neither fails with `Unauthorized`.
    pub fn new(api_url: &str) -> Result<Self, XConfigError> {
        let api_url = normalise_api_url(api_url)?;
        Ok(Self {
            api_url,
            credentials: Credentials::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            media_hosts: MediaHosts::default(),
            media: MediaTimeouts {
                read: DEFAULT_MEDIA_READ_TIMEOUT,
                append: DEFAULT_MEDIA_APPEND_TIMEOUT,
                processing: DEFAULT_MEDIA_PROCESSING_LIMIT,
            },
            chat: BTreeMap::new(),
            default_chat: None,
        })
    }

    /// The X Chat keys of `business` (its customers on X Chat are read and answered with them);
    /// `None`: it has none (and does not use the default account's).
    pub fn with_chat_identity(mut self, business: XUserId, identity: Option<ChatIdentity>) -> Self {
        self.chat.insert(business, identity);
        self
    }

    /// The X Chat keys of the accounts not given any with [`Self::with_chat_identity`] (the
    /// default account).
    pub fn with_default_chat_identity(mut self, identity: ChatIdentity) -> Self {
        self.default_chat = Some(identity);
        self
    }

    /// The app's OAuth 1.0a consumer (X "API key" and secret), needed by every OAuth 1.0a call
    /// (an empty key or secret is refused by [`crate::XClient::new`]).
    pub fn with_consumer(mut self, consumer: Consumer) -> Self {
        self.credentials.consumer = Some(consumer);
        self
    }

    /// The OAuth 1.0a token of accounts without one of their own (and without OAuth 2.0).
    pub fn with_default_token(mut self, token: AccessToken) -> Result<Self, XConfigError> {
        for (value, setting) in [
            (token.token(), "XDM_X_ACCESS_TOKEN"),
            (token.expose_secret(), "XDM_X_ACCESS_TOKEN_SECRET"),
        ] {
            if value.trim().is_empty() {
                return Err(XConfigError::Empty(setting));
            }
        }
        self.credentials.default_token = Some(token);
        Ok(self)
    }

    /// Where OAuth 2.0 user access tokens come from; an account it has a token for is called
    /// with OAuth 2.0, whatever OAuth 1.0a token is configured.
    pub fn with_user_tokens(mut self, source: Arc<dyn UserTokenSource>) -> Self {
        self.credentials.user_tokens = Some(source);
        self
    }

    /// The OAuth 1.0a token to act as business account `business` (instead of the default token).
    pub fn with_account_token(
        mut self,
        business: XUserId,
        token: AccessToken,
    ) -> Result<Self, XConfigError> {
        if token.token().trim().is_empty() || token.expose_secret().trim().is_empty() {
            return Err(XConfigError::EmptyAccountToken(business));
        }
        self.credentials.account_tokens.insert(business, token);
        Ok(self)
    }

    /// Overrides the connect timeout (default 5 s) and the whole-request timeout (default 20 s).
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = total;
        self
    }

    /// The hosts media may be downloaded from (`XDM_X_MEDIA_HOSTS`; default X's media hosts).
    pub fn with_media_hosts(mut self, hosts: MediaHosts) -> Self {
        self.media_hosts = hosts;
        self
    }

    /// Overrides the media timeouts: `read` is the longest silence while downloading (default
    /// 30 s; the connect timeout is shared with the REST calls), `append` the whole of one upload
    /// `append` request (default 60 s).
    pub fn with_media_timeouts(mut self, read: Duration, append: Duration) -> Self {
        self.media.read = read;
        self.media.append = append;
        self
    }

    /// How long to wait for X to process an uploaded file before giving up with `Unavailable`
    /// (default 10 minutes).
    pub fn with_media_processing_limit(mut self, limit: Duration) -> Self {
        self.media.processing = limit;
        self
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub fn media_hosts(&self) -> &MediaHosts {
        &self.media_hosts
    }
}

/// An OAuth 1.0a consumer with both its key and its secret.
pub(crate) fn check_consumer(consumer: &Consumer) -> Result<(), XConfigError> {
    for (value, setting) in [
        (consumer.key(), "XDM_X_CONSUMER_KEY"),
        (consumer.expose_secret(), "XDM_X_CONSUMER_SECRET"),
    ] {
        if value.trim().is_empty() {
            return Err(XConfigError::Empty(setting));
        }
    }
    Ok(())
}

/// An API base URL as every call starts with it: http(s), a host, no credentials, query or
/// fragment, no trailing slash.
pub(crate) fn normalise_api_url(raw: &str) -> Result<String, XConfigError> {
    let bad = |reason: String| Err(XConfigError::ApiUrl(reason));
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(e) => return bad(format!("{e}")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return bad(format!(
            "the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("it has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("it must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad(format!("it must not have a query or a fragment ({url})"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::XClient;

    fn config(url: &str) -> Result<XClientConfig, XConfigError> {
        XClientConfig::oauth1(
            url,
            Consumer::new("ck", "cs"),
            AccessToken::new("at", "ats"),
        )
    }

    #[test]
    fn normalises_the_base_url() {
        assert_eq!(
            config(DEFAULT_API_URL).unwrap().api_url(),
            "https://api.x.com"
        );
        assert_eq!(
            config("https://api.x.com/").unwrap().api_url(),
            "https://api.x.com"
        );
        assert_eq!(
            config(" http://127.0.0.1:9000/x-api// ").unwrap().api_url(),
            "http://127.0.0.1:9000/x-api"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for bad in [
            "",
            "api.x.com",
            "ftp://api.x.com",
            "https://api.x.com/?a=1",
            "https://u:p@api.x.com",
        ] {
            let e = config(bad).unwrap_err();
            assert!(matches!(e, XConfigError::ApiUrl(_)), "{bad}");
            assert!(e.to_string().starts_with("XDM_X_API_URL "), "{e}");
            assert!(!e.to_string().contains("u:p"), "{e}");
        }
        let e = XClientConfig::oauth1(
            DEFAULT_API_URL,
            Consumer::new("ck", ""),
            AccessToken::new("at", "ats"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "XDM_X_CONSUMER_SECRET is empty");
        let lazy = XClientConfig::new(DEFAULT_API_URL)
            .unwrap()
            .with_consumer(Consumer::new(" ", "cs"));
        assert_eq!(
            XClient::new(lazy).unwrap_err().to_string(),
            "XDM_X_CONSUMER_KEY is empty"
        );
        let e = config(DEFAULT_API_URL)
            .unwrap()
            .with_account_token(XUserId::parse("1").unwrap(), AccessToken::new("", "s"))
            .unwrap_err();
        assert_eq!(e.to_string(), "the access token for X account 1 is empty");
    }
}
