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
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::clock;
use crate::faults::{self, FaultOp};
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::calls::{XRequest, finish, peek_rate, record_call};
use crate::x::oauth2_tokens::{Code, OAuth2Tokens};
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

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
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
    let denied = oauth.take_deny_next();
    {
        let mut pairs = redirect.query_pairs_mut();
        if denied {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("state", get("state"));
        } else {
            let code = URL_SAFE_NO_PAD.encode(format!("{}:{}", ids::uuid(), clock::now_unix_ms()));
            let user_id = oauth
                .approver()
                .map(str::to_owned)
                .or_else(|| shared.cfg.x.oauth2.approver.clone())
                .unwrap_or_else(|| shared.cfg.x.business.id.clone());
            oauth.add_code(
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
    let req = XRequest::new(method, uri, headers).with_body(body);
    let reply = token_reply(&shared, &req).await;
    finish(&shared, XOp::OAuth2Token, &req, reply)
}

async fn token_reply(shared: &Shared, req: &XRequest) -> XReply {
    faults::note_call(FaultOp::OAuth2Token);
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
    if let Some(injected) = faults::gate(shared, FaultOp::OAuth2Token).await {
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
            x.oauth2.exchange_code(&form, &client_id, configured)
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
    let req = XRequest::new(method, uri, headers).with_body(body);
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
    finish(&shared, XOp::OAuth2Revoke, &req, reply)
}
