//! Who may use the admin listener: the bearer of `XDM_ADMIN_TOKEN` ([`AdminToken`]) or a
//! session opened with it on the operator page's login form ([`Sessions`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a login lasts.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 256;
pub(super) const COOKIE: &str = "xdm_admin_session";

/// Who may use the admin listener: the bearer of `XDM_ADMIN_TOKEN`, or a session opened with it.
#[derive(Debug)]
pub(super) struct AdminAuth {
    pub(super) token: AdminToken,
    pub(super) sessions: Sessions,
}

impl AdminAuth {
    pub(super) fn allows(&self, headers: &HeaderMap) -> bool {
        self.token.allows(headers) || (self.token.0.is_some() && self.sessions.allows(headers))
    }

    /// Whether `given` is the token (the login form's check).
    pub(super) fn token_matches(&self, given: &str) -> bool {
        self.token.matches(given)
    }
}

/// `XDM_ADMIN_TOKEN`, if set.
#[derive(Debug)]
pub(super) struct AdminToken(pub(super) Option<SecretString>);

impl AdminToken {
    /// Whether `headers` carry `Authorization: Bearer <the token>`.
    fn allows(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|given| self.matches(given))
    }

    /// Compared as SHA-256 digests in constant time, so that neither the token's bytes nor its
    /// length show in the time an answer takes.
    fn matches(&self, given: &str) -> bool {
        let Some(expected) = &self.0 else {
            return false;
        };
        if given.is_empty() {
            return false;
        }
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

/// The logged-in sessions of the operator page.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    started: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session's id (244 random bits).
    pub(super) fn open(&self) -> String {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Ok(mut started) = self.started.lock() {
            started.retain(|_, at| at.elapsed() < SESSION_TTL);
            if started.len() >= MAX_SESSIONS
                && let Some(oldest) = started
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(id, _)| id.clone())
            {
                started.remove(&oldest);
            }
            started.insert(id.clone(), Instant::now());
        }
        id
    }

    /// Whether `headers` carry the cookie of a live session.
    pub(super) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(id) = session_cookie(headers) else {
            return false;
        };
        self.started
            .lock()
            .is_ok_and(|started| started.get(id).is_some_and(|at| at.elapsed() < SESSION_TTL))
    }

    pub(super) fn close(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut started)) = (session_cookie(headers), self.started.lock()) {
            started.remove(id);
        }
    }
}

/// The value of our cookie in `Cookie:` headers.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{HeaderMap, HeaderValue, header};
    use secrecy::SecretString;

    use super::{AdminToken, COOKIE, Sessions};

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

    #[test]
    fn a_session_opens_only_with_its_own_cookie_and_ends_with_logout() {
        let sessions = Sessions::default();
        let id = sessions.open();
        let other = sessions.open();
        assert_ne!(id, other);
        assert!(id.len() >= 64, "{id}");
        let cookie = |v: String| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
            h
        };
        assert!(sessions.allows(&cookie(format!("theme=dark; {COOKIE}={id}"))));
        assert!(!sessions.allows(&cookie(format!("{COOKIE}={id}x"))));
        assert!(!sessions.allows(&cookie(format!("{COOKIE}="))));
        assert!(!sessions.allows(&cookie(format!("other_{COOKIE}={id}"))));
        assert!(!sessions.allows(&HeaderMap::new()));
        sessions.close(&cookie(format!("{COOKIE}={id}")));
        assert!(!sessions.allows(&cookie(format!("{COOKIE}={id}"))));
        assert!(sessions.allows(&cookie(format!("{COOKIE}={other}"))));
    }
}
