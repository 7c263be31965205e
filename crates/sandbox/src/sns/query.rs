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
//! * `Subscribe(TopicArn, Protocol http|https, Endpoint, Attributes.entry.N.key/value,
//!   ReturnSubscriptionArn?)`: the SubscriptionConfirmation is POSTed in the background; the
//!   answer is `pending confirmation` unless `ReturnSubscriptionArn=true`. Attributes:
//!   `FilterPolicy`, `FilterPolicyScope` (`MessageAttributes` only), `RawMessageDelivery=false`.
//! * `GetSubscriptionAttributes(SubscriptionArn)`: `SubscriptionArn`, `TopicArn`, `Owner`,
//!   `Protocol`, `Endpoint`, `PendingConfirmation`, `ConfirmationWasAuthenticated`,
//!   `RawMessageDelivery`, and `FilterPolicy` + `FilterPolicyScope` when a policy is set.
//! * `SetSubscriptionAttributes(SubscriptionArn, AttributeName, AttributeValue)`: `FilterPolicy`
//!   (an empty value removes it) and `FilterPolicyScope`.
//!
//! A filter policy the sandbox cannot evaluate ([`crate::sns::filter_policy`]) is refused with
//! `InvalidParameter` ("Invalid parameter: FilterPolicy: …"), never silently ignored.
//!
//! Topics: the configured one exists from the start; controls add, remove and re-policy topics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::sigv4::{self, SigV4Refusal};
use crate::sns::delivery;
use crate::sns::filter_policy::{FilterPolicy, FilterPolicyError, SCOPE_MESSAGE_ATTRIBUTES};
use crate::sns::state::SubscriptionView;
use crate::sns::topics::{TopicView, is_topic_arn};
use crate::sns::xml::{xml_error, xml_escape, xml_ok};
use crate::state::Shared;
use crate::sync::lock;
/// ListSubscriptionsByTopic page size (SNS's).
const PAGE_SIZE: usize = 100;

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

    fn filter_policy(err: &FilterPolicyError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("Invalid parameter: FilterPolicy: {err}"),
        )
    }
}

async fn query(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match query_inner(&shared, &headers, &body) {
        Ok(response) => response,
        Err(err) => {
            tracing::info!(code = err.code, status = err.status.as_u16(), message = %err.message, "SNS call refused");
            xml_error(err.status, err.code, &xml_escape(&err.message))
        }
    }
}

fn query_inner(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, SnsError> {
    // Missing or malformed signatures answer as SNS does (the shape is checked, not the HMAC).
    sigv4::check(headers, &shared.cfg.connect.region, "sns").map_err(|refusal| {
        let (status, code) = match &refusal {
            SigV4Refusal::Missing => (StatusCode::FORBIDDEN, "MissingAuthenticationToken"),
            SigV4Refusal::Incomplete(_) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
            SigV4Refusal::Invalid(_) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
        };
        SnsError::new(status, code, refusal.message())
    })?;
    let params: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    match action {
        "GetTopicAttributes" => get_topic_attributes(shared, &params),
        "ListSubscriptionsByTopic" => list_subscriptions_by_topic(shared, &params),
        "Subscribe" => subscribe(shared, &params),
        "GetSubscriptionAttributes" => get_subscription_attributes(shared, &params),
        "SetSubscriptionAttributes" => set_subscription_attributes(shared, &params),
        "" => Err(SnsError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Missing Action",
        )),
        other => Err(SnsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "The action {other} is not valid for this endpoint (the sandbox implements GetTopicAttributes, ListSubscriptionsByTopic, Subscribe, GetSubscriptionAttributes and SetSubscriptionAttributes)."
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
    lock(&shared.sns)
        .topics(&shared.cfg)
        .get(arn)
        .cloned()
        .ok_or_else(SnsError::not_found)
}

/// The live (not unsubscribed) subscriptions of a topic, in creation order.
fn topic_subscriptions(shared: &Shared, arn: &str) -> Vec<SubscriptionView> {
    lock(&shared.sns)
        .subscription_views()
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
    Ok(xml_ok("GetTopicAttributes", &attributes_xml(attributes)))
}

/// The `<Attributes>` map of a Get…Attributes answer.
fn attributes_xml(attributes: Vec<(&str, String)>) -> String {
    let mut xml = String::from("    <Attributes>\n");
    for (key, value) in attributes {
        let _ = writeln!(
            xml,
            "      <entry>\n        <key>{key}</key>\n        <value>{}</value>\n      </entry>",
            xml_escape(&value)
        );
    }
    xml.push_str("    </Attributes>\n");
    xml
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

/// `Attributes.entry.N.key` / `Attributes.entry.N.value` pairs of a Query request.
fn attribute_entries(params: &HashMap<String, String>) -> Result<Vec<(String, String)>, SnsError> {
    let mut entries = Vec::new();
    for n in 1.. {
        let Some(key) = params.get(&format!("Attributes.entry.{n}.key")) else {
            break;
        };
        let value = params
            .get(&format!("Attributes.entry.{n}.value"))
            .ok_or_else(|| SnsError::invalid_parameter("Attributes"))?;
        entries.push((key.clone(), value.clone()));
    }
    Ok(entries)
}

/// The filter policy named by a `FilterPolicy` / `FilterPolicyScope` pair (an empty policy:
/// none); any scope other than `MessageAttributes` is refused.
fn parse_filter_policy(
    policy: Option<&str>,
    scope: Option<&str>,
) -> Result<Option<FilterPolicy>, SnsError> {
    if let Some(scope) = scope {
        // Checked on its own too: a scope without a policy is still a setting SNS validates.
        FilterPolicy::parse("{\"k\":[\"v\"]}", Some(scope))
            .map_err(|e| SnsError::filter_policy(&e))?;
    }
    policy
        .filter(|text| !text.is_empty())
        .map(|text| FilterPolicy::parse(text, scope))
        .transpose()
        .map_err(|e| SnsError::filter_policy(&e))
}

fn subscribe(shared: &Shared, params: &HashMap<String, String>) -> Result<Response, SnsError> {
    let topic = find_topic(shared, topic_param(params)?)?;
    let protocol = params.get("Protocol").map(String::as_str).unwrap_or("");
    if protocol != "http" && protocol != "https" {
        return Err(SnsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "Invalid parameter: Protocol (the sandbox delivers to http and https endpoints only)",
        ));
    }
    let endpoint = params
        .get("Endpoint")
        .filter(|e| e.starts_with(&format!("{protocol}://")))
        .ok_or_else(|| SnsError::invalid_parameter("Endpoint"))?;
    let (mut policy, mut scope) = (None, None);
    for (key, value) in attribute_entries(params)? {
        match key.as_str() {
            "FilterPolicy" => policy = Some(value),
            "FilterPolicyScope" => scope = Some(value),
            "RawMessageDelivery" if value.eq_ignore_ascii_case("false") => {}
            other => {
                return Err(SnsError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!(
                        "Invalid parameter: Attributes Reason: the sandbox does not implement the subscription attribute {other}"
                    ),
                ));
            }
        }
    }
    let filter_policy = parse_filter_policy(policy.as_deref(), scope.as_deref())?;
    let arn = delivery::add_subscription(shared, &topic.topic_arn, endpoint, filter_policy)
        .map_err(|_| SnsError::invalid_parameter("Endpoint"))?;
    let Some(task_shared) = shared.arc() else {
        return Err(SnsError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the sandbox is shutting down",
        ));
    };
    let confirm_arn = arn.clone();
    shared.spawn(async move {
        if let Err(e) = delivery::confirm_subscription(&task_shared, &confirm_arn).await {
            tracing::warn!(error = %e, "cannot send the SubscriptionConfirmation");
        }
    });
    let returned = if params
        .get("ReturnSubscriptionArn")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        arn
    } else {
        "pending confirmation".to_owned()
    };
    Ok(xml_ok(
        "Subscribe",
        &format!(
            "    <SubscriptionArn>{}</SubscriptionArn>\n",
            xml_escape(&returned)
        ),
    ))
}

