//! OAuth 2.0 as X runs it: the authorization code flow with PKCE (`GET /i/oauth2/authorize`,
//! auto-approved by the configured approver), `POST /2/oauth2/token` (grants `authorization_code`
//! and `refresh_token`) and `POST /2/oauth2/revoke`.
//!
//! * Codes live 30 s, are single-use and bound to client id, redirect URI, PKCE challenge (S256
//!   or plain) and scopes.
//! * Client authentication: HTTP Basic `client_id:client_secret` (checked), or a body `client_id`
//!   (public client).
//! * Tokens come in families (one authorization): a refresh spends the presented refresh token and
//!   issues a new pair in the same family; presenting a spent refresh token revokes the whole
//!   family (RFC 6819 §5.2.2.3), answered `400 invalid_request`.
//! * `refresh_token` only with the `offline.access` scope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock;
use crate::faults::FaultOp;
use crate::ids;
use crate::state::{Shared, lock};
use crate::x::api::{XRequest, peek_rate, record_call};
use crate::x::problem::{self, XReply};
use crate::x::records::XOp;

/// How long an authorization code may be exchanged.
const CODE_LIFETIME_MS: i64 = 30_000;
/// Scopes X knows (`GET /i/oauth2/authorize` refuses others).
const KNOWN_SCOPES: &[&str] = &[
    "tweet.read",
    "tweet.write",
    "tweet.moderate.write",
    "users.email",
    "users.read",
    "follows.read",
    "follows.write",
    "offline.access",
    "space.read",
    "mute.read",
    "mute.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "block.read",
    "block.write",
    "bookmark.read",
    "bookmark.write",
    "dm.read",
    "dm.write",
    "media.write",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/i/oauth2/authorize", get(authorize))
        .route("/2/oauth2/token", post(token))
        .route("/2/oauth2/revoke", post(revoke))
}

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

