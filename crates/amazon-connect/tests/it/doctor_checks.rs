//! The read-only checks `xdm-connect doctor` makes: `ContactClient::describe_instance` /
//! `describe_contact_flow` and `TopicCheck::check`, against a small stand-in that answers like
//! Connect (rest-json) and SNS (Query API, XML) and records what arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use xdm_amazon_connect::sns::{SubscriptionState, TopicCheck, TopicCheckError};
use xdm_amazon_connect::{ContactClient, DescribeError};
use xdm_core::ports::ConnectError;

use crate::connect_client::{INSTANCE, no_env, sdk_config};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:connect-chat-out";
const DENIED_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:locked";
const BRIDGE: &str = "https://bridge.example.com/webhooks/connect";
const CONNECT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"connect.amazonaws.com"},"Action":"SNS:Publish","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    content_type: Option<String>,
    body: Bytes,
}

/// One subscription of the stand-in topic: (SubscriptionArn, Protocol, Endpoint).
type Sub = (&'static str, &'static str, String);

#[derive(Default)]
struct Stub {
    seen: Mutex<Vec<Seen>>,
    policy: Mutex<String>,
    fifo: Mutex<bool>,
    subscriptions: Mutex<Vec<Sub>>,
}

fn record(stub: &Stub, method: &str, path: &str, headers: &HeaderMap, body: Bytes) {
    stub.seen.lock().unwrap().push(Seen {
        method: method.to_owned(),
        path: path.to_owned(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        content_type: headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        body,
    });
}

fn rest_error(status: u16, code: &str, message: &str) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(serde_json::json!({"message": message})),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-amzn-ErrorType", code.parse().unwrap());
    resp
}

async fn instance(
    State(stub): State<Arc<Stub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&stub, "GET", &format!("/instance/{id}"), &headers, body);
    match id.as_str() {
        INSTANCE => axum::Json(serde_json::json!({
            "Instance": {
                "Id": INSTANCE,
                "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}"),
                "IdentityManagementType": "CONNECT_MANAGED",
                "InstanceAlias": "acme-support",
                "CreatedTime": 1.767225600E9,
                "InstanceStatus": "ACTIVE",
                "InboundCallsEnabled": true,
                "OutboundCallsEnabled": false
            }
        }))
        .into_response(),
        "failed" => axum::Json(serde_json::json!({
            "Instance": {"Id": "failed", "InstanceStatus": "CREATION_FAILED",
                         "StatusReason": {"Message": "quota"}}
        }))
        .into_response(),
        "denied" => rest_error(
            403,
            "AccessDeniedException",
            "User is not authorized to perform connect:DescribeInstance",
        ),
        "badkey" => rest_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        "busy" => rest_error(429, "ThrottlingException", "Rate exceeded"),
        _ => rest_error(404, "ResourceNotFoundException", "Instance not found"),
    }
}

async fn flow(
    State(stub): State<Arc<Stub>>,
    Path((instance, flow)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &stub,
        "GET",
        &format!("/contact-flows/{instance}/{flow}"),
        &headers,
        body,
    );
    if instance != INSTANCE {
        return rest_error(404, "ResourceNotFoundException", "Instance not found");
    }
    let described = |kind: &str, state: &str, status: &str| {
        axum::Json(serde_json::json!({
            "ContactFlow": {
                "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}/contact-flow/{flow}"),
                "Id": flow, "Name": "Inbound chat", "Type": kind, "State": state,
                "Status": status, "Description": "", "Content": "{}"
            }
        }))
        .into_response()
    };
    match flow.as_str() {
        "inbound" => described("CONTACT_FLOW", "ACTIVE", "PUBLISHED"),
        "queue" => described("CUSTOMER_QUEUE", "ARCHIVED", "PUBLISHED"),
        "saved" => rest_error(
            404,
            "ContactFlowNotPublishedException",
            "The contact flow has not been published.",
        ),
        "denied" => rest_error(403, "AccessDeniedException", "not authorized"),
        _ => rest_error(404, "ResourceNotFoundException", "Contact flow not found"),
    }
}

fn sns_error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    );
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "text/xml")],
        body,
    )
        .into_response()
}

fn sns_ok(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>"
    );
    ([("content-type", "text/xml")], body).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SNS Query API: two subscriptions per page, NextToken = the next index.
