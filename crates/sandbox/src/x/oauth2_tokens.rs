//! OAuth 2.0 grants in memory: authorization codes, token families (an access token and, with
//! `offline.access`, a single-use refresh token per refresh), the run-time settings, the views the
//! control API shows, and PKCE's S256 challenge.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock;
use crate::ids;

/// Run-time OAuth 2.0 settings (`POST /_sandbox/x/oauth2`, `SandboxHandle::set_oauth2`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuth2Settings {
    /// Access token lifetime in seconds (`None`: unchanged).
    pub access_token_lifetime_secs: Option<u64>,
    /// The user who approves authorize requests (`None`: unchanged).
    pub approver: Option<String>,
    /// The next authorize request is denied (`error=access_denied`).
    pub deny_next: Option<bool>,
}

/// A token family as the control API shows it (token values are cut to a prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2TokenFamily {
    pub family_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The first characters of the current access token.
    pub access_token_prefix: String,
    /// Unix milliseconds.
    pub access_expires_at_ms: i64,
    pub refresh_token_prefix: Option<String>,
    pub revoked: bool,
    /// Successful refreshes.
    pub refreshes: u32,
    pub created_at: String,
}

/// A token pair (the token endpoint's answer), also issued directly by
/// `SandboxHandle::issue_oauth2_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Tokens {
    pub token_type: String,
    pub expires_in: u64,
    pub access_token: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An authorization code handed out by the authorize endpoint, and what it is bound to.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    /// The PKCE code challenge (S256, or the verifier itself when `plain`).
    pub challenge: String,
    pub plain: bool,
    pub scopes: Vec<String>,
    /// The user who approved.
    pub user_id: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
struct Family {
    view: OAuth2TokenFamily,
}

#[derive(Debug, Clone)]
struct Access {
    family: usize,
    expires_at_ms: i64,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Refresh {
    family: usize,
    spent: bool,
}

/// What an access token is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid {
        user_id: String,
        scopes: Vec<String>,
    },
    Expired,
    Revoked,
    Unknown,
}

/// Codes and token families.
#[derive(Debug, Default)]
pub(crate) struct OAuth2State {
    /// `None`: the configured lifetime.
    lifetime_secs: Option<u64>,
    approver: Option<String>,
    deny_next: bool,
    codes: HashMap<String, Code>,
    families: Vec<Family>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
}

fn prefix(token: &str) -> String {
    token.chars().take(8).collect()
}

/// An opaque token like X's (base64url of random bytes, with a `:1:1:…` tail).
fn new_token(kind: &str) -> String {
    let raw = format!("{}{}", ids::uuid(), ids::uuid());
    format!(
        "{}:{}:1:{kind}",
        URL_SAFE_NO_PAD.encode(raw.as_bytes()),
        clock::now_unix_ms()
    )
}

impl OAuth2State {
    pub(crate) fn check_access(&self, token: &str, now_ms: i64) -> TokenCheck {
        let Some(access) = self.access.get(token) else {
            return TokenCheck::Unknown;
        };
        let Some(family) = self.families.get(access.family) else {
            return TokenCheck::Unknown;
        };
        if access.revoked || family.view.revoked {
            TokenCheck::Revoked
        } else if now_ms >= access.expires_at_ms {
            TokenCheck::Expired
        } else {
            TokenCheck::Valid {
                user_id: family.view.user_id.clone(),
                scopes: family.view.scopes.clone(),
            }
        }
    }

    pub(crate) fn apply(&mut self, settings: &OAuth2Settings) {
        if let Some(secs) = settings.access_token_lifetime_secs {
            self.lifetime_secs = Some(secs);
        }
        if let Some(approver) = &settings.approver {
            self.approver = Some(approver.clone());
        }
        if let Some(deny) = settings.deny_next {
            self.deny_next = deny;
        }
    }

    pub(crate) fn families(&self) -> Vec<OAuth2TokenFamily> {
        self.families.iter().map(|f| f.view.clone()).collect()
    }

    /// Revokes every family of `user_id`; returns how many were live.
    pub(crate) fn revoke_user(&mut self, user_id: &str) -> usize {
        let mut n = 0;
        for family in &mut self.families {
            if family.view.user_id == user_id && !family.view.revoked {
                family.view.revoked = true;
                n += 1;
            }
        }
        n
    }

    pub(crate) fn lifetime_override(&self) -> Option<u64> {
        self.lifetime_secs
    }

    /// The approver set at run time, if any.
    pub(crate) fn approver(&self) -> Option<&str> {
        self.approver.as_deref()
    }

    /// Whether the next authorize request is to be denied (the switch is reset).
    pub(crate) fn take_deny_next(&mut self) -> bool {
        std::mem::take(&mut self.deny_next)
    }

    /// Remembers authorization code `code` until it is exchanged.
    pub(crate) fn add_code(&mut self, code: String, grant: Code) {
        self.codes.insert(code, grant);
    }

    /// The access token lifetime: the run-time one, else `configured`.
    pub(crate) fn lifetime(&self, configured: u64) -> u64 {
        self.lifetime_secs.unwrap_or(configured)
    }