#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    plain: bool,
    scopes: Vec<String>,
    user_id: String,
    expires_at_ms: i64,
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

    fn lifetime(&self, configured: u64) -> u64 {
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
    fn refresh(
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
    fn revoke(&mut self, token: &str) -> bool {
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
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn request(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> XRequest {
    XRequest {
        method,
        uri,
        headers,
        body,
    }
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = request(method, uri, headers, Bytes::new());
    let (response, rejection) = authorize_answer(&shared, req.uri.query().unwrap_or(""));
    record_call(
        &shared,
        XOp::OAuth2Authorize,
        &req,
        response.status().as_u16(),
        rejection,
    );
    response
}

fn authorize_answer(shared: &Shared, query: &str) -> (Response, Option<String>) {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let bad = |why: &str| {
        (
            text(
                StatusCode::BAD_REQUEST,
                format!("Something went wrong: {why}"),
            ),
            Some(why.to_owned()),
        )
    };
    if get("response_type") != "code" {
        return bad("response_type must be code");
    }
    if get("client_id") != shared.cfg.x.client_id {
        return bad("unknown client_id");
    }
    let Ok(mut redirect) = url::Url::parse(get("redirect_uri")) else {
        return bad("redirect_uri is not a URL");
    };
    if get("state").is_empty() {
        return bad("state is required");
    }
    let challenge = get("code_challenge");
    let plain = match get("code_challenge_method") {
        "S256" => false,
        "plain" => true,
        _ => return bad("code_challenge_method must be S256 or plain"),
    };
    if challenge.is_empty() {
        return bad("code_challenge is required");
    }
    let scopes: Vec<String> = get("scope")
        .split([' ', '+'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return bad("invalid scope");
    }
    let mut x = lock(&shared.x);
    let oauth = &mut x.oauth2;
    let denied = std::mem::take(&mut oauth.deny_next);
    {
        let mut pairs = redirect.query_pairs_mut();
        if denied {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("state", get("state"));
        } else {
            let code = URL_SAFE_NO_PAD.encode(format!("{}:{}", ids::uuid(), clock::now_unix_ms()));
            let user_id = oauth
                .approver
                .clone()
                .or_else(|| shared.cfg.x.oauth2.approver.clone())
                .unwrap_or_else(|| shared.cfg.x.business.id.clone());
            oauth.codes.insert(
                code.clone(),
                Code {
                    client_id: get("client_id").to_owned(),
                    redirect_uri: get("redirect_uri").to_owned(),
                    challenge: challenge.to_owned(),
                    plain,
                    scopes,
                    user_id,
                    expires_at_ms: clock::now_unix_ms() + CODE_LIFETIME_MS,
                },
            );
            pairs.append_pair("state", get("state"));
            pairs.append_pair("code", &code);
        }
    }
    let response = (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response();
    (response, denied.then(|| "denied by control".to_owned()))
}

/// `{"error":…,"error_description":…}` with X's rate-limit headers.
fn oauth_error(shared: &Shared, status: StatusCode, error: &str, description: &str) -> XReply {
    XReply::new(
        status,
        json!({"error": error, "error_description": description}),
        peek_rate(shared, XOp::OAuth2Token, "anonymous"),
    )
}

/// The client the call authenticates as: Basic (checked) or a body `client_id` (public client).
fn client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, &'static str> {
    let x = &shared.cfg.x;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..6)
                .filter(|p| p.eq_ignore_ascii_case("basic "))
                .map(|_| v.get(6..).unwrap_or("").trim())
        });
    if let Some(encoded) = basic {
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("Basic credentials are not base64")?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or("Basic credentials lack ':'")?;
        let id_ok: bool = id.as_bytes().ct_eq(x.client_id.as_bytes()).into();
        let secret_ok: bool = secret.as_bytes().ct_eq(x.client_secret.as_bytes()).into();
        return if id_ok && secret_ok {
            Ok(id.to_owned())
        } else {
            Err("wrong client credentials")
        };
    }
    match form.get("client_id") {
        Some(id) if *id == x.client_id => Ok(id.clone()),
        Some(_) => Err("unknown client_id"),
        None => Err("no client authentication"),
    }
}

async fn token(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = request(method, uri, headers, body);
    let reply = token_reply(&shared, &req).await;
    crate::x::api::finish(&shared, XOp::OAuth2Token, &req, reply)
}

async fn token_reply(shared: &Shared, req: &XRequest) -> XReply {
    crate::faults::note_call(FaultOp::OAuth2Token);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let client_id = match client(shared, &req.headers, &form) {
        Ok(id) => id,
        Err(why) => {
            return oauth_error(
                shared,
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Missing valid authorization header",
            )
            .rejected(why);
        }
    };
    if let Some(injected) = shared.gate(FaultOp::OAuth2Token).await {
        let status = injected.status();
        return XReply::new(
            status,
            problem::fault_body(status, &injected.fault),
            peek_rate(shared, XOp::OAuth2Token, "anonymous"),
        )
        .rejected(injected.rejection());
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let configured = shared.cfg.x.oauth2.access_token_lifetime_secs;
    let invalid = |what: &str, why: &str| {
        oauth_error(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("Value passed for the {what} was invalid."),
        )
        .rejected(why.to_owned())
    };
    // The state lock is released before any answer is built (answers read the rate windows).
    let issued: Result<OAuth2Tokens, (&str, &str)> = match get("grant_type") {
        "authorization_code" => {
            let mut x = lock(&shared.x);
            exchange_code(&mut x.oauth2, &form, &client_id, configured)
        }
        "refresh_token" => {
            let mut x = lock(&shared.x);
            let lifetime = x.oauth2.lifetime(configured);
            x.oauth2
                .refresh(
                    get("refresh_token"),
                    &client_id,
                    shared.cfg.x.oauth2.refresh_single_use,
                    lifetime,
                )
                .map_err(|why| ("token", why))
        }
        other => {
            return oauth_error(
                shared,
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type not supported",
            )
            .rejected(format!("grant_type `{other}`"));
        }
    };
    let tokens = match issued {
        Ok(tokens) => tokens,
        Err((what, why)) => return invalid(what, why),
    };
    tracing::info!(client_id = %client_id, "OAuth 2.0 tokens issued");
    XReply::new(
        StatusCode::OK,
        serde_json::to_value(&tokens).unwrap_or_default(),
        peek_rate(shared, XOp::OAuth2Token, "anonymous"),
    )
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = request(method, uri, headers, body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let reply = match client(&shared, &req.headers, &form) {
        Err(why) => oauth_error(
            &shared,
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Missing valid authorization header",
        )
        .rejected(why),
        Ok(_) => {
            let token = form.get("token").map(String::as_str).unwrap_or("");
            let found = lock(&shared.x).oauth2.revoke(token);
            let reply = XReply::new(
                StatusCode::OK,
                json!({"revoked": true}),
                peek_rate(&shared, XOp::OAuth2Revoke, "anonymous"),
            );
            if found {
                reply
            } else {
                reply.rejected("unknown token (answered as revoked)")
            }
        }
    };
    crate::x::api::finish(&shared, XOp::OAuth2Revoke, &req, reply)
}

/// The `authorization_code` grant: the code must be unused, unexpired, of this client and
/// redirect URI, and the verifier must match its PKCE challenge.
fn exchange_code(
    state: &mut OAuth2State,
    form: &HashMap<String, String>,
    client_id: &str,
    configured_lifetime: u64,
) -> Result<OAuth2Tokens, (&'static str, &'static str)> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    const WHAT: &str = "authorization code";
    let code = state
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
    let lifetime = state.lifetime(configured_lifetime);
    Ok(state.new_family(&code.user_id, client_id, code.scopes, lifetime))
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
