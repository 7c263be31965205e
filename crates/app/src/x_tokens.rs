//! The OAuth 2.0 user tokens of the business accounts, wired for the X client: the core's
//! [`TokenKeeper`] (tokens in the store, one refresher at a time across processes) over the
//! store every process of this deployment shares, refreshing through X's token endpoint.

use std::sync::Arc;

use secrecy::ExposeSecret;
use xdm_core::ids::XUserId;
use xdm_core::ports::{SystemClock, XError};
use xdm_core::x_tokens::{TokenError, TokenKeeper};
use xdm_store::AnyStore;
use xdm_x::auth::{BoxFuture, UserTokenSource};
use xdm_x::oauth2::OAuth2Client;

use crate::config::Config;

/// The keeper as this application builds it.
pub type Tokens = TokenKeeper<AnyStore, OAuth2Client, SystemClock>;

/// X's token endpoint under the configured API base.
pub fn token_url(config: &Config) -> String {
    format!("{}/2/oauth2/token", config.x.api_url.trim_end_matches('/'))
}

/// The OAuth 2.0 client of the X app, when `XDM_X_CLIENT_ID` is set.
pub fn oauth2_client(config: &Config) -> anyhow::Result<Option<OAuth2Client>> {
    let Some(client_id) = &config.x.client_id else {
        return Ok(None);
    };
    let secret = config
        .x
        .client_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned());
    Ok(Some(OAuth2Client::new(
        &token_url(config),
        client_id,
        secret,
    )?))
}

/// The keeper of this process, when an OAuth 2.0 client is configured.
pub fn keeper(config: &Config, store: &Arc<AnyStore>) -> anyhow::Result<Option<Arc<Tokens>>> {
    let Some(client) = oauth2_client(config)? else {
        return Ok(None);
    };
    let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    Ok(Some(Arc::new(TokenKeeper::new(
        Arc::clone(store),
        client,
        SystemClock,
        holder,
    ))))
}

/// What the X client asks for before each user-context call.
#[derive(Debug, Clone)]
pub struct StoreTokens(pub Arc<Tokens>);

/// While an account needs a new login its calls are retried later rather than given up:
/// what the agents wrote meanwhile is sent once `xdm-connect x login` has run.
fn x_error(e: TokenError) -> XError {
    XError::Unavailable(e.to_string())
}

impl UserTokenSource for StoreTokens {
    fn access_token<'a>(
        &'a self,
        business: &'a XUserId,
    ) -> BoxFuture<'a, Result<Option<String>, XError>> {
        Box::pin(async move {
            self.0
                .access_token(business)
                .await
                .map(|t| t.map(|t| t.expose().to_owned()))
                .map_err(x_error)
        })
    }

    fn token_rejected<'a>(
        &'a self,
        business: &'a XUserId,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, XError>> {
        Box::pin(async move {
            self.0
                .token_rejected(business, token)
                .await
                .map(|t| t.map(|t| t.expose().to_owned()))
                .map_err(x_error)
        })
    }
}
