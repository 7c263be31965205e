//! The retired Account Activity API (`/2/account_activity/webhooks/{id}/subscriptions/…`):
//! subscribe, check, list and unsubscribe users, served only when `XConfig::account_activity_api`
//! is on (otherwise 403 "retired").

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::{Accept, Principal};
use crate::x::calls::{XRequest, admit_as, finish, peek_rate};
use crate::x::problem::{self, XReply};
use crate::x::records::XOp;
use crate::x::state::RateInfo;
use crate::x::subscriptions::{refused, unknown_webhook};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
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
        return Err(unknown_webhook(webhook_id, admitted.1));
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
    let req = XRequest::new(method, uri, headers);
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
    let req = XRequest::new(method, uri, headers);
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
    let req = XRequest::new(method, uri, headers);
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
    let req = XRequest::new(method, uri, headers);
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
