//! The X REST routes the bridge calls: send a DM, read the conversation back
//! ([`dm_events`]), look a user up. Every call is authenticated as one of the principals X's
//! OpenAPI lists for it ([`auth`]), rate-limit headed, recorded, and subject to faults.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::clock;
use crate::config::RateLimit;
use crate::events::SandboxEvent;
use crate::faults::{self, DEFAULT_THROTTLE_LIMIT, FaultOp};
use crate::state::{Shared, lock};
use crate::x::auth::{self, Accept, Principal, Refusal};
use crate::x::oauth_verify::{self, Credentials, OAuthError, ReceivedRequest};
use crate::x::problem::{self, XReply};
use crate::x::records::{RequestRecord, SentDm, XOp};
use crate::x::state::RateInfo;
use crate::x::users::USER_FIELDS;
use crate::x::{dm_events, media_upload, webhook_client};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/2/dm_conversations/with/{participant_id}/messages",
            post(create_dm),
        )
        .route(
            "/2/dm_conversations/with/{participant_id}/dm_events",
            get(dm_events::list_dm_events),
        )
        .route("/2/users/me", get(get_me))
        .route("/2/users/{id}", get(get_user))
        .route("/2/dm_events", get(dm_events::list_all_dm_events))
        .route(
            "/2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}",
            get(dm_events::download_media),
        )
        .merge(crate::x::oauth2::routes())
        .merge(crate::x::webhooks::routes())
        .merge(crate::x::activity::routes())
        .merge(crate::x::stream::routes())
}

/// The parts of a received X request the handlers need.
pub(crate) struct XRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The body when it may be signed (form bodies); empty for streamed bodies.
    pub body: Bytes,
}

async fn create_dm(
    State(shared): State<Arc<Shared>>,
    Path(participant_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest {
        method,
        uri,
        headers,
        body,
    };
    let reply = create_dm_reply(&shared, &req, &participant_id).await;
    finish(&shared, XOp::CreateDm, &req, reply)
}

async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    let reply = get_user_reply(&shared, &req, Some(&id), XOp::GetUser).await;
    finish(&shared, XOp::GetUser, &req, reply)
}

async fn get_me(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    let reply = get_user_reply(&shared, &req, None, XOp::GetMe).await;
    finish(&shared, XOp::GetMe, &req, reply)
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
    if let Some(injected) = shared.gate(fault_op).await {
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

/// The DM body per X's OpenAPI `CreateDirectMessagesByParticipantIdRequest`
/// (`additionalProperties: false`, text minLength 1, at most one attachment, at least one of them).
fn parse_dm_body(body: &[u8]) -> Result<(Option<String>, Vec<String>), Vec<Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![problem::body_error(format!(
            "Request body is not valid JSON: {e}"
        ))]
    })?;
    let Value::Object(obj) = value else {
        return Err(vec![problem::body_error("$: must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if key != "text" && key != "attachments" {
            errors.push(problem::body_error(format!(
                "$.{key}: is not defined in the schema and the schema does not allow additional properties"
            )));
        }
    }
    let text = match obj.get("text") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(problem::body_error(
                "$.text: must be at least 1 characters long",
            ));
            None
        }
        Some(_) => {
            errors.push(problem::body_error("$.text: string expected"));
            None
        }
    };
    let mut media_ids = Vec::new();
    match obj.get("attachments") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > 1 {
                errors.push(problem::body_error(
                    "$.attachments: there must be a maximum of 1 items in the array",
                ));
            }
            if items.is_empty() {
                errors.push(problem::body_error(
                    "$.attachments: there must be a minimum of 1 items in the array",
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let id = item
                    .as_object()
                    .and_then(|o| (o.len() == 1).then(|| o.get("media_id")).flatten());
                match id.and_then(Value::as_str) {
                    Some(id) if is_x_id(id) => media_ids.push(id.to_owned()),
                    _ => errors.push(problem::body_error(format!(
                        "$.attachments[{i}]: must be an object with only a media_id matching ^[0-9]{{1,19}}$"
                    ))),
                }
            }
        }
        Some(_) => errors.push(problem::body_error("$.attachments: array expected")),
    }
    if obj.get("text").is_none() && obj.get("attachments").is_none() {
        errors.push(problem::body_error(
            "$: must have at least one of the properties text, attachments",
        ));
    }
    if errors.is_empty() {
        Ok((text, media_ids))
    } else {
        Err(errors)
    }
}

/// `"<lower id>-<higher id>"`, numerically ordered.
pub(crate) fn conversation_id(a: &str, b: &str) -> String {
    let (na, nb) = (a.parse::<u64>().unwrap_or(0), b.parse::<u64>().unwrap_or(0));
    if na <= nb {
        format!("{a}-{b}")
    } else {
        format!("{b}-{a}")
    }
}

