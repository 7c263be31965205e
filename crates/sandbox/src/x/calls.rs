//! The way in and out of every X REST call: the request as handlers see it, admission —
//! authentication as one of the principals the route accepts ([`crate::x::auth`]), fault
//! injection, the rate window — and the answer, recorded (`x_requests`, `XRequest` event) with its
//! rate-limit headers; plus X's answer to paths it does not have.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::clock;
use crate::config::RateLimit;
use crate::events::SandboxEvent;
use crate::faults::{self, DEFAULT_THROTTLE_LIMIT, FaultOp};
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::{self, Accept, Principal, Refusal};
use crate::x::oauth_verify::{self, Credentials, OAuthError, ReceivedRequest};
use crate::x::problem::{self, XReply};
use crate::x::records::{RequestRecord, XOp};
use crate::x::state::RateInfo;

/// The parts of a received X request the handlers need.
pub(crate) struct XRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The body when it may be signed (form bodies); empty for streamed bodies.
    pub body: Bytes,
}

impl XRequest {
    /// A request whose body is not part of its signature (or is read by the handler itself).
    pub(crate) fn new(method: Method, uri: Uri, headers: HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
            body: Bytes::new(),
        }
    }

    /// With the body, for the OAuth 1.0a check of form-encoded bodies.
    pub(crate) fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

/// Records the call, then renders the reply with its rate-limit headers.
pub(crate) fn finish(shared: &Shared, op: XOp, req: &XRequest, reply: XReply) -> Response {
    record_call(
        shared,
        op,
        req,
        reply.status.as_u16(),
        reply.rejection.clone(),
    );
    reply.into_response()
}

/// Records an answered X call (`x_requests`, `XRequest` event).
pub(crate) fn record_call(
    shared: &Shared,
    op: XOp,
    req: &XRequest,
    status: u16,
    rejection: Option<String>,
) {
    // Stream connection attempts keep their query (`backfill_minutes`, times).
    let path = match (op, req.uri.query()) {
        (XOp::ActivityStream, Some(query)) => format!("{}?{query}", req.uri.path()),
        _ => req.uri.path().to_owned(),
    };
    if let Some(why) = &rejection {
        tracing::info!(?op, status, reason = %why, "X request refused");
    }
    lock(&shared.x).requests.push(RequestRecord {
        op,
        method: req.method.to_string(),
        path: path.clone(),
        status,
        rejection,
        at: clock::now_iso_ms(),
    });
    shared.events.emit(SandboxEvent::XRequest {
        op,
        method: req.method.to_string(),
        path,
        status,
    });
}

/// Verifies the `Authorization` header: OAuth 1.0a with the configured credentials (the business
/// account), the app Bearer token, or an OAuth 2.0 user token the sandbox issued.
fn authenticate(shared: &Shared, req: &XRequest) -> Result<Principal, Refusal> {
    let authorization = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(token) = auth::bearer(authorization) {
        return auth::bearer_principal(shared, token);
    }
    oauth1(shared, req, authorization).map_err(Refusal::unauthorized)?;
    Ok(Principal::OAuth1 {
        user_id: shared.cfg.x.business.id.clone(),
    })
}

fn oauth1(shared: &Shared, req: &XRequest, authorization: Option<&str>) -> Result<(), String> {
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let forwarded_https = req
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let is_form = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let form_body = if is_form {
        Some(std::str::from_utf8(&req.body).map_err(|_| "form body is not UTF-8".to_owned())?)
    } else {
        None
    };
    let x = &shared.cfg.x;
    let now = clock::now_unix_secs();
    let received = ReceivedRequest {
        method: req.method.as_str(),
        scheme: if forwarded_https { "https" } else { "http" },
        host: &host,
        path: req.uri.path(),
        query: req.uri.query(),
        form_body,
        authorization,
    };
    let creds = Credentials {
        consumer_key: &x.consumer_key,
        consumer_secret: &x.consumer_secret,
        token: &x.access_token,
        token_secret: &x.access_token_secret,
    };
    let verified = oauth_verify::verify(&received, creds, now, x.oauth_max_clock_skew_secs)
        .map_err(|e| e.to_string())?;
    if !lock(&shared.x).use_nonce(&verified.nonce, now) {
        return Err(OAuthError::NonceReplayed.to_string());
    }
    Ok(())
}

