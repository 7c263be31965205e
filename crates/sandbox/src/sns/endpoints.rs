//! The three URLs SNS hands to subscribers: the SubscribeURL (`/sns/confirm`), the UnsubscribeURL
//! (`/sns/unsubscribe`) and the SigningCertURL (`/sns/SimpleNotificationService-<hash>.pem`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ids;
use crate::sns::delivery;
use crate::sns::xml::{XMLNS, xml, xml_error, xml_ok};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sns/confirm", get(confirm).post(confirm))
        .route("/sns/unsubscribe", get(unsubscribe).post(unsubscribe))
        .route("/sns/{file}", get(certificate))
}

/// The SubscribeURL: `?Action=ConfirmSubscription&TopicArn=…&Token=…` → `ConfirmSubscriptionResponse`.
async fn confirm(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("Action").map(String::as_str) != Some("ConfirmSubscription") {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Action must be ConfirmSubscription",
        );
    }
    let (Some(topic), Some(token)) = (q.get("TopicArn"), q.get("Token")) else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "TopicArn and Token are required",
        );
    };
    match delivery::confirm(&shared, topic, token) {
        None => xml_error(StatusCode::BAD_REQUEST, "InvalidParameter", "Invalid token"),
        Some(sub) => xml_ok(
            "ConfirmSubscription",
            &format!(
                "    <SubscriptionArn>{}</SubscriptionArn>\n",
                sub.subscription_arn
            ),
        ),
    }
}

/// The UnsubscribeURL of notifications.
async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(arn) = q.get("SubscriptionArn") else {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "SubscriptionArn is required",
        );
    };
    if !delivery::unsubscribe(&shared, arn) {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Subscription does not exist",
        );
    }
    xml(
        StatusCode::OK,
        format!(
            "<UnsubscribeResponse xmlns=\"{XMLNS}\">\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</UnsubscribeResponse>\n",
            ids::uuid()
        ),
    )
}

/// The SigningCertURL.
async fn certificate(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    if file != shared.signer.cert_file_name() {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        shared.signer.cert_pem().to_owned(),
    )
        .into_response()
}
