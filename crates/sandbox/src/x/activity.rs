//! The X Activity API (XAA): subscriptions (`/2/activity/subscriptions`), the routing of every X
//! event to the subscriptions it matches (webhook POST in XAA's envelope, activity stream line,
//! event log for backfills and replays) and the retired Account Activity API
//! (`/2/account_activity/…`), served only when `XConfig::account_activity_api` is on.
//!
//! * Create: `{"event_type","filter":{"user_id",…},"tag"?,"webhook_id"?}`, no other properties;
//!   private events (`dm.*`, `chat.*`, likes, mutes, blocks) need the user context of
//!   `filter.user_id` itself (OAuth 1.0a, or OAuth 2.0 with `dm.read`), app-only ⇒ 403
//!   `not-authorized-for-resource`; duplicates (event type, user, webhook) ⇒ 409
//!   `DuplicateSubscriptionFailed`; more than `max_subscriptions` ⇒ `SubscriptionLimitExceeded`.
//! * List (`max_results` 1–1000, `pagination_token` / `meta.next_token`), update (`tag`,
//!   `webhook_id`) and delete (app-only).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::error::SandboxError;
use crate::faults::FaultOp;
use crate::state::{Shared, lock};
use crate::x::api::{XRequest, admit_as, finish, is_x_id, peek_rate};
use crate::x::auth::{Accept, Principal};
use crate::x::payloads::{self, Activity, PayloadShape};
use crate::x::problem::{self, XReply};
use crate::x::records::{
    ActivitySubscription, DeliveredMedia, DeliveryKind, SubscriptionFilter, WebhookDelivery,
    XEventRecord, XOp,
};
use crate::x::state::RateInfo;
use crate::x::webhook_client::{self, SignatureHeader, users_for};

/// X's event types (`CreateActivitySubscriptionRequest.event_type`).
pub(crate) const EVENT_TYPES: &[&str] = &[
    "profile.update.bio",
    "profile.update.profile_picture",
    "profile.update.banner_picture",
    "profile.update.screenname",
    "profile.update.geo",
    "profile.update.url",
    "profile.update.verified_badge",
    "profile.update.affiliate_badge",
    "profile.update.handle",
    "news.new",
    "follow.follow",
    "follow.unfollow",
    "spaces.start",
    "spaces.end",
    "broadcast.start",
    "broadcast.end",
    "broadcast.chat",
    "chat.received",
    "chat.sent",
    "chat.conversation.join",
    "chat.conversation_join",
    "chat.conversation.member_added",
    "chat.conversation.member_removed",
    "chat.conversation.admin_added",
    "chat.conversation.admin_removed",
    "chat.update.group_name",
    "chat.update.restrictions",
    "dm.sent",
    "dm.received",
    "dm.indicate_typing",
    "dm.read",
    "post.create",
    "post.delete",
    "post.mention.create",
    "post.reply.create",
    "post.quote.create",
    "post.repost.create",
    "like.create",
    "mute.mute",
    "mute.unmute",
    "block.block",
    "block.unblock",
];

/// Events only the user's own authorization may subscribe to.
fn is_private(event_type: &str) -> bool {
    ["dm.", "chat.", "like.", "mute.", "block."]
        .iter()
        .any(|p| event_type.starts_with(p))
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/2/activity/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/2/activity/subscriptions/{id}",
            delete(delete_subscription).put(update_subscription),
        )
        .route(
            "/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
            post(aaa_subscribe).get(aaa_check),
        )
        .route(
            "/2/account_activity/webhooks/{webhook_id}/subscriptions/all/list",
            get(aaa_list),
        )
        .route(
            "/2/account_activity/webhooks/{webhook_id}/subscriptions/{user_id}/all",
            delete(aaa_unsubscribe),
        )
}

// ----- routing of events -----

/// An event to route.
pub(crate) struct Outgoing {
    pub kind: DeliveryKind,
    /// The user whose subscriptions match (the receiver of a DM, the sender of a sent DM).
    pub user_id: String,
    pub activity: Activity,
    pub event_id: Option<String>,
    /// Envelope for Account Activity subscriptions.
    pub aaa_shape: PayloadShape,
    pub include_users: bool,
    pub media: Option<DeliveredMedia>,
}

