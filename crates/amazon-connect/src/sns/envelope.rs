//! The SNS envelope, in both delivery shapes, normalised into one [`SnsMessage`].
//!
//! * HTTP(S) subscription body: `SigningCertURL`, `SubscribeURL`, `UnsubscribeURL`.
//! * Lambda record (`Records[].Sns`): `SigningCertUrl`, `SubscribeUrl`, `UnsubscribeUrl`, and
//!   `"Subject": null` when there is no subject (docs/protocols.md B4 §4).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of SNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnsMessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsMessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Notification" => Some(Self::Notification),
            "SubscriptionConfirmation" => Some(Self::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(Self::UnsubscribeConfirmation),
            _ => None,
        }
    }
}

impl fmt::Display for SnsMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SNS message attribute (`{"Type":"String","Value":"…"}`); not covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    #[serde(rename = "Type")]
    pub data_type: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// An SNS message, whichever way it was delivered.
#[derive(Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub message_type: SnsMessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// `None` when absent or `null`.
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
    /// Confirmations only.
    pub subscribe_url: Option<String>,
    /// Notifications only.
    pub unsubscribe_url: Option<String>,
    /// Confirmations only.
    pub token: Option<String>,
    pub message_attributes: BTreeMap<String, MessageAttribute>,
}

impl fmt::Debug for SnsMessage {
    /// Message bodies and confirmation tokens stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsMessage")
            .field("message_type", &self.message_type)
            .field("message_id", &self.message_id)
            .field("topic_arn", &self.topic_arn)
            .field("timestamp", &self.timestamp)
            .field("signature_version", &self.signature_version)
            .field("signing_cert_url", &self.signing_cert_url)
            .field("message_len", &self.message.len())
            .finish_non_exhaustive()
    }
}

/// Why a body is not an SNS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the SNS body is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("the SNS message has no {0}")]
    MissingField(&'static str),
    #[error("unknown SNS message type {0:?}")]
    UnknownType(String),
    #[error("the Lambda event has no SNS record")]
    NoSnsRecord,
}

/// Both shapes in one: serde aliases accept either spelling (but not both at once).
#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "Type")]
    message_type: Option<String>,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(rename = "SignatureVersion")]
    signature_version: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL", alias = "SubscribeUrl")]
    subscribe_url: Option<String>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    unsubscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "MessageAttributes")]
    message_attributes: Option<BTreeMap<String, MessageAttribute>>,
}

fn required(value: Option<String>, name: &'static str) -> Result<String, EnvelopeError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(EnvelopeError::MissingField(name))
}

impl TryFrom<RawEnvelope> for SnsMessage {
    type Error = EnvelopeError;

    fn try_from(raw: RawEnvelope) -> Result<Self, EnvelopeError> {
        let type_str = required(raw.message_type, "Type")?;
        let message_type =
            SnsMessageType::parse(&type_str).ok_or(EnvelopeError::UnknownType(type_str))?;
        let confirmation = message_type != SnsMessageType::Notification;
        let msg = SnsMessage {
            message_type,
            message_id: required(raw.message_id, "MessageId")?,
            topic_arn: required(raw.topic_arn, "TopicArn")?,
            subject: raw.subject,
            // An empty Message is legal for a notification; it must be present, though.
            message: raw.message.ok_or(EnvelopeError::MissingField("Message"))?,
            timestamp: required(raw.timestamp, "Timestamp")?,
            signature_version: required(raw.signature_version, "SignatureVersion")?,
            signature: required(raw.signature, "Signature")?,
            signing_cert_url: required(raw.signing_cert_url, "SigningCertURL")?,
            subscribe_url: if confirmation {
                Some(required(raw.subscribe_url, "SubscribeURL")?)
            } else {
                raw.subscribe_url
            },
            unsubscribe_url: raw.unsubscribe_url,
            token: if confirmation {
                Some(required(raw.token, "Token")?)
            } else {
                raw.token
            },
            message_attributes: raw.message_attributes.unwrap_or_default(),
        };
        Ok(msg)
    }
}

#[derive(Deserialize)]
struct RawLambdaEvent {
    #[serde(rename = "Records")]
    records: Vec<RawLambdaRecord>,
}

#[derive(Deserialize)]
struct RawLambdaRecord {
    #[serde(rename = "Sns")]
    sns: Option<RawEnvelope>,
}

impl SnsMessage {
    /// Parses the body of an HTTP(S) subscription delivery.
    pub fn from_http_body(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: RawEnvelope =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        raw.try_into()
    }

