//! Talking to X as the operator's commands do (`x …`, `setup`, `doctor`): the clients built from
//! the configuration, the business accounts this deployment serves, and which webhook is ours.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use xdm_core::ids::XUserId;
use xdm_core::ports::{Clock, Expect, Store, SystemClock};
use xdm_store::AnyStore;
use xdm_x::auth::UserAuth;
use xdm_x::oauth2::OAuth2Client;
use xdm_x::{AppClient, XClient};

use crate::config::Config;
use crate::wiring;
use crate::x_tokens::{self, Tokens};

/// The `tag` of the subscriptions this bridge creates (how `x subscriptions` tells ours apart).
pub const SUBSCRIPTION_TAG: &str = "xdm-connect";
/// The X Activity API events the bridge subscribes each business account to.
pub const DM_EVENT_TYPES: [&str; 3] = ["dm.received", "dm.read", "dm.indicate_typing"];
/// The X Chat events subscribed to when the bridge has X Chat keys (customers' encrypted
/// messages; the business account's own, `chat.sent`, would only be echoes).
pub const CHAT_EVENT_TYPES: [&str; 1] = ["chat.received"];

/// Every event type the bridge subscribes `account` to under `config`: its DMs, and its X Chat
/// messages when it has X Chat keys (its own in `[[x.accounts]]`, else the default account's).
pub fn event_types(config: &Config, account: &XUserId) -> Vec<&'static str> {
    let mut types = DM_EVENT_TYPES.to_vec();
    let has_chat_keys = match config
        .x
        .accounts
        .iter()
        .find(|a| a.user_id == account.as_str())
    {
        Some(listed) => listed.chat.is_some(),
        None => config.x.chat_keys.is_some(),
    };
    if has_chat_keys {
        types.extend(CHAT_EVENT_TYPES);
    }
    types
}
/// The store record remembering the webhook `x webhook create` registered.
const WEBHOOK_RECORD: &str = "x/webhook";