async fn sns(State(stub): State<Arc<Stub>>, headers: HeaderMap, body: Bytes) -> Response {
    record(&stub, "POST", "/", &headers, body.clone());
    let params: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let topic = params.get("TopicArn").cloned().unwrap_or_default();
    if topic == DENIED_TOPIC {
        return sns_error(
            403,
            "AuthorizationError",
            "User is not authorized to perform: SNS:GetTopicAttributes",
        );
    }
    if topic != TOPIC && !topic.ends_with(".fifo") {
        return sns_error(404, "NotFound", "Topic does not exist");
    }
    match params.get("Action").map(String::as_str) {
        Some("GetTopicAttributes") => {
            let mut attrs = vec![
                ("TopicArn", topic.clone()),
                ("Owner", "123456789012".to_owned()),
                ("Policy", stub.policy.lock().unwrap().clone()),
                ("SubscriptionsConfirmed", "1".to_owned()),
            ];
            if *stub.fifo.lock().unwrap() {
                attrs.push(("FifoTopic", "true".to_owned()));
            }
            let entries: String = attrs
                .iter()
                .map(|(k, v)| format!("<entry><key>{k}</key><value>{}</value></entry>", escape(v)))
                .collect();
            sns_ok(
                "GetTopicAttributes",
                &format!("<Attributes>{entries}</Attributes>"),
            )
        }
        Some("ListSubscriptionsByTopic") => {
            let subs = stub.subscriptions.lock().unwrap().clone();
            let start: usize = params
                .get("NextToken")
                .map(|t| t.parse().unwrap())
                .unwrap_or(0);
            let end = (start + 2).min(subs.len());
            let members: String = subs[start..end]
                .iter()
                .map(|(arn, protocol, endpoint)| {
                    format!(
                        "<member><TopicArn>{TOPIC}</TopicArn><Protocol>{protocol}</Protocol>\
                         <SubscriptionArn>{arn}</SubscriptionArn><Owner>123456789012</Owner>\
                         <Endpoint>{}</Endpoint></member>",
                        escape(endpoint)
                    )
                })
                .collect();
            let next = if end < subs.len() {
                format!("<NextToken>{end}</NextToken>")
            } else {
                String::new()
            };
            sns_ok(
                "ListSubscriptionsByTopic",
                &format!("<Subscriptions>{members}</Subscriptions>{next}"),
            )
        }
        _ => sns_error(400, "InvalidAction", "unknown action"),
    }
}

async fn start() -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    *stub.policy.lock().unwrap() = CONNECT_POLICY.to_owned();
    let app = Router::new()
        .route("/instance/{id}", get(instance))
        .route("/contact-flows/{instance}/{flow}", get(flow))
        .route("/", post(sns))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, stub)
}

fn contact_client(base: &str) -> ContactClient {
    ContactClient::with_env(
        &sdk_config(None),
        Some(base),
        Duration::from_secs(5),
        no_env,
    )
    .unwrap()
}

#[tokio::test]
async fn describe_instance_reads_alias_and_status() {
    let (base, stub) = start().await;
    let api = contact_client(&base);
    let info = api.describe_instance(INSTANCE).await.unwrap();
    assert_eq!(info.id, INSTANCE);
    assert_eq!(info.alias.as_deref(), Some("acme-support"));
    assert_eq!(info.status, "ACTIVE");
    assert!(info.is_active());

    let failed = api.describe_instance("failed").await.unwrap();
    assert!(!failed.is_active());
    assert_eq!(failed.status_reason.as_deref(), Some("quota"));

    // A GET without body or content type, SigV4-signed for `connect`.
    let seen = stub.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, format!("/instance/{INSTANCE}"));
    assert!(seen.body.is_empty());
    assert_eq!(seen.content_type, None);
    assert!(
        seen.authorization
            .contains("/us-east-1/connect/aws4_request"),
        "{}",
        seen.authorization
    );
}

#[tokio::test]
async fn describe_errors_are_told_apart() {
    let (base, _stub) = start().await;
    let api = contact_client(&base);
    assert!(matches!(
        api.describe_instance("nope").await,
        Err(DescribeError::NotFound(_))
    ));
    let denied = api.describe_instance("denied").await.unwrap_err();
    assert!(
        matches!(denied, DescribeError::AccessDenied(_)),
        "{denied:?}"
    );
    assert!(denied.to_string().contains("connect:DescribeInstance"));
    // Bad credentials are not a missing permission.
    assert!(matches!(
        api.describe_instance("badkey").await,
        Err(DescribeError::Connect(ConnectError::Unauthorized(_)))
    ));
    assert!(matches!(
        api.describe_instance("busy").await,
        Err(DescribeError::Connect(ConnectError::Throttled(_)))
    ));
    // The caller may still treat them all as ConnectError.
    let as_connect: ConnectError = denied.into();
    assert!(matches!(as_connect, ConnectError::Unauthorized(_)));
}

#[tokio::test]
async fn describe_contact_flow_reads_type_state_status() {
    let (base, stub) = start().await;
    let api = contact_client(&base);
    let flow = api
        .describe_contact_flow(INSTANCE, "inbound")
        .await
        .unwrap();
    assert_eq!(flow.name, "Inbound chat");
    assert_eq!(flow.flow_type, "CONTACT_FLOW");
    assert_eq!(flow.state, "ACTIVE");
    assert_eq!(flow.status.as_deref(), Some("PUBLISHED"));
    assert!(flow.problems().is_empty());

    let queue = api.describe_contact_flow(INSTANCE, "queue").await.unwrap();
    let problems = queue.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("CUSTOMER_QUEUE"));
    assert!(problems[1].contains("ARCHIVED"));

    for (instance, flow) in [
        (INSTANCE, "missing"),
        (INSTANCE, "saved"),
        ("other", "inbound"),
    ] {
        let err = api.describe_contact_flow(instance, flow).await.unwrap_err();
        assert!(matches!(err, DescribeError::NotFound(_)), "{flow}: {err:?}");
    }
    assert!(matches!(
        api.describe_contact_flow(INSTANCE, "denied").await,
        Err(DescribeError::AccessDenied(_))
    ));
    // Ids are path segments: nothing in an id can change the path.
    let err = api
        .describe_contact_flow(INSTANCE, "../instance/x")
        .await
        .unwrap_err();
    assert!(matches!(err, DescribeError::NotFound(_)), "{err:?}");
    assert!(
        stub.seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.path.starts_with("/contact-flows/"))
    );
}