/// Renders `out` for every subscription it matches, logs and streams the XAA events and POSTs
/// them to their webhooks. Returns the first webhook delivery (with the number of stream
/// connections that got the event), or a delivery without status when no webhook was due.
pub(crate) async fn dispatch(
    shared: &Shared,
    out: Outgoing,
) -> Result<WebhookDelivery, SandboxError> {
    let event_type = payloads::xaa_event_type(&out.user_id, &out.activity);
    let users = out.include_users.then(|| users_for(shared, &out.activity));
    let echo = out.kind == DeliveryKind::Echo;
    let mut posts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut streamed = 0;
    let matched;
    {
        let mut x = lock(&shared.x);
        let subs: Vec<ActivitySubscription> = x
            .subscriptions
            .iter()
            .filter(|s| {
                s.event_type == event_type && s.filter.user_id.as_deref() == Some(&out.user_id)
            })
            .cloned()
            .collect();
        let aaa: Vec<String> =
            if shared.cfg.x.account_activity_api && (!echo || shared.cfg.x.echo_outbound) {
                x.aaa_subscriptions
                    .iter()
                    .filter(|(_, u)| *u == out.user_id)
                    .map(|(w, _)| w.clone())
                    .collect()
            } else {
                Vec::new()
            };
        matched = !subs.is_empty() || !aaa.is_empty();
        let now_ms = clock::now_unix_ms();
        for sub in subs {
            let body = payloads::render_xaa(
                &out.user_id,
                &out.activity,
                users.as_deref(),
                sub.tag.as_deref(),
            );
            let text = String::from_utf8_lossy(&body).into_owned();
            streamed = streamed.max(x.streams.broadcast(&text));
            let seq = x.event_log.len() as u64 + 1;
            x.event_log.push(XEventRecord {
                seq,
                event_type: event_type.to_owned(),
                user_id: out.user_id.clone(),
                subscription_id: sub.subscription_id.clone(),
                webhook_id: sub.webhook_id.clone(),
                event_id: out.event_id.clone(),
                body: text,
                at_ms: now_ms,
                at: clock::iso_ms(clock::from_unix_ms(now_ms)),
            });
            if let Some(hook) = sub.webhook_id {
                posts.push((hook, body));
            }
        }
        for hook in aaa {
            let body =
                payloads::render(out.aaa_shape, &out.user_id, &out.activity, users.as_deref());
            posts.push((hook, body));
        }
    }
    let mut first: Option<Result<WebhookDelivery, SandboxError>> = None;
    for (hook, body) in posts {
        let result = webhook_client::post_to(
            shared,
            &hook,
            out.kind,
            out.event_id.clone(),
            body,
            SignatureHeader::Valid,
            out.media.clone(),
        )
        .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, webhook_id = %hook, "event not delivered");
        }
        if first.is_none() {
            first = Some(result);
        }
    }
    match first {
        Some(Ok(mut delivery)) => {
            delivery.stream_connections = streamed;
            Ok(delivery)
        }
        Some(Err(e)) => Err(e),
        None => Ok(WebhookDelivery {
            kind: out.kind,
            event_id: out.event_id,
            url: String::new(),
            payload: String::new(),
            signature: None,
            signature_oauth2: None,
            status: None,
            response_body: String::new(),
            error: Some(if matched {
                "no webhook: delivered to the activity stream only".to_owned()
            } else {
                format!("no subscription matches {event_type} for {}", out.user_id)
            }),
            media: out.media,
            at: clock::now_iso_ms(),
            stream_connections: streamed,
        }),
    }
}

// ----- subscriptions -----

