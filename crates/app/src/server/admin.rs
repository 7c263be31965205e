//! The admin listener's router (`XDM_ADMIN_LISTEN`): `GET /metrics` (Prometheus text) and
//! `GET /healthz` with its details. Every request, whatever its path, needs
//! `Authorization: Bearer <XDM_ADMIN_TOKEN>`; anything else is answered 401 with
//! `WWW-Authenticate: Bearer`. Without a configured token every request is refused: the bridge
//! never makes one up.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::health;
use super::reject::reject;
use super::state::AppState;

/// The admin router; `token` is `XDM_ADMIN_TOKEN` (`None`: every request is refused).
pub fn admin_router(state: Arc<AppState>, token: Option<SecretString>) -> Router {
    let token = Arc::new(AdminToken(token));
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz_details))
        .fallback(not_found)
        // After the routes and the fallback: it applies to every request.
        .layer(middleware::from_fn_with_state(token, require_token))
        .with_state(state)
}

/// `XDM_ADMIN_TOKEN`, if set.
#[derive(Debug)]
struct AdminToken(Option<SecretString>);

impl AdminToken {
    /// Whether `headers` carry `Authorization: Bearer <the token>`. Compared as SHA-256
    /// digests in constant time, so that neither the token's bytes nor its length show in the
    /// time an answer takes.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.0 else {
            return false;
        };
        let Some(given) = bearer(headers) else {
            return false;
        };
        let expected = Sha256::digest(expected.expose_secret().as_bytes());
        let given = Sha256::digest(given.as_bytes());
        expected.as_slice().ct_eq(given.as_slice()).into()
    }
}

/// The credentials of `Authorization: Bearer <credentials>` (the scheme in any case, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
        .filter(|c| !c.is_empty())
}

async fn require_token(
    State(token): State<Arc<AdminToken>>,
    request: Request,
    next: Next,
) -> Response {
    if token.allows(request.headers()) {
        return next.run(request).await;
    }
    let reason = if token.0.is_some() {
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

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, header};
    use secrecy::SecretString;

    use super::AdminToken;

    fn with(auth: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(auth));
        h
    }

    #[test]
    fn only_the_configured_bearer_token_passes() {
        let token = AdminToken(Some(SecretString::from("0123456789abcdef0123")));
        assert!(token.allows(&with("Bearer 0123456789abcdef0123")));
        assert!(token.allows(&with("bearer  0123456789abcdef0123 ")));
        assert!(!token.allows(&with("Bearer 0123456789abcdef012")));
        assert!(!token.allows(&with("Basic 0123456789abcdef0123")));
        assert!(!token.allows(&with("Bearer ")));
        assert!(!token.allows(&HeaderMap::new()));
        let unset = AdminToken(None);
        assert!(!unset.allows(&with("Bearer 0123456789abcdef0123")));
    }
}
