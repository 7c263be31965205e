//! Starting a sandbox: the listener, the router of all emulated services, background tasks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::config::SandboxConfig;
use crate::connect::chat::end_expired_chats;
use crate::connect::errors::{AwsError, Service};
use crate::error::SandboxError;
use crate::handle::SandboxHandle;
use crate::sns::signer::SnsSigner;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::users::SandboxUser;
use crate::x::{calls, media_download, webhooks};
use crate::{connect, control, faults, profiles, sns, x};

/// How often expired chats are ended.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(x::routes())
        .merge(connect::routes())
        .merge(profiles::routes())
        .merge(sns::routes())
        .nest("/_sandbox", control::routes())
        .fallback(fallback)
        // Counts every emulated call and drops the connections of dropped ones.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            faults::layer,
        ))
        .with_state(shared)
}

/// Unknown paths, answered in the style of the platform the path belongs to.
async fn fallback(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if media_download::is_media_request(&shared, &method, uri.path()) {
        return media_download::public(shared, method, uri, headers).await;
    }
    let path = uri.path();
    if path.starts_with("/2/") || path.starts_with("/1.1/") {
        return calls::unknown_route(&shared, method, uri);
    }
    if path.starts_with("/contact") || path.starts_with("/participant") {
        return AwsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("The sandbox does not implement {method} {path}"),
        )
        .into_response();
    }
    if path.starts_with("/domains") {
        return AwsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("The sandbox does not implement {method} {path}"),
        )
        .render(Service::Profiles);
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": format!("no route {method} {path}")})),
    )
        .into_response()
}

/// The address clients use: a wildcard listen address is reached through loopback.
fn public_addr(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

pub(crate) async fn start(cfg: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let base_url = format!("http://{}", public_addr(bound));
    // RSA key generation takes a few hundred milliseconds: keep it off the async workers.
    let signer = tokio::task::spawn_blocking(SnsSigner::generate)
        .await
        .map_err(|e| SandboxError::Crypto(e.to_string()))??;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| SandboxError::HttpClient(e.to_string()))?;
    let shared = Shared::new(
        cfg,
        base_url,
        http,
        signer,
        tokio::runtime::Handle::current(),
    );

    {
        let x = &shared.cfg.x;
        let mut state = lock(&shared.x);
        let business = &x.business;
        state.users.insert(
            business.id.clone(),
            SandboxUser::new(&business.id, &business.name, &business.username),
        );
        if let Some(url) = &x.webhook_url {
            webhooks::register(&shared, &mut state, url, false);
        }
    }

    let app = router(Arc::clone(&shared));
    let stopped = shared.stopped();
    // Not `Shared::spawn`: on shutdown the server must stop gracefully (finish requests in flight,
    // close kept-alive connections), not be dropped while its connection tasks keep serving.
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    let sweeper = Arc::clone(&shared);
    shared.spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            end_expired_chats(&sweeper);
        }
    });
    tracing::info!(base_url = %shared.base_url, "sandbox listening");
    Ok(SandboxHandle { shared })
}
