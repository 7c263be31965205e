//! `GET /2/users/{id}` and `GET /2/users/me`: a user of the registry (or the caller) as X API v2
//! renders it, with the `user.fields` asked for.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::problem::{self, XReply};
use crate::x::records::XOp;
use crate::x::users::USER_FIELDS;

pub(crate) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = get_user_reply(&shared, &req, Some(&id), XOp::GetUser).await;
    finish(&shared, XOp::GetUser, &req, reply)
}

pub(crate) async fn get_me(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = get_user_reply(&shared, &req, None, XOp::GetMe).await;
    finish(&shared, XOp::GetMe, &req, reply)
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
