//! `xdm-connect doctor`'s check of the SNS topic Amazon Connect streams chats to: it exists, it
//! is a standard (not FIFO) topic, its access policy lets `connect.amazonaws.com` publish, and the
//! bridge's endpoint has a confirmed subscription, and that subscription's filter policy (the
//! echo filter, [`crate::sns::ECHO_FILTER_POLICY`]).
//!
//! Calls GetTopicAttributes and ListSubscriptionsByTopic (all pages) with the official
//! `aws-sdk-sns` client, built from the same `SdkConfig` as the other AWS clients (so
//! `AWS_ENDPOINT_URL_SNS` / `AWS_ENDPOINT_URL` apply). Needs `sns:GetTopicAttributes` and
//! `sns:ListSubscriptionsByTopic`; the bridge itself needs neither, so an [`TopicCheckError::AccessDenied`]
//! only means the check cannot be made.

use std::error::Error as StdError;

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde_json::Value;

use crate::errors::truncate;

/// The service principal Amazon Connect publishes chat streams with.
pub const CONNECT_SERVICE_PRINCIPAL: &str = "connect.amazonaws.com";

/// `SubscriptionArn` of a subscription whose endpoint has not confirmed it yet.
const PENDING: &str = "PendingConfirmation";

/// Safety bound on ListSubscriptionsByTopic pages (100 subscriptions each).
const MAX_PAGES: usize = 100;

/// What the topic looks like, one field per line of doctor's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReport {
    pub topic_arn: String,
    /// GetTopicAttributes found the topic (`false`: SNS answered `NotFound`; the other fields
    /// are then defaults).
    pub exists: bool,
    /// A FIFO topic (`FifoTopic=true` or a `.fifo` name): Connect only streams to standard ones.
    pub fifo: bool,
    /// The access policy has an `Allow` statement for the service principal
    /// `connect.amazonaws.com` and an action covering `sns:Publish`, and no `Deny` statement
    /// that takes it away.
    pub connect_may_publish: bool,
    /// Why the policy could not be read, when it could not (then `connect_may_publish` is false).
    pub policy_problem: Option<String>,
    /// The subscription of the endpoint asked about (`None`: none was asked about, or the topic
    /// does not exist).
    pub subscription: Option<SubscriptionState>,
    /// The ARN of that subscription when it is confirmed (for [`TopicCheck::filter_policy`]).
    pub subscription_arn: Option<String>,
}

/// A subscription's filter policy attributes (GetSubscriptionAttributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// `FilterPolicy` (`None`: no policy, every message is delivered).
    pub policy: Option<String>,
    /// `FilterPolicyScope` (`None`: SNS's default, `MessageAttributes`).
    pub scope: Option<String>,
}

impl SubscriptionFilter {
    /// The policy is the bridge's echo filter ([`crate::sns::ECHO_FILTER_POLICY`]) on the
    /// message attributes.
    pub fn is_echo_filter(&self) -> bool {
        self.policy
            .as_deref()
            .is_some_and(crate::sns::is_echo_filter_policy)
            && self
                .scope
                .as_deref()
                .is_none_or(|s| s == crate::sns::ECHO_FILTER_POLICY_SCOPE)
    }
}

/// Whether the bridge's endpoint is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    /// An http(s) subscription with this endpoint is confirmed.
    Confirmed,
    /// Subscribed, but the endpoint has not confirmed (`PendingConfirmation`).
    Pending,
    /// No http(s) subscription of the topic has this endpoint.
    Missing,
}

