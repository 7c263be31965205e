//! The captured Lambda record (testdata/lambda-sns-agent-message.json) → ChatItem. Its signature
//! cannot be checked offline (AWS's certificate is not available), so only parsing is tested.

use xdm_amazon_connect::sns::{SnsMessage, SnsMessageType, chat_item_from_notification};
use xdm_core::chat_item::{ChatItemBody, ParticipantRole, Visibility};

const RECORD: &str = include_str!("../../../../testdata/lambda-sns-agent-message.json");

#[test]
fn lambda_record_becomes_a_chat_item() {
    let event: serde_json::Value = serde_json::from_str(RECORD).unwrap();
    let msg = SnsMessage::from_lambda_sns(&event["Records"][0]["Sns"]).unwrap();
    assert_eq!(msg.message_type, SnsMessageType::Notification);
    assert_eq!(msg.subject, None);
    assert_eq!(
        msg.signing_cert_url,
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
    );
    assert!(msg.unsubscribe_url.is_some());

    let item = chat_item_from_notification(&msg).unwrap();
    assert_eq!(
        item.body,
        ChatItemBody::Message {
            content_type: "text/markdown".into(),
            content: "Connect con pago".into(),
        }
    );
    assert_eq!(item.role, Some(ParticipantRole::Agent));
    assert_eq!(item.visibility, Some(Visibility::All));
    assert_eq!(
        item.initial_contact_id.as_str(),
        "da81f813-70b0-496e-91ed-70f48771c522"
    );
    assert_eq!(item.id.as_str(), "019d4b22-031a-7f5a-985f-812613771c9f");
    assert_eq!(item.display_name.as_deref(), Some("Enrique"));
    // 2026-04-01T22:20:13.466Z
    assert_eq!(item.absolute_time_ms, 1_775_082_013_466);
    assert!(item.is_for_customer());

    // The whole event parses the same way.
    let all = SnsMessage::from_lambda_event(RECORD.as_bytes()).unwrap();
    assert_eq!(all, vec![msg]);
}
