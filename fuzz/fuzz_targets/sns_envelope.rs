//! SNS envelopes: `SnsMessage::{from_http_body, from_lambda_event, from_lambda_sns}`,
//! `string_to_sign`, `chat_item_from_notification` and the URL checks, on arbitrary bytes.
//!
//! Asserted on top of "no panic":
//! * an accepted message has every required field non-empty, and confirmations carry their
//!   `SubscribeURL` and `Token` (docs/protocols.md B4);
//! * the string to sign starts with the `Message` key and ends with the `Type` key;
//! * a Lambda event yields at least one message;
//! * the HTTP and Lambda-record readers agree on the same JSON object.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdm_amazon_connect::sns::{
    ChatItemError, SnsMessage, SnsMessageType, chat_item_from_notification,
    is_allowed_subscribe_url, string_to_sign, verify::is_aws_cert_url,
};

fn check(msg: &SnsMessage) {
    for (name, value) in [
        ("MessageId", &msg.message_id),
        ("TopicArn", &msg.topic_arn),
        ("Timestamp", &msg.timestamp),
        ("SignatureVersion", &msg.signature_version),
        ("Signature", &msg.signature),
        ("SigningCertURL", &msg.signing_cert_url),
    ] {
        assert!(!value.is_empty(), "accepted an empty {name}");
    }
    if msg.message_type != SnsMessageType::Notification {
        assert!(msg.subscribe_url.as_deref().is_some_and(|u| !u.is_empty()));
        assert!(msg.token.as_deref().is_some_and(|t| !t.is_empty()));
    }
    let signed = string_to_sign(msg);
    assert!(signed.starts_with("Message\n"));
    assert!(signed.ends_with(&format!(
        "TopicArn\n{}\nType\n{}\n",
        msg.topic_arn, msg.message_type
    )));

    let _ = is_aws_cert_url(&msg.signing_cert_url);
    if let Some(url) = &msg.subscribe_url {
        let _ = is_allowed_subscribe_url(url, ["http://127.0.0.1:9/cert.pem"]);
    }
    match chat_item_from_notification(msg) {
        Err(ChatItemError::NotANotification(t)) => assert_ne!(t, SnsMessageType::Notification),
        _ => assert_eq!(msg.message_type, SnsMessageType::Notification),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SnsMessage::from_http_body(data) {
        check(&msg);
    }
    if let Ok(msgs) = SnsMessage::from_lambda_event(data) {
        assert!(!msgs.is_empty());
        msgs.iter().for_each(check);
    }
    // The same object through both readers (re-serialised, so duplicate keys are already gone).
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let from_value = SnsMessage::from_lambda_sns(&value);
        let bytes = serde_json::to_vec(&value).expect("a Value serialises");
        let from_bytes = SnsMessage::from_http_body(&bytes);
        match (&from_value, &from_bytes) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("readers disagree: {from_value:?} vs {from_bytes:?}"),
        }
    }
});