/// Why the topic could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicCheckError {
    /// `AuthorizationError` (HTTP 403): the credentials lack `sns:GetTopicAttributes` or
    /// `sns:ListSubscriptionsByTopic` on the topic.
    #[error("SNS denied {op}: {message}")]
    AccessDenied { op: &'static str, message: String },
    /// No credentials, or SNS refused them (unknown key, bad signature, expired token).
    #[error("SNS refused the credentials for {op}: {message}")]
    Unauthorized { op: &'static str, message: String },
    /// The request itself was refused (`InvalidParameter`: e.g. not a topic ARN).
    #[error("SNS rejected {op}: {message}")]
    Invalid { op: &'static str, message: String },
    /// Throttled, 5xx, timeout or unreachable endpoint.
    #[error("SNS is unavailable for {op}: {message}")]
    Unavailable { op: &'static str, message: String },
}

/// The topic check client, built once from the `SdkConfig`.
#[derive(Debug, Clone)]
pub struct TopicCheck {
    client: aws_sdk_sns::Client,
}

impl TopicCheck {
    /// Builds the SDK client from `sdk` (it honours `AWS_ENDPOINT_URL_SNS` and `AWS_ENDPOINT_URL`
    /// when the `SdkConfig` was loaded by `aws_config`); `endpoint_override` wins over both.
    pub fn new(sdk: &SdkConfig, endpoint_override: Option<&str>) -> Self {
        let mut builder = aws_sdk_sns::config::Builder::from(sdk);
        if let Some(url) = endpoint_override.filter(|u| !u.trim().is_empty()) {
            builder = builder.endpoint_url(url.trim());
        }
        Self {
            client: aws_sdk_sns::Client::from_conf(builder.build()),
        }
    }

    /// Checks `topic_arn`, and, when `subscription_endpoint` is given (the bridge's
    /// `https://<host>/webhooks/connect`), whether that endpoint's subscription is confirmed.
    pub async fn check(
        &self,
        topic_arn: &str,
        subscription_endpoint: Option<&str>,
    ) -> Result<TopicReport, TopicCheckError> {
        const OP: &str = "GetTopicAttributes";
        let name_is_fifo = topic_arn.ends_with(".fifo");
        let attributes = match self
            .client
            .get_topic_attributes()
            .topic_arn(topic_arn)
            .send()
            .await
        {
            Ok(out) => out.attributes().cloned().unwrap_or_default(),
            Err(SdkError::ServiceError(ctx)) if ctx.err().code() == Some("NotFound") => {
                return Ok(TopicReport {
                    topic_arn: topic_arn.to_owned(),
                    exists: false,
                    fifo: name_is_fifo,
                    connect_may_publish: false,
                    policy_problem: None,
                    subscription: None,
                    subscription_arn: None,
                });
            }
            Err(e) => return Err(from_sdk_error(OP, &e)),
        };
        let fifo = name_is_fifo
            || attributes
                .get("FifoTopic")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let (connect_may_publish, policy_problem) = match attributes.get("Policy") {
            None => (false, Some("the topic has no access policy".to_owned())),
            Some(policy) => match connect_may_publish(policy) {
                Ok(allowed) => (allowed, None),
                Err(problem) => (false, Some(problem.to_string())),
            },
        };
        let (subscription, subscription_arn) = match subscription_endpoint {
            None => (None, None),
            Some(endpoint) => {
                let (state, arn) = self.subscription_state(topic_arn, endpoint).await?;
                (Some(state), arn)
            }
        };
        Ok(TopicReport {
            topic_arn: topic_arn.to_owned(),
            exists: true,
            fifo,
            connect_may_publish,
            policy_problem,
            subscription,
            subscription_arn,
        })
    }

    /// The filter policy of subscription `subscription_arn` (GetSubscriptionAttributes; needs
    /// `sns:GetSubscriptionAttributes`).
    pub async fn filter_policy(
        &self,
        subscription_arn: &str,
    ) -> Result<SubscriptionFilter, TopicCheckError> {
        const OP: &str = "GetSubscriptionAttributes";
        let out = self
            .client
            .get_subscription_attributes()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, &e))?;
        let attributes = out.attributes();
        let get = |k: &str| {
            attributes
                .and_then(|a| a.get(k))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        Ok(SubscriptionFilter {
            policy: get("FilterPolicy"),
            scope: get("FilterPolicyScope"),
        })
    }

    /// Walks every page of ListSubscriptionsByTopic for an http(s) subscription of `endpoint`;
    /// the ARN when it is confirmed.
    async fn subscription_state(
        &self,
        topic_arn: &str,
        endpoint: &str,
    ) -> Result<(SubscriptionState, Option<String>), TopicCheckError> {
        const OP: &str = "ListSubscriptionsByTopic";
        let mut state = SubscriptionState::Missing;
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| from_sdk_error(OP, &e))?;
            for sub in out.subscriptions() {
                let http = sub.protocol().is_some_and(|p| {
                    p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https")
                });
                if !http || !sub.endpoint().is_some_and(|e| same_endpoint(e, endpoint)) {
                    continue;
                }
                match sub.subscription_arn() {
                    Some(arn) if arn.starts_with("arn:") => {
                        return Ok((SubscriptionState::Confirmed, Some(arn.to_owned())));
                    }
                    Some(PENDING) | None => state = SubscriptionState::Pending,
                    // `Deleted` and anything else: not a live subscription.
                    Some(_) => {}
                }
            }
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token.to_owned()),
                None => return Ok((state, None)),
            }
        }
        Ok((state, None))
    }
}