fn x_request(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> XRequest {
    XRequest {
        method,
        uri,
        headers,
        body,
    }
}

fn refused(status: StatusCode, reason: &str, message: &str, rate: RateInfo) -> XReply {
    XReply::new(status, problem::refusal(reason, message), rate).rejected(reason.to_owned())
}

fn invalid(message: impl Into<String>, rate: RateInfo) -> XReply {
    let message = message.into();
    XReply::new(
        StatusCode::BAD_REQUEST,
        problem::invalid_request(vec![problem::body_error(message.clone())]),
        rate,
    )
    .rejected(message)
}

fn subscription_json(sub: &ActivitySubscription) -> Value {
    let mut v = serde_json::to_value(sub).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, value| !value.is_null());
    }
    v
}

async fn create_subscription(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = create_reply(&shared, &req, &body).await;
    finish(&shared, XOp::CreateSubscription, &req, reply)
}

/// The create body per `CreateActivitySubscriptionRequest`.
fn parse_create(
    body: &[u8],
) -> Result<(String, SubscriptionFilter, Option<String>, Option<String>), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Request body is not valid JSON: {e}"))?;
    let obj = value.as_object().ok_or("$: must be a JSON object")?;
    for key in obj.keys() {
        if !["event_type", "filter", "tag", "webhook_id"].contains(&key.as_str()) {
            return Err(format!(
                "$.{key}: is not defined in the schema and the schema does not allow additional properties"
            ));
        }
    }
    let event_type = obj
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or("$.event_type: is missing but it is required")?;
    if !EVENT_TYPES.contains(&event_type) {
        return Err(format!(
            "$.event_type: does not have a value in the enumeration [{}]",
            EVENT_TYPES.join(", ")
        ));
    }
    let event_type = if event_type == "chat.conversation_join" {
        "chat.conversation.join"
    } else {
        event_type
    };
    let filter = obj
        .get("filter")
        .and_then(Value::as_object)
        .ok_or("$.filter: is missing but it is required")?;
    let mut parsed = SubscriptionFilter::default();
    for (key, value) in filter {
        let text = value
            .as_str()
            .ok_or_else(|| format!("$.filter.{key}: string expected"))?
            .to_owned();
        match key.as_str() {
            "user_id" => parsed.user_id = Some(text),
            "keyword" => parsed.keyword = Some(text),
            "direction" if text == "inbound" || text == "outbound" => parsed.direction = Some(text),
            "direction" => {
                return Err("$.filter.direction: does not have a value in the enumeration [inbound, outbound]".into());
            }
            other => {
                return Err(format!(
                    "$.filter.{other}: is not defined in the schema and the schema does not allow additional properties"
                ));
            }
        }
    }
    let tag = match obj.get("tag") {
        None => None,
        Some(Value::String(t)) if (1..=200).contains(&t.chars().count()) => Some(t.clone()),
        Some(_) => return Err("$.tag: must be a string of 1 to 200 characters".into()),
    };
    let webhook_id = match obj.get("webhook_id") {
        None => None,
        Some(Value::String(w)) if is_x_id(w) => Some(w.clone()),
        Some(_) => {
            return Err("$.webhook_id: does not match the regex pattern ^[0-9]{1,19}$".into());
        }
    };
    Ok((event_type.to_owned(), parsed, tag, webhook_id))
}

