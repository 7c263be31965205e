//! Message receipts through the official participant client: `MESSAGEMETADATA` items in the
//! transcript and on the SNS stream, and refused (409 `ConflictException`) while a supervisor is
//! barged in.

use aws_sdk_connectparticipant::Client;
use aws_sdk_connectparticipant::error::ProvideErrorMetadata;
use aws_sdk_connectparticipant::operation::send_event::SendEventError;
use aws_sdk_connectparticipant::types::{ConnectionType, Item, ScanDirection, SortKey};
use reqwest::Method;
use serde_json::{Value, json};
use xdm_sandbox::{ItemType, ParticipantRole, SandboxError, SandboxHandle, content_types};

use crate::connect_api::sdk;
use crate::sns_stream::{start_streaming, subscribed, wait_notifications};
use crate::support::{http, sandbox, start_chat};

/// The customer's connection token, from CreateParticipantConnection through the SDK.
async fn connect_with_sdk(client: &Client, participant_token: &str) -> String {
    let connection = client
        .create_participant_connection()
        .participant_token(participant_token)
        .r#type(ConnectionType::ConnectionCredentials)
        .connect_participant(true)
        .send()
        .await
        .unwrap();
    connection
        .connection_credentials()
        .and_then(|c| c.connection_token())
        .unwrap()
        .to_owned()
}

/// A chat whose customer is connected through the SDK and whose agent ("Enrique") sent one
/// message: (ContactId, ConnectionToken, the agent message's Id).
async fn chat_with_agent_message(sb: &SandboxHandle, client: &Client) -> (String, String, String) {
    let (contact_id, participant_token) = start_chat(sb, "Hola").await;
    let token = connect_with_sdk(client, &participant_token).await;
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    let message = sb
        .agent_send(&contact_id, "How can I help?", "text/markdown")
        .unwrap();
    (contact_id, token, message.item.id)
}

/// SendEvent of a `content_type` receipt of `message_id`.
async fn send_receipt(
    client: &Client,
    token: &str,
    content_type: &str,
    message_id: &str,
) -> Result<String, aws_sdk_connectparticipant::error::SdkError<SendEventError>> {
    client
        .send_event()
        .connection_token(token)
        .content_type(content_type)
        .content(json!({ "messageId": message_id }).to_string())
        .send()
        .await
        .map(|out| out.id().unwrap_or_default().to_owned())
}