async fn create_dm_reply(shared: &Arc<Shared>, req: &XRequest, participant_id: &str) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::CreateDm,
        FaultOp::CreateDm,
        Accept::DM_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    if !is_x_id(participant_id) {
        return XReply::new(
            StatusCode::BAD_REQUEST,
            problem::invalid_request(vec![problem::param_error(
                "participant_id",
                participant_id,
                format!(
                    "The `participant_id` path parameter value [{participant_id}] is not valid"
                ),
            )]),
            rate,
        )
        .rejected("invalid participant_id");
    }
    let (text, attachments) = match parse_dm_body(&req.body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return XReply::new(
                StatusCode::BAD_REQUEST,
                problem::invalid_request(errors),
                rate,
            )
            .rejected("invalid body");
        }
    };
    let mut media = None;
    for media_id in &attachments {
        match media_upload::attachment_problem(shared, media_id) {
            Ok(found) => media = Some(found),
            Err(message) => {
                return XReply::new(
                    StatusCode::BAD_REQUEST,
                    problem::invalid_request(vec![problem::param_error(
                        "attachments.media_id",
                        media_id,
                        message.clone(),
                    )]),
                    rate,
                )
                .rejected(message);
            }
        }
    }
    let business = principal
        .user_id()
        .unwrap_or(&shared.cfg.x.business.id)
        .to_owned();
    let dm = {
        let mut x = lock(&shared.x);
        if x.users.get(participant_id).is_some_and(|u| !u.accepts_dms) {
            return XReply::new(
                StatusCode::FORBIDDEN,
                problem::forbidden("You are not permitted to send messages to this user."),
                rate,
            )
            .rejected("recipient does not accept DMs");
        }
        let now = clock::now();
        let dm = SentDm {
            dm_event_id: shared.snowflake.next(),
            dm_conversation_id: conversation_id(&business, participant_id),
            sender_id: business,
            recipient_id: participant_id.to_owned(),
            text,
            attachments,
            media,
            created_timestamp_ms: clock::unix_ms(now),
            created_at: clock::iso_ms(now),
        };
        x.dms.push(dm.clone());
        x.dm_history.push(dm.clone());
        dm
    };
    shared.count_dm_created();
    tracing::info!(dm_event_id = %dm.dm_event_id, recipient = %dm.recipient_id, "X DM accepted");
    shared.events.emit(SandboxEvent::DmSent { dm: dm.clone() });
    let body = json!({"data": {"dm_conversation_id": dm.dm_conversation_id, "dm_event_id": dm.dm_event_id}});
    let echo_to = Arc::clone(shared);
    shared.spawn(async move { webhook_client::deliver_echo(&echo_to, &dm).await });
    XReply::new(StatusCode::CREATED, body, rate)
}

/// `GET /2/users/{id}` (`id`) or `GET /2/users/me` (`None`: the authenticated user).
async fn get_user_reply(shared: &Shared, req: &XRequest, id: Option<&str>, op: XOp) -> XReply {
    let accept = if id.is_some() {
        Accept::USERS_LOOKUP
    } else {
        Accept::USERS_ME
    };
    let (principal, rate) = match admit_as(shared, req, op, FaultOp::GetUser, accept).await {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let me = principal.user_id().unwrap_or_default().to_owned();
    let id = id.unwrap_or(&me);
    if !is_x_id(id) {
        return XReply::new(
            StatusCode::BAD_REQUEST,
            problem::invalid_request(vec![problem::param_error(
                "id",
                id,
                format!("The `id` query parameter value [{id}] is not valid"),
            )]),
            rate,
        )
        .rejected("invalid id");
    }
    let mut fields = Vec::new();
    let query = url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes());
    for (name, value) in query {
        if name != "user.fields" {
            continue;
        }
        for field in value.split(',').filter(|f| !f.is_empty()) {
            if !USER_FIELDS.contains(&field) {
                return XReply::new(
                    StatusCode::BAD_REQUEST,
                    problem::invalid_request(vec![problem::param_error(
                        "user.fields",
                        field,
                        format!(
                            "The `user.fields` query parameter value [{field}] is not one of [{}]",
                            USER_FIELDS.join(",")
                        ),
                    )]),
                    rate,
                )
                .rejected("invalid user.fields");
            }
            fields.push(field.to_owned());
        }
    }
    let user = lock(&shared.x).users.get(id).cloned();
    shared.events.emit(SandboxEvent::UserLookup {
        id: id.to_owned(),
        found: user.is_some(),
    });
    let body = match user {
        Some(user) => json!({"data": user.v2_json(&fields)}),
        None => json!({"errors": [{
            "value": id,
            "detail": format!("Could not find user with id: [{id}]."),
            "title": "Not Found Error",
            "resource_type": "user",
            "parameter": "id",
            "resource_id": id,
            "type": problem::RESOURCE_NOT_FOUND,
        }]}),
    };
    XReply::new(StatusCode::OK, body, rate)
}

/// Any other path under `/2/` or `/1.1/`: X's not-found problem (not authenticated, not counted).
pub(crate) fn unknown_route(shared: &Shared, method: Method, uri: Uri) -> Response {
    let req = XRequest {
        method,
        uri,
        headers: HeaderMap::new(),
        body: Bytes::new(),
    };
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
    fn dm_body_schema() {
        assert_eq!(
            parse_dm_body(br#"{"text":"hi"}"#).unwrap(),
            (Some("hi".into()), vec![])
        );
        assert_eq!(
            parse_dm_body(br#"{"attachments":[{"media_id":"123"}]}"#).unwrap(),
            (None, vec!["123".into()])
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"text":""}"#,
            br#"{"text":"hi","extra":1}"#,
            br#"{"attachments":[{"media_id":"1"},{"media_id":"2"}]}"#,
            br#"{"attachments":[{"media_id":"abc"}]}"#,
            br#"{"attachments":[]}"#,
            br#"[1]"#,
            br#"{"text":"#,
        ] {
            assert!(
                parse_dm_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn conversation_ids_are_ordered_numerically() {
        assert_eq!(
            conversation_id("4337869213", "55125386"),
            "55125386-4337869213"
        );
        assert_eq!(conversation_id("1", "2"), "1-2");
    }

    #[test]
    fn x_ids() {
        assert!(is_x_id("1234567890123456789"));
        assert!(!is_x_id("12345678901234567890"));
        assert!(!is_x_id("12a"));
        assert!(!is_x_id(""));
    }
}
