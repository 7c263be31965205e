//! Who an X call is authenticated as, and which principals a route accepts (X's OpenAPI
//! `security` of each operation): OAuth 1.0a user context (the configured credential set, acting
//! as the business account), an OAuth 2.0 user token issued by the sandbox's token endpoint
//! (acting as the user who approved it, limited to its scopes) or the app-only Bearer token.

use axum::http::StatusCode;

use crate::clock;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::oauth2_tokens::TokenCheck;
use crate::x::problem;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// OAuth 1.0a with the configured access token: the business account.
    OAuth1 { user_id: String },
    /// An OAuth 2.0 user access token.
    OAuth2 {
        user_id: String,
        scopes: Vec<String>,
    },
    /// The app-only Bearer token.
    App,
}

impl Principal {
    /// The key of this caller's rate-limit windows.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::OAuth1 { user_id } | Self::OAuth2 { user_id, .. } => format!("user:{user_id}"),
            Self::App => "app".to_owned(),
        }
    }

    /// The user the call acts as (none for app-only).
    pub(crate) fn user_id(&self) -> Option<&str> {
        match self {
            Self::OAuth1 { user_id } | Self::OAuth2 { user_id, .. } => Some(user_id),
            Self::App => None,
        }
    }

    /// Whether an OAuth 2.0 caller holds `scope` (OAuth 1.0a callers hold every scope).
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::OAuth1 { .. } => true,
            Self::OAuth2 { scopes, .. } => scopes.iter().any(|s| s == scope),
            Self::App => false,
        }
    }
}

/// The principals a route accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accept {
    pub oauth1: bool,
    /// `Some(scopes)`: OAuth 2.0 user tokens holding every one of `scopes`.
    pub oauth2: Option<&'static [&'static str]>,
    pub app: bool,
}

impl Accept {
    /// OAuth 1.0a user context only (the TON photo download).
    pub(crate) const OAUTH1: Self = Self {
        oauth1: true,
        oauth2: None,
        app: false,
    };
    /// Sending a DM.
    pub(crate) const DM_WRITE: Self = Self::user(&["dm.write", "tweet.read", "users.read"]);
    /// Reading DM events.
    pub(crate) const DM_READ: Self = Self::user(&["dm.read", "tweet.read", "users.read"]);
    /// Media upload v2.
    pub(crate) const MEDIA_WRITE: Self = Self::user(&["media.write"]);
    /// `GET /2/users/me`.
    pub(crate) const USERS_ME: Self = Self::user(&["tweet.read", "users.read"]);
    /// `GET /2/users/{id}`.
    pub(crate) const USERS_LOOKUP: Self = Self {
        oauth1: true,
        oauth2: Some(&["tweet.read", "users.read"]),
        app: true,
    };
    /// App-only (webhook list, replay, stream, subscription update / delete).
    pub(crate) const APP: Self = Self {
        oauth1: false,
        oauth2: None,
        app: true,
    };
    /// App-only or OAuth 1.0a user (webhook create / validate / delete).
    pub(crate) const APP_OR_OAUTH1: Self = Self {
        oauth1: true,
        oauth2: None,
        app: true,
    };
    /// Any principal (subscription create and list; the route checks more).
    pub(crate) const ANY: Self = Self {
        oauth1: true,
        oauth2: Some(&[]),
        app: true,
    };
    /// The v2 DM media download: OAuth 2.0 user tokens with `dm.read` only.
    pub(crate) const OAUTH2_DM_READ: Self = Self {
        oauth1: false,
        oauth2: Some(&["dm.read"]),
        app: false,
    };
    /// Account Activity subscription create / check (user context).
    pub(crate) const AAA_USER: Self =
        Self::user(&["dm.read", "dm.write", "tweet.read", "users.read"]);

    const fn user(scopes: &'static [&'static str]) -> Self {
        Self {
            oauth1: true,
            oauth2: Some(scopes),
            app: false,
        }
    }

    fn names(self) -> String {
        let mut names = Vec::new();
        if self.oauth1 {
            names.push("OAuth 1.0a User Context");
        }
        if self.oauth2.is_some() {
            names.push("OAuth 2.0 User Context");
        }
        if self.app {
            names.push("OAuth 2.0 Application-Only");
        }
        names.join(", ")
    }
}

