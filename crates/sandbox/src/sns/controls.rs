//! SNS topics as controls: `SandboxHandle` methods to list, add, remove and re-policy the topics
//! the Query API knows, and their HTTP routes `/_sandbox/sns/topics…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::control::reply::{ControlError, Reply, json_body, ok, with_status};
use crate::error::SandboxError;
use crate::handle::SandboxHandle;
use crate::sns::topics::{TopicView, is_topic_arn};
use crate::state::Shared;
use crate::sync::lock;

impl SandboxHandle {
    // ----- SNS topics (GetTopicAttributes, ListSubscriptionsByTopic) -----

    /// Every topic the SNS Query API knows.
    pub fn sns_topics(&self) -> Vec<TopicView> {
        let shared = &self.shared;
        lock(&shared.sns)
            .topics(&shared.cfg)
            .values()
            .cloned()
            .collect()
    }

    /// Creates (or replaces) a topic; `policy: None` gives it [`crate::default_policy`].
    pub fn add_sns_topic(
        &self,
        topic_arn: &str,
        display_name: Option<String>,
        policy: Option<String>,
    ) -> Result<TopicView, SandboxError> {
        if !is_topic_arn(topic_arn) {
            return Err(SandboxError::invalid(
                "topic ARN",
                format!("{topic_arn:?} is not arn:aws:sns:REGION:ACCOUNT:NAME"),
            ));
        }
        if let Some(policy) = &policy {
            check_policy(policy)?;
        }
        let shared = &self.shared;
        let topic = TopicView::new(
            topic_arn,
            display_name,
            policy,
            &shared.cfg.connect.account_id,
        );
        lock(&shared.sns)
            .topics(&shared.cfg)
            .insert(topic_arn.to_owned(), topic.clone());
        Ok(topic)
    }

    /// Removes a topic from the Query API (its subscriptions and deliveries are kept); `false` if
    /// there was none.
    pub fn remove_sns_topic(&self, topic_arn: &str) -> bool {
        let shared = &self.shared;
        lock(&shared.sns)
            .topics(&shared.cfg)
            .remove(topic_arn)
            .is_some()
    }

    /// Replaces a topic's access policy (a JSON document), e.g. with one that does not let
    /// `connect.amazonaws.com` publish.
    pub fn set_sns_topic_policy(
        &self,
        topic_arn: &str,
        policy: &str,
    ) -> Result<TopicView, SandboxError> {
        check_policy(policy)?;
        let shared = &self.shared;
        let mut sns = lock(&shared.sns);
        let topic = sns
            .topics(&shared.cfg)
            .get_mut(topic_arn)
            .ok_or_else(|| SandboxError::invalid("topic ARN", format!("no topic {topic_arn}")))?;
        topic.policy = policy.to_owned();
        Ok(topic.clone())
    }
}

fn check_policy(policy: &str) -> Result<(), SandboxError> {
    serde_json::from_str::<serde_json::Value>(policy)
        .map(|_| ())
        .map_err(|e| SandboxError::invalid("topic policy", e.to_string()))
}

/// `/_sandbox/sns/topics…` (merged into the control API).
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sns/topics",
            get(list_topics).post(add_topic).delete(remove_topic),
        )
        .route("/sns/topics/policy", post(set_policy))
}

/// A refused topic control: 404 for a topic that does not exist, 400 otherwise.
fn control_error(err: &SandboxError) -> ControlError {
    let status = match err {
        SandboxError::Invalid { reason, .. } if reason.starts_with("no topic") => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::BAD_REQUEST,
    };
    ControlError(status, err.to_string())
}

/// A policy in a control body: a JSON document, or a string holding one.
pub(crate) fn policy_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

async fn list_topics(State(shared): State<Arc<Shared>>) -> Reply {
    ok(SandboxHandle { shared }.sns_topics())
}

#[derive(Deserialize)]
struct TopicBody {
    topic_arn: String,
    display_name: Option<String>,
    policy: Option<serde_json::Value>,
}

async fn add_topic(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let req: TopicBody = json_body(&body)?;
    let h = SandboxHandle { shared };
    let topic = h
        .add_sns_topic(
            &req.topic_arn,
            req.display_name,
            req.policy.map(policy_text),
        )
        .map_err(|e| control_error(&e))?;
    with_status(StatusCode::CREATED, topic)
}

#[derive(Deserialize)]
struct TopicQuery {
    topic_arn: String,
}

async fn remove_topic(State(shared): State<Arc<Shared>>, Query(q): Query<TopicQuery>) -> Response {
    if (SandboxHandle { shared }).remove_sns_topic(&q.topic_arn) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ControlError(StatusCode::NOT_FOUND, format!("no topic {}", q.topic_arn)).into_response()
    }
}

#[derive(Deserialize)]
struct PolicyBody {
    topic_arn: Option<String>,
    policy: serde_json::Value,
}

async fn set_policy(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let req: PolicyBody = json_body(&body)?;
    let h = SandboxHandle { shared };
    let arn = req.topic_arn.unwrap_or_else(|| h.sns_topic_arn());
    let topic = h
        .set_sns_topic_policy(&arn, &policy_text(req.policy))
        .map_err(|e| control_error(&e))?;
    ok(topic)
}
