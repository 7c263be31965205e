//! The admin listener's router (`XDM_ADMIN_LISTEN`): `GET /metrics` (Prometheus text),
//! `GET /healthz` with its details, and the operator page (`GET /` and its `/api/…`; see
//! [`super::operator`]). Every request, whatever its path, needs
//! `Authorization: Bearer <XDM_ADMIN_TOKEN>` or the cookie of a session opened with that token
//! (`POST /login`, the one path open to all); anything else is answered 401 with
//! `WWW-Authenticate: Bearer` (`GET /`: the login form). Without a configured token every
//! request is refused: the bridge never makes one up.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use secrecy::SecretString;

use super::admin_auth::{AdminAuth, AdminToken, Sessions};
use super::health;
use super::operator;
use super::reject::reject;
use super::state::AppState;

/// The admin router; `token` is `XDM_ADMIN_TOKEN` (`None`: every request is refused).
pub fn admin_router(state: Arc<AppState>, token: Option<SecretString>) -> Router {
    let auth = Arc::new(AdminAuth {
        token: AdminToken(token),
        sessions: Sessions::default(),
    });
    let open = Router::new()
        .route("/login", post(operator::login))
        .route("/api/logout", post(operator::logout))
        .with_state(Arc::clone(&auth));
    let guarded = Router::new()
        .route("/", get(operator::page))
        .route("/api/overview", get(operator::overview))
        .route("/api/retry", post(operator::retry))
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz_details))
        .fallback(not_found)
        // After the routes and the fallback: it applies to every request but `open`'s.
        .layer(middleware::from_fn_with_state(auth, require_token))
        .with_state(state);
    open.merge(guarded)
}

async fn require_token(
    State(auth): State<Arc<AdminAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if auth.allows(request.headers()) {
        return next.run(request).await;
    }
    if request.method() == http::Method::GET && request.uri().path() == "/" {
        return operator::login_form();
    }
    let reason = if auth.token.0.is_some() {
        "a valid `Authorization: Bearer <XDM_ADMIN_TOKEN>` is needed"
    } else {
        "XDM_ADMIN_TOKEN is not set: the admin listener refuses every request"
    };
    let mut response = reject(StatusCode::UNAUTHORIZED, reason);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn not_found() -> Response {
    reject(StatusCode::NOT_FOUND, "no such admin endpoint")
}
