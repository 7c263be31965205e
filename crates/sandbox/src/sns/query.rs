//! The SNS Query API as `xdm-connect doctor` calls it: `POST /` with an
//! `application/x-www-form-urlencoded` body (`Action=…&Version=2010-03-31`), SigV4 `sns` (shape
//! checked as for the Connect routes), XML answers in the `http://sns.amazonaws.com/doc/2010-03-31/`
//! namespace with `ResponseMetadata/RequestId`, errors as `ErrorResponse` (`Sender`, `NotFound`
//! 404, `InvalidParameter` 400, `InvalidAction` 400, signature errors 400/403).
//!
//! * `GetTopicAttributes(TopicArn)`: `TopicArn`, `Owner`, `Policy`, `DisplayName`,
//!   `SubscriptionsConfirmed`, `SubscriptionsPending`, `SubscriptionsDeleted`,
//!   `EffectiveDeliveryPolicy`, `SignatureVersion` (plus `FifoTopic`, `ContentBasedDeduplication`
//!   for `.fifo` topics). The default policy is SNS's default statement plus the one AWS documents
//!   for Amazon Connect chat streaming (`Service: connect.amazonaws.com`, `SNS:Publish`,
//!   `aws:SourceAccount`).
//! * `ListSubscriptionsByTopic(TopicArn, NextToken?)`: the sandbox's subscriptions of the topic
//!   (unsubscribed ones left out), 100 per page; `SubscriptionArn` is `PendingConfirmation` until
//!   the endpoint fetched its SubscribeURL.
//!
//! Topics: the configured one exists from the start; controls add, remove and re-policy topics.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::connect::contact::check_sigv4_for;
use crate::error::SandboxError;
use crate::handle::SandboxHandle;
use crate::ids;
use crate::sns::delivery::SubscriptionView;
use crate::state::{Shared, lock};

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// ListSubscriptionsByTopic page size (SNS's).
const PAGE_SIZE: usize = 100;

/// A topic as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicView {
    pub topic_arn: String,
    pub display_name: String,
    /// The access policy, a JSON document as a string.
    pub policy: String,
    /// The name ends in `.fifo`.
    pub fifo: bool,
}

/// The topics, seeded with the configured one on first use.
fn table<'a>(
    shared: &Shared,
    topics: &'a mut Option<BTreeMap<String, TopicView>>,
) -> &'a mut BTreeMap<String, TopicView> {
    topics.get_or_insert_with(|| {
        let arn = shared.cfg.sns.topic_arn.clone();
        let topic = new_topic(shared, &arn, None, None);
        BTreeMap::from([(arn, topic)])
    })
}

fn new_topic(
    shared: &Shared,
    arn: &str,
    display_name: Option<String>,
    policy: Option<String>,
) -> TopicView {
    TopicView {
        topic_arn: arn.to_owned(),
        display_name: display_name.unwrap_or_default(),
        policy: policy.unwrap_or_else(|| default_policy(arn, &shared.cfg.connect.account_id)),
        fifo: arn.ends_with(".fifo"),
    }
}

/// SNS's default topic policy plus the statement AWS documents for Connect chat streaming.
pub fn default_policy(topic_arn: &str, account_id: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                    "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic", "SNS:Publish"
                ],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}}
            },
            {
                "Sid": "AllowConnectToPublish",
                "Effect": "Allow",
                "Principal": {"Service": "connect.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}
            }
        ]
    })
    .to_string()
}

/// `arn:aws…:sns:REGION:ACCOUNT:NAME`.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws") && !region.is_empty() && !account.is_empty() && !name.is_empty())
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/", post(query).fallback(not_sns))
}

/// Any other method on `/`: the sandbox's usual unknown-route answer.
async fn not_sns(method: Method) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": format!("no route {method} /")})),
    )
        .into_response()
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

/// An SNS Query API error.
struct SnsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl SnsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("Invalid parameter: {name}"),
        )
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", "Topic does not exist")
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_ok(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{XMLNS}\">\n  <{action}Result>\n{result}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        ids::uuid()
    );
    super::xml(StatusCode::OK, body)
}

async fn query(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match query_inner(&shared, &headers, &body) {
        Ok(response) => response,
        Err(err) => {
            tracing::info!(code = err.code, status = err.status.as_u16(), message = %err.message, "SNS call refused");
            super::xml_error(err.status, err.code, &xml_escape(&err.message))
        }
    }
}