/// A business account the bridge acts for, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: XUserId,
    pub username: Option<String>,
    /// `OAuth 2.0` or `OAuth 1.0a`.
    pub auth: &'static str,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.username {
            Some(u) => write!(f, "@{u} ({})", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RememberedWebhook {
    id: String,
    url: String,
}

/// The clients of one command run.
#[derive(Debug)]
pub struct XLink {
    pub config: Config,
    pub store: Arc<AnyStore>,
    /// User context (OAuth 2.0 tokens from the store, else OAuth 1.0a).
    pub client: XClient,
    /// App-only bearer token, when configured.
    pub app: Option<AppClient>,
    pub oauth: Option<OAuth2Client>,
    pub tokens: Option<Arc<Tokens>>,
}

impl XLink {
    /// Opens the store and builds the clients.
    /// On the Lambda layout (`SECRET_ARN`, `CONFIG_PARAM_NAME`) the secret and the parameter
    /// fill what the configuration leaves unset, as in the functions.
    pub async fn open(mut config: Config) -> anyhow::Result<Self> {
        let aws_layout = ["SECRET_ARN", "CONFIG_PARAM_NAME"]
            .iter()
            .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
        let sdk = if config.store.starts_with("dynamodb:") || aws_layout {
            Some(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await,
            )
        } else {
            None
        };
        if let (Some(sdk), true) = (&sdk, aws_layout) {
            crate::lambda::aws_sources::apply_from_env(&mut config, sdk).await?;
        }
        let store = Arc::new(
            wiring::open_store(&config.store, sdk.as_ref())
                .await
                .context("XDM_STORE")?,
        );
        Self::with_store(config, store)
    }

    /// Builds the clients over an open store.
    pub fn with_store(config: Config, store: Arc<AnyStore>) -> anyhow::Result<Self> {
        let tokens = x_tokens::keeper(&config, &store)?;
        let client = wiring::x_client(&config, tokens.as_ref())?;
        Self::from_parts(config, store, client, tokens)
    }

    /// Over the X client and token keeper a running bridge already has (`serve`, Lambda): one
    /// keeper per process, one connection pool.
    pub fn from_parts(
        config: Config,
        store: Arc<AnyStore>,
        client: XClient,
        tokens: Option<Arc<Tokens>>,
    ) -> anyhow::Result<Self> {
        let app = wiring::app_client(&config)?;
        let oauth = x_tokens::oauth2_client(&config)?;
        Ok(Self {
            config,
            store,
            client,
            app,
            oauth,
            tokens,
        })
    }

    /// The app-bearer client, or the error naming the missing setting.
    pub fn app(&self) -> anyhow::Result<&AppClient> {
        self.app.as_ref().context(
            "XDM_X_BEARER_TOKEN is not set: webhooks, subscriptions and the stream need the app's bearer token (developer portal, Keys and tokens)",
        )
    }

    /// Every business account: those logged in with OAuth 2.0, then the OAuth 1.0a default
    /// account and `[[x.accounts]]`, each once.
    pub async fn business_accounts(&self) -> anyhow::Result<Vec<Account>> {
        let mut accounts: Vec<Account> = Vec::new();
        if let Some(tokens) = &self.tokens {
            for id in tokens.accounts().await? {
                let username = self.client.me(&id).await.ok().and_then(|p| p.username);
                accounts.push(Account {
                    id,
                    username,
                    auth: "OAuth 2.0",
                });
            }
        }
        if let Some(token) = wiring::oauth1_default_token(&self.config) {
            let me = self
                .client
                .me_as(&UserAuth::OAuth1(token))
                .await
                .context("X refused the OAuth 1.0a access token (XDM_X_ACCESS_TOKEN)")?;
            if !accounts.iter().any(|a| a.id == me.id) {
                accounts.push(Account {
                    id: me.id.clone(),
                    username: me.username.clone(),
                    auth: "OAuth 1.0a",
                });
            }
        }
        for extra in &self.config.x.accounts {
            let id = XUserId::parse(extra.user_id.clone())?;
            if !accounts.iter().any(|a| a.id == id) {
                accounts.push(Account {
                    id,
                    username: None,
                    auth: "OAuth 1.0a",
                });
            }
        }
        if accounts.is_empty() {
            bail!(
                "no business account: run `xdm-connect x login` (OAuth 2.0) or set the OAuth 1.0a access token (XDM_X_ACCESS_TOKEN, XDM_X_ACCESS_TOKEN_SECRET)"
            );
        }
        Ok(accounts)
    }

    /// Our webhook's id: `explicit` (`--webhook-id`), else `XDM_X_WEBHOOK_ID`, else the one
    /// `x webhook create` remembered (while X still lists it), else the registered webhook whose
    /// URL is `XDM_X_WEBHOOK_URL`. `None`: no webhook of ours is registered.
    pub async fn webhook_id(&self, explicit: Option<&str>) -> anyhow::Result<Option<String>> {
        if let Some(id) = explicit.or(self.config.x.webhook_id.as_deref()) {
            return Ok(Some(id.to_owned()));
        }
        let registered = self.app()?.webhooks().await?;
        if let Some(record) = self.store.record(WEBHOOK_RECORD).await?
            && let Ok(remembered) = serde_json::from_str::<RememberedWebhook>(&record.value)
            && registered.iter().any(|w| w.id == remembered.id)
        {
            return Ok(Some(remembered.id));
        }
        if let Some(url) = &self.config.x.webhook_url
            && let Some(w) = registered.iter().find(|w| same_url(&w.url, url))
        {
            return Ok(Some(w.id.clone()));
        }
        Ok(None)
    }

    /// Remembers the webhook `x webhook create` registered, for later commands and `serve`.
    pub async fn remember_webhook(&self, id: &str, url: &str) -> anyhow::Result<()> {
        let value = serde_json::to_string(&RememberedWebhook {
            id: id.to_owned(),
            url: url.to_owned(),
        })?;
        self.store
            .put_record(WEBHOOK_RECORD, &value, Expect::Any, SystemClock.now_ms())
            .await?;
        Ok(())
    }

    /// Forgets the remembered webhook if it is `id`.
    pub async fn forget_webhook(&self, id: &str) -> anyhow::Result<()> {
        if let Some(record) = self.store.record(WEBHOOK_RECORD).await?
            && serde_json::from_str::<RememberedWebhook>(&record.value).is_ok_and(|w| w.id == id)
        {
            self.store
                .delete_record(WEBHOOK_RECORD, Expect::Version(record.version))
                .await?;
        }
        Ok(())
    }
}

/// URLs compared as X stores them (a trailing slash aside).
pub fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}