async fn create_reply(shared: &Shared, req: &XRequest, body: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::CreateSubscription,
        FaultOp::Subscriptions,
        Accept::ANY,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let (event_type, filter, tag, webhook_id) = match parse_create(body) {
        Ok(parsed) => parsed,
        Err(message) => return invalid(message, rate),
    };
    let Some(user_id) = filter.user_id.clone() else {
        return invalid("$.filter.user_id: is missing but it is required", rate);
    };
    if !is_x_id(&user_id) {
        return invalid(
            "$.filter.user_id: does not match the regex pattern ^[0-9]{1,19}$",
            rate,
        );
    }
    if is_private(&event_type) {
        let allowed = match &principal {
            Principal::App => false,
            Principal::OAuth1 { user_id: me } => *me == user_id,
            Principal::OAuth2 { user_id: me, .. } => {
                *me == user_id && principal.has_scope("dm.read")
            }
        };
        if !allowed {
            return XReply::new(
                StatusCode::FORBIDDEN,
                problem::not_authorized_for_resource(&format!(
                    "Subscribing to {event_type} needs the user context of user {user_id}."
                )),
                rate,
            )
            .rejected("private event without the user's own authorization");
        }
    }
    let mut x = lock(&shared.x);
    if let Some(hook) = &webhook_id
        && x.webhook(hook).is_none()
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "WebhookIdInvalid",
            &format!("webhook {hook} does not exist"),
            rate,
        );
    }
    if x.subscriptions.iter().any(|s| {
        s.event_type == event_type
            && s.filter.user_id == filter.user_id
            && s.webhook_id == webhook_id
    }) {
        return refused(
            StatusCode::CONFLICT,
            "DuplicateSubscriptionFailed",
            "a subscription with this event type, filter and webhook exists",
            rate,
        );
    }
    if x.subscriptions.len() >= shared.cfg.x.max_subscriptions {
        return refused(
            StatusCode::BAD_REQUEST,
            "SubscriptionLimitExceeded",
            &format!("the app has {} subscriptions", x.subscriptions.len()),
            rate,
        );
    }
    let now = clock::now_iso_ms();
    let sub = ActivitySubscription {
        subscription_id: shared.snowflake.next(),
        event_type,
        filter,
        tag,
        webhook_id,
        created_at: now.clone(),
        updated_at: now,
    };
    x.subscriptions.push(sub.clone());
    let total = x.subscriptions.len();
    drop(x);
    tracing::info!(subscription_id = %sub.subscription_id, event_type = %sub.event_type, "XAA subscription created");
    let body = if shared.cfg.x.flat_subscription_answers {
        json!({"data": subscription_json(&sub)})
    } else {
        json!({"data": {"subscription": subscription_json(&sub)}, "meta": {"total_subscriptions": total}})
    };
    XReply::new(StatusCode::OK, body, rate)
}

async fn list_subscriptions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = list_reply(&shared, &req).await;
    finish(&shared, XOp::ListSubscriptions, &req, reply)
}

async fn list_reply(shared: &Shared, req: &XRequest) -> XReply {
    const ACCEPT: Accept = Accept {
        oauth1: true,
        oauth2: Some(&["tweet.read"]),
        app: true,
    };
    let rate = match admit_as(
        shared,
        req,
        XOp::ListSubscriptions,
        FaultOp::Subscriptions,
        ACCEPT,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let mut max_results = 100_usize;
    let mut from = 0_usize;
    for (name, value) in url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes()) {
        match &*name {
            "max_results" => match value.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => max_results = n,
                _ => {
                    return invalid(
                        format!("max_results [{value}] is not between 1 and 1000"),
                        rate,
                    );
                }
            },
            "pagination_token" => match value.strip_prefix('S').and_then(|n| n.parse().ok()) {
                Some(n) => from = n,
                None => return invalid(format!("pagination_token [{value}] is not valid"), rate),
            },
            other => return invalid(format!("unknown query parameter [{other}]"), rate),
        }
    }
    let x = lock(&shared.x);
    let total = x.subscriptions.len();
    let page: Vec<Value> = x
        .subscriptions
        .iter()
        .skip(from)
        .take(max_results)
        .map(subscription_json)
        .collect();
    let mut meta = Map::new();
    meta.insert("total_subscriptions".into(), json!(total));
    if from + page.len() < total {
        meta.insert(
            "next_token".into(),
            json!(format!("S{}", from + page.len())),
        );
    }
    let mut body = Map::new();
    if !page.is_empty() {
        body.insert("data".into(), Value::Array(page));
    }
    body.insert("meta".into(), Value::Object(meta));
    XReply::new(StatusCode::OK, Value::Object(body), rate)
}

async fn update_subscription(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = update_reply(&shared, &req, &id, &body).await;
    finish(&shared, XOp::UpdateSubscription, &req, reply)
}