fn query_inner(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, SnsError> {
    // Missing or malformed signatures answer as SNS does (the shape is checked, not the HMAC).
    check_sigv4_for(headers, &shared.cfg.connect.region, "sns").map_err(|e| {
        let (status, code) = match e.code.as_str() {
            "MissingAuthenticationTokenException" => {
                (StatusCode::FORBIDDEN, "MissingAuthenticationToken")
            }
            "IncompleteSignatureException" => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
            _ => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
        };
        SnsError::new(status, code, e.message)
    })?;
    let params: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    match action {
        "GetTopicAttributes" => get_topic_attributes(shared, &params),
        "ListSubscriptionsByTopic" => list_subscriptions_by_topic(shared, &params),
        "" => Err(SnsError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Missing Action",
        )),
        other => Err(SnsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "The action {other} is not valid for this endpoint (the sandbox implements GetTopicAttributes and ListSubscriptionsByTopic)."
            ),
        )),
    }
}

fn topic_param(params: &HashMap<String, String>) -> Result<&str, SnsError> {
    params
        .get("TopicArn")
        .map(String::as_str)
        .filter(|arn| is_topic_arn(arn))
        .ok_or_else(|| SnsError::invalid_parameter("TopicArn"))
}

fn find_topic(shared: &Shared, arn: &str) -> Result<TopicView, SnsError> {
    let mut sns = lock(&shared.sns);
    table(shared, &mut sns.topics)
        .get(arn)
        .cloned()
        .ok_or_else(SnsError::not_found)
}

/// The live (not unsubscribed) subscriptions of a topic, in creation order.
fn topic_subscriptions(shared: &Shared, arn: &str) -> Vec<SubscriptionView> {
    shared
        .sns_subscriptions()
        .into_iter()
        .filter(|s| s.topic_arn == arn && !s.unsubscribed)
        .collect()
}