/// A control call: (status, JSON answer).
async fn control(sb: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let resp = http()
        .request(Method::POST, format!("{}/_sandbox{path}", sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// The items of the customer's whole transcript, oldest first.
async fn transcript(client: &Client, token: &str) -> Vec<Item> {
    client
        .get_transcript()
        .connection_token(token)
        .scan_direction(ScanDirection::Forward)
        .sort_order(SortKey::Ascending)
        .max_results(100)
        .send()
        .await
        .unwrap()
        .transcript()
        .to_vec()
}

#[tokio::test]
async fn receipts_are_refused_while_a_supervisor_is_barged_in_and_typing_is_not() {
    let sb = sandbox().await;
    let client = sdk(&sb);
    let (contact_id, token, message_id) = chat_with_agent_message(&sb, &client).await;

    let (status, joined) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/barge"),
        json!({"name": "Sofía"}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["ContentType"], content_types::PARTICIPANT_JOINED);
    assert_eq!(joined["ParticipantRole"], "SUPERVISOR");
    assert_eq!(joined["DisplayName"], "Sofía");
    let supervisor = sb.contact(&contact_id).unwrap().supervisor.unwrap();
    assert!(supervisor.present);
    assert_eq!(joined["ParticipantId"], supervisor.participant_id.as_str());
    let before = sb.contact(&contact_id).unwrap().transcript.len();

    // Three active participants: both receipts are a conflict, and nothing is added.
    for receipt in [
        content_types::MESSAGE_DELIVERED,
        content_types::MESSAGE_READ,
    ] {
        let err = send_receipt(&client, &token, receipt, &message_id)
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(409));
        assert_eq!(err.code(), Some("ConflictException"), "{receipt}");
        assert!(
            matches!(
                err.into_service_error(),
                SendEventError::ConflictException(_)
            ),
            "{receipt}"
        );
    }
    assert_eq!(sb.contact(&contact_id).unwrap().transcript.len(), before);
    // The agent's receipt too (its CCP calls the same SendEvent).
    assert!(matches!(
        sb.agent_read(&contact_id, &message_id),
        Err(SandboxError::ReceiptsRefused(_))
    ));
    let (status, _) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/read"),
        json!({"message_id": message_id}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(sb.contact(&contact_id).unwrap().transcript.len(), before);

    // Typing still goes through.
    let typing = client
        .send_event()
        .connection_token(&token)
        .content_type(content_types::TYPING)
        .send()
        .await
        .unwrap();
    let view = sb.contact(&contact_id).unwrap();
    let last = view.transcript.last().unwrap();
    assert_eq!(typing.id(), Some(last.item.id.as_str()));
    assert_eq!(last.item.content_type, content_types::TYPING);

    // The supervisor leaves: receipts are taken again.
    let (status, left) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/barge/leave"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["ContentType"], content_types::PARTICIPANT_LEFT);
    assert_eq!(left["ParticipantRole"], "SUPERVISOR");
    assert!(!sb.contact(&contact_id).unwrap().supervisor.unwrap().present);
    let read = send_receipt(&client, &token, content_types::MESSAGE_READ, &message_id)
        .await
        .unwrap();
    let view = sb.contact(&contact_id).unwrap();
    let last = view.transcript.last().unwrap();
    assert_eq!(last.item.id, read);
    assert_eq!(last.item.item_type, ItemType::MessageMetadata);
    sb.agent_read(&contact_id, &message_id).unwrap();
}

#[tokio::test]
async fn barging_in_needs_a_live_chat_with_its_agent() {
    let sb = sandbox().await;
    let (contact_id, participant_token) = start_chat(&sb, "Hola").await;
    crate::support::connect_customer(&sb, &participant_token).await;

    // No agent yet: refused like the other agent-side controls (409).
    assert!(matches!(
        sb.supervisor_barge(&contact_id, "Sofía"),
        Err(SandboxError::NoAgent(_))
    ));
    let (status, body) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/barge"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(matches!(
        sb.supervisor_leave(&contact_id),
        Err(SandboxError::NoSupervisor(_))
    ));
    let (status, _) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/barge/leave"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);

    sb.agent_accept(&contact_id, "Enrique").unwrap();
    // The body is optional: the supervisor is then "Supervisor".
    let resp = http()
        .post(format!(
            "{}/_sandbox/connect/contacts/{contact_id}/barge",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let joined: Value = resp.json().await.unwrap();
    assert_eq!(joined["DisplayName"], "Supervisor");
    assert!(matches!(
        sb.supervisor_barge(&contact_id, "Another"),
        Err(SandboxError::SupervisorAlreadyJoined(_))
    ));
    let view: Value = http()
        .get(format!(
            "{}/_sandbox/connect/contacts/{contact_id}",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["supervisor"]["display_name"], "Supervisor");
    assert_eq!(view["supervisor"]["present"], true);

    // A transfer: the supervisor leaves with the agent; the new contact has no agent yet.
    let after = sb.transfer(&contact_id).unwrap();
    let left: Vec<(Option<ParticipantRole>, &str)> = after.transcript[after.transcript.len() - 2..]
        .iter()
        .map(|i| (i.item.participant_role, i.item.content_type.as_str()))
        .collect();
    assert_eq!(
        left,
        vec![
            (
                Some(ParticipantRole::Supervisor),
                content_types::PARTICIPANT_LEFT
            ),
            (
                Some(ParticipantRole::Agent),
                content_types::PARTICIPANT_LEFT
            ),
        ]
    );
    assert!(!after.supervisor.unwrap().present);
    assert!(matches!(
        sb.supervisor_barge(&after.contact_id, "Sofía"),
        Err(SandboxError::NoAgent(_))
    ));
    sb.agent_accept(&after.contact_id, "Second agent").unwrap();
    sb.supervisor_barge(&after.contact_id, "Sofía").unwrap();

    // The chat ends: the supervisor is gone, and nobody barges into an ended chat.
    sb.end_chat(&contact_id).unwrap();
    assert!(!sb.contact(&contact_id).unwrap().supervisor.unwrap().present);
    assert!(matches!(
        sb.supervisor_barge(&contact_id, "Sofía"),
        Err(SandboxError::ContactEnded(_))
    ));
    let (status, _) = control(
        &sb,
        &format!("/connect/contacts/{contact_id}/barge"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_receipt_is_a_message_metadata_item_of_the_transcript() {
    let sb = sandbox().await;
    let client = sdk(&sb);
    let (contact_id, token, message_id) = chat_with_agent_message(&sb, &client).await;
    let customer = sb.contact(&contact_id).unwrap().customer_participant_id;

    let delivered = send_receipt(
        &client,
        &token,
        content_types::MESSAGE_DELIVERED,
        &message_id,
    )
    .await
    .unwrap();
    let read = send_receipt(&client, &token, content_types::MESSAGE_READ, &message_id)
        .await
        .unwrap();
    client
        .send_event()
        .connection_token(&token)
        .content_type(content_types::TYPING)
        .send()
        .await
        .unwrap();

    // The official client parses the item type (a value its model does not list) and the
    // metadata.
    let items = transcript(&client, &token).await;
    let receipts: Vec<&Item> = items
        .iter()
        .filter(|i| i.r#type().map(|t| t.as_str()) == Some("MESSAGEMETADATA"))
        .collect();
    let ids: Vec<Option<&str>> = receipts.iter().map(|i| i.id()).collect();
    assert_eq!(ids, vec![Some(delivered.as_str()), Some(read.as_str())]);
    for (item, read) in receipts.iter().zip([false, true]) {
        let metadata = item.message_metadata().expect("MessageMetadata");
        assert_eq!(metadata.message_id(), Some(message_id.as_str()));
        let [receipt] = metadata.receipts() else {
            panic!("one receipt: {metadata:?}");
        };
        let (stamped, unset) = if read {
            (receipt.read_timestamp(), receipt.delivered_timestamp())
        } else {
            (receipt.delivered_timestamp(), receipt.read_timestamp())
        };
        assert_eq!(stamped, item.absolute_time(), "{item:?}");
        assert_eq!(unset, None, "{item:?}");
        assert_eq!(
            receipt.recipient_participant_id(),
            Some(customer.as_str()),
            "the customer received the message and sent the receipt"
        );
        assert_eq!(item.participant_id(), Some(customer.as_str()));
    }

    // In the sandbox's view: MESSAGEMETADATA receipts, typing still an EVENT.
    let view = sb.contact(&contact_id).unwrap();
    let kinds: Vec<(ItemType, &str)> = view
        .transcript
        .iter()
        .filter(|i| i.item.participant_role == Some(ParticipantRole::Customer))
        .skip(2) // the initial message and the customer's participant.joined
        .map(|i| (i.item.item_type, i.item.content_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ItemType::MessageMetadata, content_types::MESSAGE_DELIVERED),
            (ItemType::MessageMetadata, content_types::MESSAGE_READ),
            (ItemType::Event, content_types::TYPING),
        ]
    );
    let agent_read = sb.agent_read(&contact_id, &message_id).unwrap();
    let metadata = agent_read.item.message_metadata.unwrap();
    assert_eq!(metadata.message_id, message_id);
    assert_eq!(
        metadata.receipts[0].read_timestamp.as_deref(),
        Some(agent_read.item.absolute_time.as_str())
    );
    assert_eq!(
        metadata.receipts[0].recipient_participant_id,
        view.agent.unwrap().participant_id
    );
}

#[tokio::test]
async fn a_streamed_receipt_carries_the_same_message_metadata() {
    let sb = sandbox().await;
    let rx = subscribed(&sb).await;
    let client = sdk(&sb);
    let (contact_id, participant_token) = start_chat(&sb, "Hola").await;
    start_streaming(&sb, &contact_id).await;
    let token = connect_with_sdk(&client, &participant_token).await;
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    let message_id = sb
        .agent_send(&contact_id, "How can I help?", "text/markdown")
        .unwrap()
        .item
        .id;
    sb.supervisor_barge(&contact_id, "Sofía").unwrap();
    sb.supervisor_leave(&contact_id).unwrap();
    let read = send_receipt(&client, &token, content_types::MESSAGE_READ, &message_id)
        .await
        .unwrap();

    // Initial message, customer joined, agent joined, agent message, supervisor joined and left,
    // the receipt.
    let notifications = wait_notifications(&sb, &rx, 7).await;
    let messages: Vec<Value> = notifications
        .iter()
        .map(|n| serde_json::from_str(n["Message"].as_str().unwrap()).unwrap())
        .collect();
    let supervisor: Vec<(&Value, &Value)> = notifications
        .iter()
        .zip(&messages)
        .filter(|(_, m)| m["ParticipantRole"] == "SUPERVISOR")
        .collect();
    let joined_left: Vec<&Value> = supervisor.iter().map(|(_, m)| &m["ContentType"]).collect();
    assert_eq!(
        joined_left,
        vec![
            content_types::PARTICIPANT_JOINED,
            content_types::PARTICIPANT_LEFT
        ]
    );
    assert_eq!(
        supervisor[0].0["MessageAttributes"]["ParticipantRole"]["Value"],
        "SUPERVISOR"
    );

    let (notification, message) = notifications
        .iter()
        .zip(&messages)
        .find(|(_, m)| m["Id"] == read.as_str())
        .expect("the receipt was streamed");
    assert_eq!(message["Type"], "MESSAGEMETADATA");
    assert_eq!(
        notification["MessageAttributes"]["Type"]["Value"],
        "MESSAGEMETADATA"
    );
    assert_eq!(
        notification["MessageAttributes"]["ParticipantRole"]["Value"],
        "CUSTOMER"
    );
    let customer = sb.contact(&contact_id).unwrap().customer_participant_id;
    assert_eq!(
        message["MessageMetadata"],
        json!({"MessageId": message_id, "Receipts": [{
            "ReadTimestamp": message["AbsoluteTime"], "RecipientParticipantId": customer}]})
    );
    // Exactly the transcript's item.
    let view = sb.contact(&contact_id).unwrap();
    let item = view.transcript.iter().find(|i| i.item.id == read).unwrap();
    assert_eq!(*message, serde_json::to_value(&item.item).unwrap());
}