async fn update_reply(shared: &Shared, req: &XRequest, id: &str, body: &[u8]) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::UpdateSubscription,
        FaultOp::Subscriptions,
        Accept::APP,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return invalid("$: must be a JSON object", rate);
    };
    let mut tag = None;
    let mut webhook_id = None;
    for (key, value) in &obj {
        match (key.as_str(), value) {
            ("tag", Value::String(t)) if (1..=200).contains(&t.chars().count()) => {
                tag = Some(t.clone());
            }
            ("webhook_id", Value::String(w)) if is_x_id(w) => webhook_id = Some(w.clone()),
            (other, _) => return invalid(format!("$.{other}: is not valid"), rate),
        }
    }
    let mut x = lock(&shared.x);
    if let Some(hook) = &webhook_id
        && x.webhook(hook).is_none()
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "WebhookIdInvalid",
            &format!("webhook {hook} does not exist"),
            rate,
        );
    }
    let total = x.subscriptions.len();
    let Some(sub) = x.subscriptions.iter_mut().find(|s| s.subscription_id == id) else {
        return refused(
            StatusCode::NOT_FOUND,
            "SubscriptionIdInvalid",
            &format!("subscription {id} does not exist"),
            rate,
        );
    };
    if let Some(tag) = tag {
        sub.tag = Some(tag);
    }
    if let Some(hook) = webhook_id {
        sub.webhook_id = Some(hook);
    }
    sub.updated_at = clock::now_iso_ms();
    let body =
        json!({"data": {"subscription": subscription_json(sub), "total_subscriptions": total}});
    XReply::new(StatusCode::OK, body, rate)
}

async fn delete_subscription(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = delete_reply(&shared, &req, &id).await;
    finish(&shared, XOp::DeleteSubscription, &req, reply)
}

async fn delete_reply(shared: &Shared, req: &XRequest, id: &str) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::DeleteSubscription,
        FaultOp::Subscriptions,
        Accept::APP,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let mut x = lock(&shared.x);
    let before = x.subscriptions.len();
    x.subscriptions.retain(|s| s.subscription_id != id);
    if x.subscriptions.len() == before {
        return refused(
            StatusCode::NOT_FOUND,
            "SubscriptionIdInvalid",
            &format!("subscription {id} does not exist"),
            rate,
        );
    }
    let total = x.subscriptions.len();
    XReply::new(
        StatusCode::OK,
        json!({"data": {"deleted": true}, "meta": {"total_subscriptions": total}}),
        rate,
    )
}

// ----- Account Activity API -----

/// The Account Activity API answer while it is retired.
fn aaa_retired(shared: &Shared, req: &XRequest) -> XReply {
    XReply::new(
        StatusCode::FORBIDDEN,
        problem::forbidden(
            "The Account Activity API was retired on 2027-01-01. Use the X Activity API (/2/activity/subscriptions) with webhooks or the activity stream.",
        ),
        peek_rate(shared, XOp::AccountActivity, "anonymous"),
    )
    .rejected(format!("Account Activity API retired ({})", req.uri.path()))
}

async fn aaa_admit(
    shared: &Shared,
    req: &XRequest,
    webhook_id: &str,
    accept: Accept,
) -> Result<(Principal, RateInfo), XReply> {
    if !shared.cfg.x.account_activity_api {
        return Err(aaa_retired(shared, req));
    }
    let admitted = admit_as(
        shared,
        req,
        XOp::AccountActivity,
        FaultOp::Subscriptions,
        accept,
    )
    .await?;
    if lock(&shared.x).webhook(webhook_id).is_none() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "WebhookIdInvalid",
            &format!("webhook {webhook_id} does not exist"),
            admitted.1,
        ));
    }
    Ok(admitted)
}

