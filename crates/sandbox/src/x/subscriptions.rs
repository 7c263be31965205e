//! The X Activity API (XAA) subscriptions: `/2/activity/subscriptions` create, list, update,
//! delete, and X's event types.
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
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{delete, post};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::{Accept, Principal};
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::problem::{self, XReply};
use crate::x::records::{ActivitySubscription, SubscriptionFilter, XOp};
use crate::x::state::RateInfo;

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
}

/// `WebhookIdInvalid`: no webhook `hook`.
pub(crate) fn unknown_webhook(hook: &str, rate: RateInfo) -> XReply {
    refused(
        StatusCode::BAD_REQUEST,
        "WebhookIdInvalid",
        &format!("webhook {hook} does not exist"),
        rate,
    )
}

/// A refused subscription call: X's `refusal` problem, recorded with its reason.
pub(crate) fn refused(status: StatusCode, reason: &str, message: &str, rate: RateInfo) -> XReply {
    XReply::new(status, problem::refusal(reason, message), rate).rejected(reason.to_owned())
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
    let req = XRequest::new(method, uri, headers);
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
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let Some(user_id) = filter.user_id.clone() else {
        return XReply::invalid_body(rate, "$.filter.user_id: is missing but it is required");
    };
    if !is_x_id(&user_id) {
        return XReply::invalid_body(
            rate,
            "$.filter.user_id: does not match the regex pattern ^[0-9]{1,19}$",
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
        return unknown_webhook(hook, rate);
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
    let sub =
        ActivitySubscription::new(shared.snowflake.next(), event_type, filter, tag, webhook_id);
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
    let req = XRequest::new(method, uri, headers);
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
                    return XReply::invalid_body(
                        rate,
                        format!("max_results [{value}] is not between 1 and 1000"),
                    );
                }
            },
            "pagination_token" => match value.strip_prefix('S').and_then(|n| n.parse().ok()) {
                Some(n) => from = n,
                None => {
                    return XReply::invalid_body(
                        rate,
                        format!("pagination_token [{value}] is not valid"),
                    );
                }
            },
            other => {
                return XReply::invalid_body(rate, format!("unknown query parameter [{other}]"));
            }
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
    let req = XRequest::new(method, uri, headers);
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
        return XReply::invalid_body(rate, "$: must be a JSON object");
    };
    let mut tag = None;
    let mut webhook_id = None;
    for (key, value) in &obj {
        match (key.as_str(), value) {
            ("tag", Value::String(t)) if (1..=200).contains(&t.chars().count()) => {
                tag = Some(t.clone());
            }
            ("webhook_id", Value::String(w)) if is_x_id(w) => webhook_id = Some(w.clone()),
            (other, _) => return XReply::invalid_body(rate, format!("$.{other}: is not valid")),
        }
    }
    let mut x = lock(&shared.x);
    if let Some(hook) = &webhook_id
        && x.webhook(hook).is_none()
    {
        return unknown_webhook(hook, rate);
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
    let req = XRequest::new(method, uri, headers);
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
