//! SNS HTTP message bodies (docs/protocols.md B4): the string to sign and the JSON documents of
//! SubscriptionConfirmation and Notification, pretty-printed with ` : ` separators like SNS.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::ser::{Formatter, PrettyFormatter};

/// The fields covered by an SNS signature.
#[derive(Debug, Clone, Copy)]
pub struct SignedFields<'a> {
    pub message: &'a str,
    pub message_id: &'a str,
    pub subject: Option<&'a str>,
    pub subscribe_url: Option<&'a str>,
    pub timestamp: &'a str,
    pub token: Option<&'a str>,
    pub topic_arn: &'a str,
    pub message_type: &'a str,
}

/// `"<Key>\n<Value>\n"` for `Message, MessageId, Subject, SubscribeURL, Timestamp, Token, TopicArn,
/// Type`, in that order, each only when present.
pub fn string_to_sign(f: &SignedFields<'_>) -> String {
    let fields = [
        ("Message", Some(f.message)),
        ("MessageId", Some(f.message_id)),
        ("Subject", f.subject),
        ("SubscribeURL", f.subscribe_url),
        ("Timestamp", Some(f.timestamp)),
        ("Token", f.token),
        ("TopicArn", Some(f.topic_arn)),
        ("Type", Some(f.message_type)),
    ];
    let mut out = String::new();
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// `{"Type":"String","Value":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    #[serde(rename = "Type")]
    pub data_type: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl MessageAttribute {
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NotificationBody<'a> {
    #[serde(rename = "Type")]
    pub message_type: &'a str,
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    pub message: &'a str,
    pub timestamp: &'a str,
    pub signature_version: &'a str,
    pub signature: &'a str,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: &'a str,
    #[serde(rename = "UnsubscribeURL")]
    pub unsubscribe_url: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub message_attributes: &'a BTreeMap<String, MessageAttribute>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConfirmationBody<'a> {
    #[serde(rename = "Type")]
    pub message_type: &'a str,
    pub message_id: &'a str,
    pub token: &'a str,
    pub topic_arn: &'a str,
    pub message: &'a str,
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: &'a str,
    pub timestamp: &'a str,
    pub signature_version: &'a str,
    pub signature: &'a str,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: &'a str,
}

/// Pretty JSON with `"Key" : value`, as SNS writes its HTTP bodies.
struct SnsFormatter(PrettyFormatter<'static>);

impl Formatter for SnsFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

pub(crate) fn sns_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        SnsFormatter(PrettyFormatter::with_indent(b"  ")),
    );
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// docs/protocols.md B4 v1 vector: the string to sign, exactly.
    #[test]
    fn string_to_sign_of_the_v1_vector() {
        let fields = SignedFields {
            message: "Hello world",
            message_id: "792cda85-518f-5dd3-9163-81d851212f3a",
            subject: None,
            subscribe_url: None,
            timestamp: "2022-07-28T21:23:58.317Z",
            token: None,
            topic_arn: "arn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362",
            message_type: "Notification",
        };
        assert_eq!(
            string_to_sign(&fields),
            "Message\nHello world\nMessageId\n792cda85-518f-5dd3-9163-81d851212f3a\nTimestamp\n2022-07-28T21:23:58.317Z\nTopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362\nType\nNotification\n"
        );
    }

    #[test]
    fn confirmation_fields_in_order() {
        let fields = SignedFields {
            message: "m",
            message_id: "id",
            subject: None,
            subscribe_url: Some("https://x/confirm"),
            timestamp: "t",
            token: Some("tok"),
            topic_arn: "arn",
            message_type: "SubscriptionConfirmation",
        };
        assert_eq!(
            string_to_sign(&fields),
            "Message\nm\nMessageId\nid\nSubscribeURL\nhttps://x/confirm\nTimestamp\nt\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn bodies_use_sns_separators_and_parse_back() {
        let attributes = BTreeMap::from([("ContactId".to_owned(), MessageAttribute::string("c"))]);
        let body = NotificationBody {
            message_type: "Notification",
            message_id: "m",
            topic_arn: "arn",
            message: "{\"a\":1}\nline",
            timestamp: "t",
            signature_version: "1",
            signature: "s",
            signing_cert_url: "http://127.0.0.1/x.pem",
            unsubscribe_url: "http://127.0.0.1/u",
            message_attributes: &attributes,
        };
        let json = sns_json(&body);
        assert!(json.starts_with("{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"m\","));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["Message"], "{\"a\":1}\nline");
        assert_eq!(back["SigningCertURL"], "http://127.0.0.1/x.pem");
        assert_eq!(back["MessageAttributes"]["ContactId"]["Value"], "c");
    }
}