async fn aaa_subscribe(
    State(shared): State<Arc<Shared>>,
    Path(webhook_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = match aaa_admit(&shared, &req, &webhook_id, Accept::AAA_USER).await {
        Err(reply) => reply,
        Ok((principal, rate)) => {
            let user = principal.user_id().unwrap_or_default().to_owned();
            let mut x = lock(&shared.x);
            if x.aaa_subscriptions
                .iter()
                .any(|(w, u)| *w == webhook_id && *u == user)
            {
                refused(
                    StatusCode::CONFLICT,
                    "DuplicateSubscriptionFailed",
                    "the user is already subscribed",
                    rate,
                )
            } else {
                x.aaa_subscriptions.push((webhook_id, user));
                XReply::new(StatusCode::OK, json!({"data": {"subscribed": true}}), rate)
            }
        }
    };
    finish(&shared, XOp::AccountActivity, &req, reply)
}

async fn aaa_check(
    State(shared): State<Arc<Shared>>,
    Path(webhook_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = match aaa_admit(&shared, &req, &webhook_id, Accept::AAA_USER).await {
        Err(reply) => reply,
        Ok((principal, rate)) => {
            let user = principal.user_id().unwrap_or_default();
            let subscribed = lock(&shared.x)
                .aaa_subscriptions
                .iter()
                .any(|(w, u)| *w == webhook_id && u == user);
            XReply::new(
                StatusCode::OK,
                json!({"data": {"subscribed": subscribed}}),
                rate,
            )
        }
    };
    finish(&shared, XOp::AccountActivity, &req, reply)
}

async fn aaa_list(
    State(shared): State<Arc<Shared>>,
    Path(webhook_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = match aaa_admit(&shared, &req, &webhook_id, Accept::APP).await {
        Err(reply) => reply,
        Ok((_, rate)) => {
            let x = lock(&shared.x);
            let url = x
                .webhook(&webhook_id)
                .map(|w| w.url.clone())
                .unwrap_or_default();
            let subscriptions: Vec<Value> = x
                .aaa_subscriptions
                .iter()
                .filter(|(w, _)| *w == webhook_id)
                .map(|(_, u)| json!({"user_id": u}))
                .collect();
            XReply::new(
                StatusCode::OK,
                json!({"data": {
                    "application_id": shared.cfg.x.app.id,
                    "webhook_id": webhook_id,
                    "webhook_url": url,
                    "subscriptions": subscriptions,
                }}),
                rate,
            )
        }
    };
    finish(&shared, XOp::AccountActivity, &req, reply)
}

async fn aaa_unsubscribe(
    State(shared): State<Arc<Shared>>,
    Path((webhook_id, user_id)): Path<(String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = match aaa_admit(&shared, &req, &webhook_id, Accept::APP).await {
        Err(reply) => reply,
        Ok((_, rate)) => {
            lock(&shared.x)
                .aaa_subscriptions
                .retain(|(w, u)| !(*w == webhook_id && *u == user_id));
            XReply::new(StatusCode::OK, json!({"data": {"subscribed": false}}), rate)
        }
    };
    finish(&shared, XOp::AccountActivity, &req, reply)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn create_body_follows_the_schema() {
        let (event_type, filter, tag, hook) = parse_create(
            br#"{"event_type":"dm.received","filter":{"user_id":"1"},"tag":"t","webhook_id":"9"}"#,
        )
        .unwrap();
        assert_eq!(event_type, "dm.received");
        assert_eq!(filter.user_id.as_deref(), Some("1"));
        assert_eq!((tag.as_deref(), hook.as_deref()), (Some("t"), Some("9")));
        for bad in [
            &br#"{"event_type":"dm.nope","filter":{"user_id":"1"}}"#[..],
            br#"{"event_type":"dm.read"}"#,
            br#"{"event_type":"dm.read","filter":{"user_id":"1"},"x":1}"#,
            br#"{"event_type":"dm.read","filter":{"user_id":"1","other":"2"}}"#,
            br#"{"event_type":"dm.read","filter":{"user_id":"1"},"tag":""}"#,
            br#"{"event_type":"dm.read","filter":{"user_id":"1"},"webhook_id":"abc"}"#,
        ] {
            assert!(
                parse_create(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_create(br#"{"event_type":"chat.conversation_join","filter":{"user_id":"1"}}"#)
                .unwrap()
                .0,
            "chat.conversation.join"
        );
    }

    #[test]
    fn private_events() {
        assert!(is_private("dm.received"));
        assert!(is_private("block.block"));
        assert!(!is_private("post.create"));
        assert!(!is_private("profile.update.bio"));
    }
}
