//! The SNS emulator: signing identity, message bodies, subscriptions and deliveries, the three
//! URLs SNS hands to subscribers (certificate, SubscribeURL, UnsubscribeURL), and the Query API
//! calls doctor makes (`POST /`: GetTopicAttributes, ListSubscriptionsByTopic — [`query`]).

pub mod delivery;
pub mod message;
pub mod query;
pub mod signer;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ids;
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sns/confirm", get(confirm).post(confirm))
        .route("/sns/unsubscribe", get(unsubscribe).post(unsubscribe))
        .route("/sns/{file}", get(certificate))
        .merge(query::routes())
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            ids::uuid()
        ),
    )
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
    match shared.sns_confirm(topic, token) {
        None => xml_error(StatusCode::BAD_REQUEST, "InvalidParameter", "Invalid token"),
        Some(sub) => xml(
            StatusCode::OK,
            format!(
                "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  <ConfirmSubscriptionResult>\n    <SubscriptionArn>{}</SubscriptionArn>\n  </ConfirmSubscriptionResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</ConfirmSubscriptionResponse>\n",
                sub.subscription_arn,
                ids::uuid()
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
    if !shared.sns_unsubscribe(arn) {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Subscription does not exist",
        );
    }
    xml(
        StatusCode::OK,
        format!(
            "<UnsubscribeResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</UnsubscribeResponse>\n",
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
