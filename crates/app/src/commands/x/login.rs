//! `xdm-connect x login`: OAuth 2.0 Authorization Code with PKCE for a business account.
//!
//! Prints X's authorize URL (and opens it with `$BROWSER` / `xdg-open` when there is one), then
//! waits for X's redirect on the loopback callback (`XDM_X_REDIRECT_URI`, default
//! `http://127.0.0.1:8976/callback`, which must be one of the app's callback URLs) — or for the
//! redirect URL pasted on the terminal when the browser runs on another machine. The code is
//! exchanged at once (X's codes live 30 seconds), `GET /2/users/me` names the account, and the
//! tokens go into the store, where every `serve` process finds them.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::RawQuery;
use axum::response::Html;
use axum::routing::get;
use clap::Args;
use tokio::sync::mpsc;
use xdm_x::auth::UserAuth;
use xdm_x::oauth2::{Pkce, SCOPES, parse_redirect};

use crate::x_link::XLink;

/// How long to wait for the person to approve.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Args, Clone, Default)]
pub struct LoginArgs {
    /// Do not try to open a browser; paste the redirect URL here instead.
    #[arg(long)]
    pub no_browser: bool,
}

/// How the authorize URL reaches a browser.
pub enum Opener {
    /// `$BROWSER`, else `xdg-open` / `open`, when available; the URL is printed either way.
    System,
    /// Tests and `setup`: a function that plays the person approving.
    With(Arc<dyn Fn(String) + Send + Sync>),
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Opener::System => "Opener::System",
            Opener::With(_) => "Opener::With(..)",
        })
    }
}

/// Runs the login; returns the account (`@handle (id)`).
pub async fn run(link: &XLink, args: &LoginArgs, opener: Opener) -> anyhow::Result<()> {
    let account = login(link, args, opener).await?;
    println!(
        "logged in as {account}; its tokens are in the store ({})",
        link.config.store
    );
    Ok(())
}

pub async fn login(link: &XLink, args: &LoginArgs, opener: Opener) -> anyhow::Result<String> {
    let oauth = link.oauth.as_ref().context(
        "XDM_X_CLIENT_ID is not set: OAuth 2.0 needs the app's client id (developer portal, Keys and tokens)",
    )?;
    let tokens = link.tokens.as_ref().context("XDM_X_CLIENT_ID is not set")?;
    let redirect = link.config.x.redirect_uri.clone();
    let pkce = Pkce::generate();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = oauth.authorize_url(
        &link.config.x.authorize_url,
        &redirect,
        SCOPES,
        &state,
        &pkce,
    )?;

    let (tx, mut rx) = mpsc::channel::<String>(4);
    let callback = loopback_callback(&redirect, tx.clone()).await?;
    println!("Open this page in a browser logged in as the business account and approve the app:");
    println!();
    println!("  {url}");
    println!();
    if callback.is_some() {
        println!("Waiting for X to redirect to {redirect} …");
    }
    println!("(Or paste here the URL the browser was redirected to.)");
    match opener {
        Opener::With(open) => open(url.to_string()),
        Opener::System => {
            if !args.no_browser {
                open_system_browser(url.as_str());
            }
            read_pasted(tx);
        }
    }
    let redirected = tokio::time::timeout(APPROVAL_TIMEOUT, rx.recv())
        .await
        .context("no approval within 10 minutes")?
        .context("the login was abandoned")?;
    if let Some(server) = callback {
        server.abort();
    }
    let code = parse_redirect(&redirected, &state)?;
    let grant = oauth
        .exchange_code(&code, &redirect, &pkce)
        .await
        .context("X refused the authorization code")?;
    if grant.refresh_token.is_none() {
        bail!(
            "X granted no refresh token: the app must allow the offline.access scope, or the bridge would stop after 2 hours"
        );
    }
    let me = link
        .client
        .me_as(&UserAuth::oauth2(&grant.access_token))
        .await
        .context("X refused the new access token on GET /2/users/me")?;
    tokens.store_login(&me.id, grant).await?;
    Ok(match &me.username {
        Some(u) => format!("@{u} ({})", me.id),
        None => me.id.to_string(),
    })
}

/// Serves the redirect URI when it is a loopback `http` address; `None` otherwise (then the
/// redirect URL must be pasted).
async fn loopback_callback(
    redirect: &str,
    tx: mpsc::Sender<String>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let url = url::Url::parse(redirect).context("XDM_X_REDIRECT_URI")?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "http" || !loopback {
        return Ok(None);
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let host = if url.host_str() == Some("[::1]") {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}"))
        .await
        .with_context(|| {
            format!("cannot listen on {host}:{port} for X's redirect (XDM_X_REDIRECT_URI)")
        })?;
    let path = url.path().to_owned();
    let app = Router::new().route(
        &path,
        get(move |RawQuery(query): RawQuery| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(format!("?{}", query.unwrap_or_default())).await;
                Html(
                    "<!doctype html><title>xdm-connect</title><p>xdm-connect received X's answer. You can close this page.</p>",
                )
            }
        }),
    );
    Ok(Some(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })))
}

/// Reads a pasted redirect URL from the terminal on a thread of its own: a blocking read that
/// never ends (nobody pastes) must not keep the process from exiting.
fn read_pasted(tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else {
                return;
            };
            let line = line.trim().to_owned();
            if line.contains("code=") || line.contains("error=") {
                let _ = tx.blocking_send(line);
                return;
            }
        }
    });
}

fn open_system_browser(url: &str) {
    let candidates: Vec<String> = std::env::var("BROWSER")
        .ok()
        .into_iter()
        .chain(["xdg-open".to_owned(), "open".to_owned()])
        .collect();
    for program in candidates {
        if std::process::Command::new(&program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
}