/// The live subscription `SubscriptionArn` names.
fn find_subscription(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<SubscriptionView, SnsError> {
    let arn = params
        .get("SubscriptionArn")
        .filter(|a| a.starts_with("arn:"))
        .ok_or_else(|| SnsError::invalid_parameter("SubscriptionArn"))?;
    lock(&shared.sns)
        .subscription_views()
        .into_iter()
        .find(|s| &s.subscription_arn == arn && !s.unsubscribed)
        .ok_or_else(|| {
            SnsError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "Subscription does not exist",
            )
        })
}

fn get_subscription_attributes(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<Response, SnsError> {
    let sub = find_subscription(shared, params)?;
    let protocol = if sub.endpoint.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let mut attributes: Vec<(&str, String)> = vec![
        ("SubscriptionArn", sub.subscription_arn.clone()),
        ("TopicArn", sub.topic_arn.clone()),
        ("Owner", shared.cfg.connect.account_id.clone()),
        ("Protocol", protocol.to_owned()),
        ("Endpoint", sub.endpoint.clone()),
        ("PendingConfirmation", (!sub.confirmed).to_string()),
        ("ConfirmationWasAuthenticated", "false".to_owned()),
        ("RawMessageDelivery", "false".to_owned()),
    ];
    if let Some(policy) = &sub.filter_policy {
        attributes.push(("FilterPolicy", policy.clone()));
        attributes.push(("FilterPolicyScope", SCOPE_MESSAGE_ATTRIBUTES.to_owned()));
    }
    Ok(xml_ok(
        "GetSubscriptionAttributes",
        &attributes_xml(attributes),
    ))
}

fn set_subscription_attributes(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<Response, SnsError> {
    let sub = find_subscription(shared, params)?;
    let value = params.get("AttributeValue").map(String::as_str);
    match params.get("AttributeName").map(String::as_str) {
        Some("FilterPolicy") => {
            let policy = parse_filter_policy(value, None)?;
            let text = policy.as_ref().map(|p| p.text().to_owned());
            delivery::set_filter_policy(shared, &sub.subscription_arn, text.as_deref())
                .map_err(|_| SnsError::invalid_parameter("SubscriptionArn"))?;
        }
        Some("FilterPolicyScope") => {
            parse_filter_policy(None, Some(value.unwrap_or("")))?;
        }
        _ => return Err(SnsError::invalid_parameter("AttributeName")),
    }
    Ok(xml_ok("SetSubscriptionAttributes", ""))
}