/// Two endpoint URLs name the same resource (scheme and host case, default port, an empty path
/// as `/`); unparsable ones must be equal byte for byte.
fn same_endpoint(a: &str, b: &str) -> bool {
    match (url::Url::parse(a.trim()), url::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

/// Why a topic policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the topic policy is not JSON: {0}")]
    NotJson(String),
    #[error("the topic policy has no Statement")]
    NoStatement,
}

/// Whether an SNS topic policy lets Amazon Connect publish: some `Allow` statement names the
/// service principal `connect.amazonaws.com` and an action matching `sns:Publish` (case-insensitive,
/// `*` / `?` wildcards: `SNS:Publish`, `sns:*`, `*`), and no `Deny` statement for that principal
/// (or `*`) matches `sns:Publish`. Conditions (`aws:SourceAccount`, `aws:SourceArn`) are not
/// evaluated; statements using `NotPrincipal` / `NotAction` are not counted as allowing.
pub fn connect_may_publish(policy: &str) -> Result<bool, PolicyError> {
    let doc: Value =
        serde_json::from_str(policy).map_err(|e| PolicyError::NotJson(e.to_string()))?;
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(PolicyError::NoStatement),
    };
    let mut allowed = false;
    for statement in statements {
        let effect = statement
            .get("Effect")
            .and_then(Value::as_str)
            .unwrap_or("");
        let publishes = strings(statement.get("Action"))
            .iter()
            .any(|action| wildcard_match(action, "sns:Publish"));
        if !publishes {
            continue;
        }
        if effect.eq_ignore_ascii_case("Allow") && names_connect(statement.get("Principal"), false)
        {
            allowed = true;
        } else if effect.eq_ignore_ascii_case("Deny")
            && names_connect(statement.get("Principal"), true)
        {
            return Ok(false);
        }
    }
    Ok(allowed)
}

/// The principal names `connect.amazonaws.com` as a service (`any` also accepts `"*"`, which a
/// `Deny` applies to everyone).
fn names_connect(principal: Option<&Value>, any: bool) -> bool {
    match principal {
        Some(Value::String(s)) => any && s == "*",
        Some(Value::Object(map)) => {
            strings(map.get("Service"))
                .iter()
                .any(|s| s.eq_ignore_ascii_case(CONNECT_SERVICE_PRINCIPAL))
                || (any && strings(map.get("AWS")).contains(&"*"))
        }
        _ => false,
    }
}

/// A policy element that is a string or a list of strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM action matching: ASCII case-insensitive, `*` any run, `?` any one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<u8> = pattern.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let t: Vec<u8> = text.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