fn get_topic_attributes(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<Response, SnsError> {
    let topic = find_topic(shared, topic_param(params)?)?;
    let subs = topic_subscriptions(shared, &topic.topic_arn);
    let confirmed = subs.iter().filter(|s| s.confirmed).count();
    let delivery_policy = json!({
        "http": {
            "defaultHealthyRetryPolicy": {
                "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
                "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0,
                "backoffFunction": "linear"
            },
            "disableSubscriptionOverrides": false,
            "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}
        }
    })
    .to_string();
    let mut attributes: Vec<(&str, String)> = vec![
        ("Policy", topic.policy.clone()),
        ("Owner", shared.cfg.connect.account_id.clone()),
        ("SubscriptionsPending", (subs.len() - confirmed).to_string()),
        ("TopicArn", topic.topic_arn.clone()),
        ("EffectiveDeliveryPolicy", delivery_policy),
        ("SubscriptionsConfirmed", confirmed.to_string()),
        ("DisplayName", topic.display_name.clone()),
        ("SubscriptionsDeleted", "0".to_owned()),
        (
            "SignatureVersion",
            shared.cfg.sns.signature_version.as_str().to_owned(),
        ),
    ];
    if topic.fifo {
        attributes.push(("FifoTopic", "true".to_owned()));
        attributes.push(("ContentBasedDeduplication", "false".to_owned()));
    }
    let mut result = String::from("    <Attributes>\n");
    for (key, value) in attributes {
        let _ = writeln!(
            result,
            "      <entry>\n        <key>{key}</key>\n        <value>{}</value>\n      </entry>",
            xml_escape(&value)
        );
    }
    result.push_str("    </Attributes>\n");
    Ok(xml_ok("GetTopicAttributes", &result))
}

fn list_subscriptions_by_topic(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<Response, SnsError> {
    let topic = find_topic(shared, topic_param(params)?)?;
    let subs = topic_subscriptions(shared, &topic.topic_arn);
    let start = match params.get("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0 && *n < subs.len())
            .ok_or_else(|| SnsError::invalid_parameter("NextToken"))?,
    };
    let end = (start + PAGE_SIZE).min(subs.len());
    let owner = &shared.cfg.connect.account_id;
    let mut result = String::from("    <Subscriptions>\n");
    for sub in subs.get(start..end).unwrap_or_default() {
        let arn = if sub.confirmed {
            sub.subscription_arn.as_str()
        } else {
            "PendingConfirmation"
        };
        let protocol = if sub.endpoint.starts_with("https:") {
            "https"
        } else {
            "http"
        };
        let _ = writeln!(
            result,
            "      <member>\n        <TopicArn>{}</TopicArn>\n        <Protocol>{protocol}</Protocol>\n        <SubscriptionArn>{}</SubscriptionArn>\n        <Owner>{}</Owner>\n        <Endpoint>{}</Endpoint>\n      </member>",
            xml_escape(&sub.topic_arn),
            xml_escape(arn),
            xml_escape(owner),
            xml_escape(&sub.endpoint)
        );
    }
    result.push_str("    </Subscriptions>\n");
    if end < subs.len() {
        let _ = writeln!(result, "    <NextToken>{end}</NextToken>");
    }
    Ok(xml_ok("ListSubscriptionsByTopic", &result))
}

impl SandboxHandle {
    // ----- SNS topics (GetTopicAttributes, ListSubscriptionsByTopic) -----

    /// Every topic the SNS Query API knows.
    pub fn sns_topics(&self) -> Vec<TopicView> {
        let shared = &self.shared;
        let mut sns = lock(&shared.sns);
        table(shared, &mut sns.topics).values().cloned().collect()
    }

    /// Creates (or replaces) a topic; `policy: None` gives it [`default_policy`].
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
        let topic = new_topic(shared, topic_arn, display_name, policy);
        let mut sns = lock(&shared.sns);
        table(shared, &mut sns.topics).insert(topic_arn.to_owned(), topic.clone());
        Ok(topic)
    }

    /// Removes a topic from the Query API (its subscriptions and deliveries are kept); `false` if
    /// there was none.
    pub fn remove_sns_topic(&self, topic_arn: &str) -> bool {
        let shared = &self.shared;
        let mut sns = lock(&shared.sns);
        table(shared, &mut sns.topics).remove(topic_arn).is_some()
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
        let topic = table(shared, &mut sns.topics)
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

fn control_error(err: &SandboxError) -> Response {
    let status = match err {
        SandboxError::Invalid { reason, .. } if reason.starts_with("no topic") => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::BAD_REQUEST,
    };
    (status, axum::Json(json!({"error": err.to_string()}))).into_response()
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

/// A policy in a control body: a JSON document, or a string holding one.
fn policy_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

async fn list_topics(State(shared): State<Arc<Shared>>) -> Response {
    let h = SandboxHandle { shared };
    axum::Json(h.sns_topics()).into_response()
}

#[derive(Deserialize)]
struct TopicBody {
    topic_arn: String,
    display_name: Option<String>,
    policy: Option<serde_json::Value>,
}

async fn add_topic(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TopicBody = match parse_body(&body) {
        Ok(req) => req,
        Err(message) => return bad_request(message),
    };
    let h = SandboxHandle { shared };
    match h.add_sns_topic(
        &req.topic_arn,
        req.display_name,
        req.policy.map(policy_text),
    ) {
        Ok(topic) => (StatusCode::CREATED, axum::Json(topic)).into_response(),
        Err(e) => control_error(&e),
    }
}

#[derive(Deserialize)]
struct TopicQuery {
    topic_arn: String,
}

async fn remove_topic(State(shared): State<Arc<Shared>>, Query(q): Query<TopicQuery>) -> Response {
    let h = SandboxHandle { shared };
    if h.remove_sns_topic(&q.topic_arn) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no topic {}", q.topic_arn)})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct PolicyBody {
    topic_arn: Option<String>,
    policy: serde_json::Value,
}

async fn set_policy(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: PolicyBody = match parse_body(&body) {
        Ok(req) => req,
        Err(message) => return bad_request(message),
    };
    let h = SandboxHandle { shared };
    let arn = req.topic_arn.unwrap_or_else(|| h.sns_topic_arn());
    match h.set_sns_topic_policy(&arn, &policy_text(req.policy)) {
        Ok(topic) => axum::Json(topic).into_response(),
        Err(e) => control_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns() {
        assert!(is_topic_arn("arn:aws:sns:us-east-1:123456789012:chat"));
        assert!(is_topic_arn(
            "arn:aws-cn:sns:cn-north-1:123456789012:chat.fifo"
        ));
        assert!(!is_topic_arn("arn:aws:sqs:us-east-1:123456789012:chat"));
        assert!(!is_topic_arn("arn:aws:sns:us-east-1:123456789012"));
        assert!(!is_topic_arn("chat"));
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(
            xml_escape(r#"{"a":"<b>&'c'"}"#),
            "{&quot;a&quot;:&quot;&lt;b&gt;&amp;&apos;c&apos;&quot;}"
        );
    }
}