pub(crate) fn peek_rate(shared: &Shared, op: XOp, principal: &str) -> RateInfo {
    lock(&shared.x).peek_rate(
        op,
        principal,
        shared.cfg.x.rate_limit,
        clock::now_unix_secs(),
    )
}

/// [`admit_as`] for the routes written before OAuth 2.0: OAuth 1.0a user context only, or (when
/// `allow_bearer`) any principal.
pub(crate) async fn admit(
    shared: &Shared,
    req: &XRequest,
    op: XOp,
    fault_op: FaultOp,
    allow_bearer: bool,
) -> Result<(Principal, RateInfo), XReply> {
    let accept = if allow_bearer {
        Accept::USERS_LOOKUP
    } else {
        Accept::OAUTH1
    };
    admit_as(shared, req, op, fault_op, accept).await
}

/// Authentication (the principals `accept` lists), fault injection and rate limiting (the
/// configured `rate_limit`), in that order. `Ok` carries the window after counting this call.
pub(crate) async fn admit_as(
    shared: &Shared,
    req: &XRequest,
    op: XOp,
    fault_op: FaultOp,
    accept: Accept,
) -> Result<(Principal, RateInfo), XReply> {
    admit_limited(shared, req, op, fault_op, accept, shared.cfg.x.rate_limit).await
}

/// [`admit_as`] with the route's own request window.
pub(crate) async fn admit_limited(
    shared: &Shared,
    req: &XRequest,
    op: XOp,
    fault_op: FaultOp,
    accept: Accept,
    limit: Option<RateLimit>,
) -> Result<(Principal, RateInfo), XReply> {
    faults::note_call(fault_op);
    let now = clock::now_unix_secs();
    let principal = authenticate(shared, req)
        .and_then(|p| auth::permit(&p, accept).map(|()| p))
        .map_err(|refusal| {
            let rate = lock(&shared.x).peek_rate(op, "anonymous", limit, now);
            XReply::new(refusal.status, refusal.body, rate).rejected(refusal.why)
        })?;
    let key = principal.key();
    if let Some(injected) = faults::gate(shared, fault_op).await {
        let status = injected.status();
        let mut rate = lock(&shared.x).peek_rate(op, &key, limit, now);
        if let Some(reset) = injected.fault.rate_limit_reset {
            rate.reset = reset;
            rate.remaining = 0;
        }
        if let Some(throttle) = injected.throttle {
            rate.limit = throttle
                .limit
                .or(limit.map(|l| l.requests))
                .unwrap_or(DEFAULT_THROTTLE_LIMIT);
        }
        return Err(
            XReply::new(status, problem::fault_body(status, &injected.fault), rate)
                .rejected(injected.rejection()),
        );
    }
    lock(&shared.x)
        .count_call(op, &key, limit, clock::now_unix_secs())
        .map(|rate| (principal, rate))
        .map_err(|rate| {
            XReply::new(
                StatusCode::TOO_MANY_REQUESTS,
                problem::too_many_requests(),
                rate,
            )
            .rejected("rate limit exhausted")
        })
}

pub(crate) fn is_x_id(s: &str) -> bool {
    (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Any other path under `/2/` or `/1.1/`: X's not-found problem (not authenticated, not counted).
pub(crate) fn unknown_route(shared: &Shared, method: Method, uri: Uri) -> Response {
    let req = XRequest::new(method, uri, HeaderMap::new());
    let body = json!({
        "title": "Not Found Error",
        "type": problem::RESOURCE_NOT_FOUND,
        "status": 404,
        "detail": format!("The sandbox does not implement {} {}", req.method, req.uri.path()),
    });
    let rate = peek_rate(shared, XOp::Unknown, "anonymous");
    let reply = XReply::new(StatusCode::NOT_FOUND, body, rate).rejected("route not emulated");
    finish(shared, XOp::Unknown, &req, reply)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn x_ids() {
        assert!(is_x_id("1234567890123456789"));
        assert!(!is_x_id("12345678901234567890"));
        assert!(!is_x_id("12a"));
        assert!(!is_x_id(""));
    }
}