/// A refused authentication: 401 (unknown credentials) or 403 (a principal or scope the route
/// does not accept), with X's problem body and the reason for the record.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub why: String,
}

impl Refusal {
    pub(crate) fn unauthorized(why: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: problem::unauthorized(),
            why: why.into(),
        }
    }
}

/// The Bearer token of an `Authorization: Bearer …` header, if that is the scheme.
pub(crate) fn bearer(authorization: Option<&str>) -> Option<&str> {
    let auth = authorization?;
    auth.get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map(|_| auth.get(7..).unwrap_or("").trim())
}

/// Resolves a Bearer token: the app token, or an issued OAuth 2.0 user token.
pub(crate) fn bearer_principal(shared: &Shared, token: &str) -> Result<Principal, Refusal> {
    if token.is_empty() {
        return Err(Refusal::unauthorized("empty Bearer token"));
    }
    if token == shared.cfg.x.bearer_token {
        return Ok(Principal::App);
    }
    match lock(&shared.x)
        .oauth2
        .check_access(token, clock::now_unix_ms())
    {
        TokenCheck::Valid { user_id, scopes } => Ok(Principal::OAuth2 { user_id, scopes }),
        TokenCheck::Expired => Err(Refusal::unauthorized("OAuth 2.0 access token expired")),
        TokenCheck::Revoked => Err(Refusal::unauthorized("OAuth 2.0 access token revoked")),
        TokenCheck::Unknown => Err(Refusal::unauthorized(
            "Bearer token is neither the app token nor an issued OAuth 2.0 token",
        )),
    }
}

/// Whether `principal` may call a route accepting `accept`.
pub(crate) fn permit(principal: &Principal, accept: Accept) -> Result<(), Refusal> {
    let unsupported = |kind: &str| Refusal {
        status: StatusCode::FORBIDDEN,
        body: problem::unsupported_authentication_for(kind, &accept.names()),
        why: format!("{kind} authentication is not accepted here"),
    };
    match principal {
        Principal::OAuth1 { .. } if accept.oauth1 => Ok(()),
        Principal::OAuth1 { .. } => Err(unsupported("OAuth 1.0a User Context")),
        Principal::App if accept.app => Ok(()),
        Principal::App => Err(unsupported("OAuth 2.0 Application-Only")),
        Principal::OAuth2 { scopes, .. } => {
            let Some(needed) = accept.oauth2 else {
                return Err(unsupported("OAuth 2.0 User Context"));
            };
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|s| !scopes.iter().any(|have| have == s))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(Refusal {
                    status: StatusCode::FORBIDDEN,
                    body: problem::missing_scopes(&missing),
                    why: format!("OAuth 2.0 token lacks scopes {}", missing.join(" ")),
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn oauth2(scopes: &[&str]) -> Principal {
        Principal::OAuth2 {
            user_id: "1".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn routes_accept_the_principals_and_scopes_x_lists() {
        let business = Principal::OAuth1 {
            user_id: "1".into(),
        };
        assert!(permit(&business, Accept::DM_WRITE).is_ok());
        assert!(permit(&business, Accept::OAUTH2_DM_READ).is_err());
        assert_eq!(
            permit(&Principal::App, Accept::DM_READ).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(permit(&Principal::App, Accept::USERS_LOOKUP).is_ok());
        assert!(
            permit(
                &oauth2(&["dm.read", "tweet.read", "users.read"]),
                Accept::DM_READ
            )
            .is_ok()
        );
        let refused = permit(&oauth2(&["tweet.read", "users.read"]), Accept::DM_READ).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.why.contains("dm.read"));
        assert!(permit(&oauth2(&[]), Accept::APP).is_err());
        assert!(permit(&oauth2(&[]), Accept::ANY).is_ok());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Bearer ")), Some(""));
        assert_eq!(bearer(Some("OAuth x=1")), None);
        assert_eq!(bearer(None), None);
    }
}