    /// Parses the `Sns` object of a Lambda SNS record.
    pub fn from_lambda_sns(sns: &serde_json::Value) -> Result<Self, EnvelopeError> {
        let raw = RawEnvelope::deserialize(sns).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        raw.try_into()
    }

    /// Parses a whole Lambda SNS event (`{"Records":[{"Sns":{…}}, …]}`), one message per record.
    pub fn from_lambda_event(body: &[u8]) -> Result<Vec<Self>, EnvelopeError> {
        let event: RawLambdaEvent =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        if event.records.is_empty() {
            return Err(EnvelopeError::NoSnsRecord);
        }
        event
            .records
            .into_iter()
            .map(|r| r.sns.ok_or(EnvelopeError::NoSnsRecord)?.try_into())
            .collect()
    }

    /// The value of a message attribute, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.message_attributes.get(name).map(|a| a.value.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HTTP_NOTIFICATION: &str = r#"{
      "Type" : "Notification",
      "MessageId" : "792cda85-518f-5dd3-9163-81d851212f3a",
      "TopicArn" : "arn:aws:sns:us-east-2:295079676684:t",
      "Message" : "Hello world",
      "Timestamp" : "2022-07-28T21:23:58.317Z",
      "SignatureVersion" : "1",
      "Signature" : "c2ln",
      "SigningCertURL" : "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem",
      "UnsubscribeURL" : "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
      "MessageAttributes" : {"Type": {"Type": "String", "Value": "MESSAGE"}}
    }"#;

    #[test]
    fn parses_http_notification() {
        let m = SnsMessage::from_http_body(HTTP_NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(m.message_type, SnsMessageType::Notification);
        assert_eq!(m.message, "Hello world");
        assert_eq!(m.subject, None);
        assert_eq!(m.attribute("Type"), Some("MESSAGE"));
        assert!(m.unsubscribe_url.is_some());
        assert!(!format!("{m:?}").contains("Hello world"));
    }

    #[test]
    fn parses_lambda_spelling_and_null_subject() {
        let v = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:r:1:t",
            "Subject": null, "Message": "{}", "Timestamp": "2026-04-01T22:20:13.604Z",
            "SignatureVersion": "1", "Signature": "c2ln",
            "SigningCertUrl": "https://sns.us-west-2.amazonaws.com/x.pem",
            "UnsubscribeUrl": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
        });
        let m = SnsMessage::from_lambda_sns(&v).unwrap();
        assert_eq!(
            m.signing_cert_url,
            "https://sns.us-west-2.amazonaws.com/x.pem"
        );
        assert_eq!(m.subject, None);
        assert!(m.message_attributes.is_empty());
    }

    #[test]
    fn confirmation_needs_token_and_subscribe_url() {
        let mut v: serde_json::Value = serde_json::from_str(HTTP_NOTIFICATION).unwrap();
        v["Type"] = "SubscriptionConfirmation".into();
        assert_eq!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::MissingField("SubscribeURL"))
        );
        v["SubscribeURL"] =
            "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription".into();
        assert_eq!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::MissingField("Token"))
        );
        v["Token"] = "tok".into();
        let m = SnsMessage::from_lambda_sns(&v).unwrap();
        assert_eq!(m.message_type, SnsMessageType::SubscriptionConfirmation);
        assert_eq!(m.token.as_deref(), Some("tok"));
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert!(matches!(
            SnsMessage::from_http_body(b"not json"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            SnsMessage::from_http_body(b"[]"),
            Err(EnvelopeError::Json(_))
        ));
        let mut v: serde_json::Value = serde_json::from_str(HTTP_NOTIFICATION).unwrap();
        v["Type"] = "Surprise".into();
        assert_eq!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::UnknownType("Surprise".into()))
        );
        let mut v: serde_json::Value = serde_json::from_str(HTTP_NOTIFICATION).unwrap();
        v.as_object_mut().unwrap().remove("Signature");
        assert_eq!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::MissingField("Signature"))
        );
        let mut v: serde_json::Value = serde_json::from_str(HTTP_NOTIFICATION).unwrap();
        v["SigningCertUrl"] = "https://other/x.pem".into();
        assert!(matches!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::Json(_))
        ));
        let mut v: serde_json::Value = serde_json::from_str(HTTP_NOTIFICATION).unwrap();
        v["Message"] = 5.into();
        assert!(matches!(
            SnsMessage::from_lambda_sns(&v),
            Err(EnvelopeError::Json(_))
        ));
        assert_eq!(
            SnsMessage::from_lambda_event(br#"{"Records":[]}"#),
            Err(EnvelopeError::NoSnsRecord)
        );
    }
}
