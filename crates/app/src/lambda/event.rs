//! What invoked the function, told from the event's shape (one binary serves every function of
//! the deployment).

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use serde_json::Value;

/// The kinds of events the bridge handles.
#[derive(Debug)]
pub enum Invocation {
    /// API Gateway REST API (payload v1) proxy integration.
    HttpV1(Box<ApiGatewayProxyRequest>),
    /// API Gateway HTTP API (payload v2) or a Lambda function URL.
    HttpV2(Box<ApiGatewayV2httpRequest>),
    /// SNS records (the Connect chat stream).
    Sns(Vec<Value>),
    /// SQS records (wake-ups for customers with new inbound messages).
    Sqs(Vec<SqsRecord>),
    /// An EventBridge schedule: deliver whatever is due (retries, missed wake-ups).
    Sweep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsRecord {
    pub message_id: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "unrecognised Lambda event (expected API Gateway, function URL, SNS, SQS or a schedule)"
    )]
    Unrecognised,
    #[error("malformed {kind} event: {reason}")]
    Malformed { kind: &'static str, reason: String },
}

impl Invocation {
    pub fn classify(event: Value) -> Result<Self, EventError> {
        if let Some(records) = event.get("Records").and_then(Value::as_array) {
            let source = |r: &Value| {
                r.get("EventSource")
                    .or_else(|| r.get("eventSource"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            return match records.first().and_then(source).as_deref() {
                Some("aws:sns") => Ok(Invocation::Sns(records.clone())),
                Some("aws:sqs") => records
                    .iter()
                    .map(|r| {
                        let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
                        match (field("messageId"), field("body")) {
                            (Some(message_id), Some(body)) => Ok(SqsRecord { message_id, body }),
                            _ => Err(EventError::Malformed {
                                kind: "SQS",
                                reason: "a record lacks messageId or body".into(),
                            }),
                        }
                    })
                    .collect::<Result<_, _>>()
                    .map(Invocation::Sqs),
                _ => Err(EventError::Unrecognised),
            };
        }
        if event.get("source").and_then(Value::as_str) == Some("aws.events")
            || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        {
            return Ok(Invocation::Sweep);
        }
        if event.get("httpMethod").is_some() {
            return serde_json::from_value(event)
                .map(|r| Invocation::HttpV1(Box::new(r)))
                .map_err(|e| EventError::Malformed {
                    kind: "API Gateway (REST)",
                    reason: e.to_string(),
                });
        }
        if event.pointer("/requestContext/http").is_some() {
            return serde_json::from_value(event)
                .map(|r| Invocation::HttpV2(Box::new(r)))
                .map_err(|e| EventError::Malformed {
                    kind: "API Gateway (HTTP API) / function URL",
                    reason: e.to_string(),
                });
        }
        Err(EventError::Unrecognised)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn classifies_the_captured_events_and_built_ones() {
        assert!(matches!(
            Invocation::classify(fixture("apigw-x-webhook-text-dm.json")).unwrap(),
            Invocation::HttpV1(_)
        ));
        assert!(
            matches!(Invocation::classify(fixture("lambda-sns-agent-message.json")).unwrap(), Invocation::Sns(r) if r.len() == 1)
        );
        let v2 = json!({"version":"2.0","routeKey":"$default","rawPath":"/webhooks/x","rawQueryString":"crc_token=a",
            "headers":{},"requestContext":{"http":{"method":"GET","path":"/webhooks/x"}},"isBase64Encoded":false});
        assert!(matches!(
            Invocation::classify(v2).unwrap(),
            Invocation::HttpV2(_)
        ));
        let sqs = json!({"Records":[{"messageId":"m1","body":"{}","eventSource":"aws:sqs"}]});
        assert!(
            matches!(Invocation::classify(sqs).unwrap(), Invocation::Sqs(r) if r[0].message_id == "m1")
        );
        let tick = json!({"source":"aws.events","detail-type":"Scheduled Event","detail":{}});
        assert!(matches!(
            Invocation::classify(tick).unwrap(),
            Invocation::Sweep
        ));
        assert!(matches!(
            Invocation::classify(json!({"hello":1})),
            Err(EventError::Unrecognised)
        ));
        assert!(Invocation::classify(json!({"Records":[{"eventSource":"aws:sqs"}]})).is_err());
    }
}