fn find_credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// Maps an SNS SDK failure (Query protocol error codes).
fn from_sdk_error<E>(op: &'static str, err: &SdkError<E, HttpResponse>) -> TopicCheckError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let unavailable = |message: String| TopicCheckError::Unavailable { op, message };
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let meta = ctx.err();
            let code = meta.code().unwrap_or("");
            let message = truncate(&match meta.message() {
                Some(m) => format!("{code} (HTTP {status}): {m}"),
                None => format!("{code} (HTTP {status})"),
            });
            match code {
                "AuthorizationError" | "AccessDenied" | "AccessDeniedException" => {
                    TopicCheckError::AccessDenied { op, message }
                }
                "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "MissingAuthenticationToken"
                | "IncompleteSignature"
                | "InvalidSecurity"
                | "ExpiredToken"
                | "UnrecognizedClientException" => TopicCheckError::Unauthorized { op, message },
                "InvalidParameter" | "InvalidParameterValue" | "ValidationError" => {
                    TopicCheckError::Invalid { op, message }
                }
                _ => match status {
                    401 | 403 => TopicCheckError::Unauthorized { op, message },
                    429 => unavailable(message),
                    400..=499 => TopicCheckError::Invalid { op, message },
                    _ => unavailable(message),
                },
            }
        }
        SdkError::DispatchFailure(_) => match find_credentials_error(err) {
            Some(CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_))
            | None => unavailable(DisplayErrorContext(err).to_string()),
            Some(cred) => TopicCheckError::Unauthorized {
                op,
                message: format!(
                    "could not resolve AWS credentials: {}",
                    DisplayErrorContext(cred)
                ),
            },
        },
        SdkError::TimeoutError(_) => unavailable("timed out".to_owned()),
        _ => unavailable(DisplayErrorContext(err).to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CONNECT_STATEMENT: &str = r#"{"Sid":"AllowConnect","Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":"sns:Publish","Resource":"arn:aws:sns:us-east-1:123456789012:t","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}"#;
    const DEFAULT_STATEMENT: &str = r#"{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:Subscribe","SNS:Publish"],"Resource":"arn:aws:sns:us-east-1:123456789012:t","Condition":{"StringEquals":{"AWS:SourceOwner":"123456789012"}}}"#;

    fn policy(statements: &[&str]) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )
    }

    #[test]
    fn connect_statement_allows() {
        assert_eq!(
            connect_may_publish(&policy(&[DEFAULT_STATEMENT, CONNECT_STATEMENT])),
            Ok(true)
        );
        // A single statement object, a list of services, upper-case and wildcard actions.
        for stmt in [
            r#"{"Effect":"Allow","Principal":{"Service":["sqs.amazonaws.com","connect.amazonaws.com"]},"Action":"SNS:Publish"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":["sns:Subscribe","sns:*"]}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":"sns:Pub*"}"#,
        ] {
            let doc = format!(r#"{{"Statement":{stmt}}}"#);
            assert_eq!(connect_may_publish(&doc), Ok(true), "{stmt}");
        }
    }

    #[test]
    fn without_connect_it_does_not() {
        // The default policy lets the owner's account publish, not the Connect service.
        assert_eq!(
            connect_may_publish(&policy(&[DEFAULT_STATEMENT])),
            Ok(false)
        );
        for stmt in [
            r#"{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":"sns:Subscribe"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sns:Publish"}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"sns:Publish"}"#,
            r#"{"Effect":"Allow","NotPrincipal":{"Service":"connect.amazonaws.com"},"Action":"sns:Publish"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"NotAction":"sns:Subscribe"}"#,
        ] {
            let doc = format!(r#"{{"Statement":[{stmt}]}}"#);
            assert_eq!(connect_may_publish(&doc), Ok(false), "{stmt}");
        }
    }

    #[test]
    fn deny_wins() {
        let deny = r#"{"Effect":"Deny","Principal":"*","Action":"sns:*"}"#;
        assert_eq!(
            connect_may_publish(&policy(&[CONNECT_STATEMENT, deny])),
            Ok(false)
        );
        let deny_other = r#"{"Effect":"Deny","Principal":{"Service":"events.amazonaws.com"},"Action":"sns:Publish"}"#;
        assert_eq!(
            connect_may_publish(&policy(&[CONNECT_STATEMENT, deny_other])),
            Ok(true)
        );
    }

    #[test]
    fn unreadable_policies() {
        assert!(matches!(
            connect_may_publish("not json"),
            Err(PolicyError::NotJson(_))
        ));
        assert_eq!(
            connect_may_publish(r#"{"Version":"2012-10-17"}"#),
            Err(PolicyError::NoStatement)
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("SNS:PUBLISH", "sns:Publish"));
        assert!(wildcard_match("sns:*", "sns:Publish"));
        assert!(wildcard_match("*", "sns:Publish"));
        assert!(wildcard_match("sns:P?blish", "sns:Publish"));
        assert!(wildcard_match("*:*lish", "sns:Publish"));
        assert!(!wildcard_match("sns:Publish*X", "sns:Publish"));
        assert!(!wildcard_match("sqs:*", "sns:Publish"));
        assert!(!wildcard_match("sns:PublishBatch", "sns:Publish"));
    }

    #[test]
    fn endpoints_compare_as_urls() {
        assert!(same_endpoint(
            "https://Bridge.example.com:443/webhooks/connect",
            "https://bridge.example.com/webhooks/connect"
        ));
        assert!(same_endpoint(
            "https://b.example.com",
            "https://b.example.com/"
        ));
        assert!(!same_endpoint(
            "https://b.example.com/webhooks/connect",
            "https://b.example.com/webhooks/x"
        ));
        assert!(!same_endpoint(
            "http://b.example.com/webhooks/connect",
            "https://b.example.com/webhooks/connect"
        ));
    }
}