fn topic_check(base: &str) -> TopicCheck {
    TopicCheck::new(&sdk_config(None), Some(base))
}

#[tokio::test]
async fn topic_that_connect_may_publish_to_with_a_confirmed_subscription() {
    let (base, stub) = start().await;
    *stub.subscriptions.lock().unwrap() = vec![
        (
            "PendingConfirmation",
            "https",
            "https://other.example.com/".to_owned(),
        ),
        (
            "arn:aws:sns:us-east-1:123456789012:connect-chat-out:1",
            "email",
            BRIDGE.to_owned(),
        ),
        (
            "arn:aws:sns:us-east-1:123456789012:connect-chat-out:2",
            "sqs",
            "arn:aws:sqs:us-east-1:123456789012:q".to_owned(),
        ),
        // On the second page, with the host in capitals and the default port.
        (
            "arn:aws:sns:us-east-1:123456789012:connect-chat-out:3",
            "https",
            "https://BRIDGE.example.com:443/webhooks/connect".to_owned(),
        ),
    ];
    let report = topic_check(&base).check(TOPIC, Some(BRIDGE)).await.unwrap();
    assert!(report.exists);
    assert!(!report.fifo);
    assert!(report.connect_may_publish);
    assert_eq!(report.policy_problem, None);
    assert_eq!(report.subscription, Some(SubscriptionState::Confirmed));

    // Query API calls, SigV4-signed for `sns`, two pages of subscriptions.
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let body = String::from_utf8(seen[0].body.to_vec()).unwrap();
    assert!(body.contains("Action=GetTopicAttributes"), "{body}");
    assert!(body.contains("Version=2010-03-31"), "{body}");
    assert!(
        seen[0]
            .authorization
            .contains("/us-east-1/sns/aws4_request")
    );
    assert!(String::from_utf8_lossy(&seen[2].body).contains("NextToken=2"));
}

#[tokio::test]
async fn pending_missing_and_policy_problems() {
    let (base, stub) = start().await;
    let check = topic_check(&base);
    *stub.subscriptions.lock().unwrap() = vec![("PendingConfirmation", "https", BRIDGE.to_owned())];
    let report = check.check(TOPIC, Some(BRIDGE)).await.unwrap();
    assert_eq!(report.subscription, Some(SubscriptionState::Pending));
    let report = check
        .check(TOPIC, Some("https://bridge.example.com/webhooks/x"))
        .await
        .unwrap();
    assert_eq!(report.subscription, Some(SubscriptionState::Missing));
    // No endpoint asked about: no ListSubscriptionsByTopic.
    let calls = stub.seen.lock().unwrap().len();
    let report = check.check(TOPIC, None).await.unwrap();
    assert_eq!(report.subscription, None);
    assert_eq!(stub.seen.lock().unwrap().len(), calls + 1);

    // SNS's default policy: the account may publish, Connect may not.
    *stub.policy.lock().unwrap() = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:Publish","SNS:Subscribe"],"Resource":"*","Condition":{"StringEquals":{"AWS:SourceOwner":"123456789012"}}}]}"#.to_owned();
    let report = check.check(TOPIC, None).await.unwrap();
    assert!(!report.connect_may_publish);
    assert_eq!(report.policy_problem, None);

    *stub.policy.lock().unwrap() = "{not json".to_owned();
    let report = check.check(TOPIC, None).await.unwrap();
    assert!(!report.connect_may_publish);
    assert!(report.policy_problem.unwrap().contains("not JSON"));

    *stub.fifo.lock().unwrap() = true;
    let report = check.check(TOPIC, None).await.unwrap();
    assert!(report.fifo);
}

#[tokio::test]
async fn missing_topic_and_refusals() {
    let (base, _stub) = start().await;
    let check = topic_check(&base);
    let report = check
        .check("arn:aws:sns:us-east-1:123456789012:gone", Some(BRIDGE))
        .await
        .unwrap();
    assert!(!report.exists);
    assert!(!report.connect_may_publish);
    assert_eq!(report.subscription, None);

    let err = check.check(DENIED_TOPIC, Some(BRIDGE)).await.unwrap_err();
    assert!(
        matches!(
            err,
            TopicCheckError::AccessDenied {
                op: "GetTopicAttributes",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("AuthorizationError"), "{err}");

    // Nothing listening: unavailable, not a verdict on the topic.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = topic_check(&closed).check(TOPIC, None).await.unwrap_err();
    assert!(
        matches!(err, TopicCheckError::Unavailable { .. }),
        "{err:?}"
    );
}