    /// A new access token (and refresh token with `offline.access`) for `family`.
    fn issue_into(&mut self, family: usize, lifetime_secs: u64, now_ms: i64) -> OAuth2Tokens {
        let access = new_token("at");
        let expires_at_ms = now_ms
            .saturating_add(i64::try_from(lifetime_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        self.access.insert(
            access.clone(),
            Access {
                family,
                expires_at_ms,
                revoked: false,
            },
        );
        let Some(f) = self.families.get_mut(family) else {
            return OAuth2Tokens {
                token_type: "bearer".into(),
                expires_in: lifetime_secs,
                access_token: access,
                scope: String::new(),
                refresh_token: None,
            };
        };
        let refresh = f
            .view
            .scopes
            .iter()
            .any(|s| s == "offline.access")
            .then(|| new_token("rt"));
        f.view.access_token_prefix = prefix(&access);
        f.view.access_expires_at_ms = expires_at_ms;
        f.view.refresh_token_prefix = refresh.as_deref().map(prefix);
        let scope = f.view.scopes.join(" ");
        if let Some(r) = &refresh {
            self.refresh.insert(
                r.clone(),
                Refresh {
                    family,
                    spent: false,
                },
            );
        }
        OAuth2Tokens {
            token_type: "bearer".into(),
            expires_in: lifetime_secs,
            access_token: access,
            scope,
            refresh_token: refresh,
        }
    }

    pub(crate) fn new_family(
        &mut self,
        user_id: &str,
        client_id: &str,
        scopes: Vec<String>,
        lifetime_secs: u64,
    ) -> OAuth2Tokens {
        let now_ms = clock::now_unix_ms();
        self.families.push(Family {
            view: OAuth2TokenFamily {
                family_id: ids::uuid(),
                user_id: user_id.to_owned(),
                client_id: client_id.to_owned(),
                scopes,
                access_token_prefix: String::new(),
                access_expires_at_ms: 0,
                refresh_token_prefix: None,
                revoked: false,
                refreshes: 0,
                created_at: clock::now_iso_ms(),
            },
        });
        let family = self.families.len() - 1;
        self.issue_into(family, lifetime_secs, now_ms)
    }

    /// The refresh grant: spends `token` and issues a new pair; a spent token revokes its family.
    pub(crate) fn refresh(
        &mut self,
        token: &str,
        client_id: &str,
        single_use: bool,
        lifetime_secs: u64,
    ) -> Result<OAuth2Tokens, &'static str> {
        let Some(entry) = self.refresh.get_mut(token) else {
            return Err("unknown refresh token");
        };
        let family = entry.family;
        let spent = entry.spent;
        if single_use {
            entry.spent = true;
        }
        let Some(f) = self.families.get_mut(family) else {
            return Err("unknown refresh token");
        };
        if f.view.client_id != client_id {
            return Err("refresh token of another client");
        }
        if spent {
            f.view.revoked = true;
            return Err("refresh token reused: family revoked");
        }
        if f.view.revoked {
            return Err("refresh token of a revoked family");
        }
        f.view.refreshes += 1;
        Ok(self.issue_into(family, lifetime_secs, clock::now_unix_ms()))
    }

    /// Revokes an access token (that token) or a refresh token (its family).
    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        if let Some(access) = self.access.get_mut(token) {
            access.revoked = true;
            return true;
        }
        if let Some(refresh) = self.refresh.get(token)
            && let Some(f) = self.families.get_mut(refresh.family)
        {
            f.view.revoked = true;
            return true;
        }
        false
    }

    /// The `authorization_code` grant: the code must be unused, unexpired, of this client and
    /// redirect URI, and the verifier must match its PKCE challenge.
    pub(crate) fn exchange_code(
        &mut self,
        form: &HashMap<String, String>,
        client_id: &str,
        configured_lifetime: u64,
    ) -> Result<OAuth2Tokens, (&'static str, &'static str)> {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        const WHAT: &str = "authorization code";
        let code = self
            .codes
            .remove(get("code"))
            .ok_or((WHAT, "unknown or used code"))?;
        if clock::now_unix_ms() >= code.expires_at_ms {
            return Err((WHAT, "code expired"));
        }
        if code.client_id != client_id || code.redirect_uri != get("redirect_uri") {
            return Err((WHAT, "client_id or redirect_uri differs"));
        }
        let verifier = get("code_verifier");
        let computed = if code.plain {
            verifier.to_owned()
        } else {
            s256_challenge(verifier)
        };
        if verifier.is_empty() || computed != code.challenge {
            return Err((WHAT, "PKCE code_verifier does not match"));
        }
        let lifetime = self.lifetime(configured_lifetime);
        Ok(self.new_family(&code.user_id, client_id, code.scopes, lifetime))
    }
}

/// `base64url(SHA-256(verifier))`: the S256 code challenge (for tests and tools).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn s256_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn refresh_tokens_are_single_use_and_reuse_revokes_the_family() {
        let mut state = OAuth2State::default();
        let first = state.new_family(
            "1",
            "c",
            vec!["dm.read".into(), "offline.access".into()],
            60,
        );
        let r1 = first.refresh_token.clone().unwrap();
        let second = state.refresh(&r1, "c", true, 60).unwrap();
        assert!(matches!(
            state.check_access(&second.access_token, clock::now_unix_ms()),
            TokenCheck::Valid { .. }
        ));
        assert!(state.refresh(&r1, "c", true, 60).is_err());
        assert_eq!(
            state.check_access(&second.access_token, clock::now_unix_ms()),
            TokenCheck::Revoked
        );
        let r2 = second.refresh_token.unwrap();
        assert!(state.refresh(&r2, "c", true, 60).is_err());
        assert!(state.families()[0].revoked);
        assert_eq!(state.families()[0].refreshes, 1);
    }

    #[test]
    fn no_refresh_token_without_offline_access_and_expiry_is_checked() {
        let mut state = OAuth2State::default();
        let tokens = state.new_family("1", "c", vec!["dm.read".into()], 0);
        assert!(tokens.refresh_token.is_none());
        assert_eq!(
            state.check_access(&tokens.access_token, clock::now_unix_ms()),
            TokenCheck::Expired
        );
        assert_eq!(state.check_access("nope", 0), TokenCheck::Unknown);
    }
}
