//! The participant API's send calls (SendMessage, SendEvent: reqwest with the bearer token, no
//! AWS SDK — `xdm_amazon_connect::participant_send`) against the sandbox's participant service,
//! over real sockets: what reaches the transcript, ClientToken deduplication, and the
//! `ConnectError` each failure becomes (the one classification the other Connect calls use).

use std::time::Duration;

use xdm_amazon_connect::{ConnectClient, ConnectConfig};
use xdm_core::ids::ConnectionToken;
use xdm_core::ports::{ChatMessage, ConnectApi, ConnectError, MessageContentType, StartChat};
use xdm_sandbox::{
    DropMode, Fault, FaultOp, FaultProfile, ItemType, ParticipantRole, Sandbox, SandboxConfig,
    SandboxHandle,
};

const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
const READ: &str = "application/vnd.amazonaws.connect.event.message.read";

/// The bridge's Connect client pointed at `sandbox` (as `serve` builds it from the settings),
/// with `request_timeout` for each call.
fn connect_client(sandbox: &SandboxHandle, request_timeout: Duration) -> ConnectClient {
    let sb = sandbox.config();
    let mut config = ConnectConfig::new(
        sb.connect.instance_id.clone(),
        sb.connect.contact_flow_id.clone(),
        sandbox.sns_topic_arn(),
    );
    config.connect_endpoint = Some(sandbox.base_url());
    config.participant_endpoint = Some(sandbox.base_url());
    config.request_timeout = request_timeout;
    let sdk = xdm_app::sandbox_link::sdk_config(sandbox);
    ConnectClient::with_env(config, &sdk, |_| None).unwrap()
}

/// A chat started and the customer connected: its ContactId and connection token.
async fn open_chat(client: &ConnectClient, token: &str) -> (String, ConnectionToken) {
    let started = client
        .start_chat(&StartChat {
            contact_flow_id: None,
            display_name: "Jordan Brinks".into(),
            attributes: Default::default(),
            initial_message: ChatMessage::plain("hello"),
            client_token: format!("start-{token}"),
            customer_id: None,
            continues: None,
        })
        .await
        .unwrap();
    let connection = client
        .connect_participant(&started.participant_token)
        .await
        .unwrap();
    (started.contact_id.as_str().to_owned(), connection.token)
}

async fn sandbox() -> SandboxHandle {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// The customer's MESSAGE items of a chat: (content type, content).
fn customer_messages(sandbox: &SandboxHandle, contact_id: &str) -> Vec<(String, String)> {
    sandbox
        .contact(contact_id)
        .unwrap()
        .transcript
        .into_iter()
        .filter(|i| {
            i.item.item_type == ItemType::Message
                && i.item.participant_role == Some(ParticipantRole::Customer)
        })
        .map(|i| (i.item.content_type, i.item.content.unwrap_or_default()))
        .collect()
}

/// The customer's EVENT items of a chat of `content_type`: their ids and contents.
fn customer_events(
    sandbox: &SandboxHandle,
    contact_id: &str,
    content_type: &str,
) -> Vec<(String, Option<String>)> {
    sandbox
        .contact(contact_id)
        .unwrap()
        .transcript
        .into_iter()
        .filter(|i| {
            // Receipts are MESSAGEMETADATA items, typing an EVENT.
            matches!(
                i.item.item_type,
                ItemType::Event | ItemType::MessageMetadata
            ) && i.item.content_type == content_type
                && i.item.participant_role == Some(ParticipantRole::Customer)
        })
        .map(|i| (i.item.id, i.item.content))
        .collect()
}

#[tokio::test]
async fn messages_and_events_reach_the_transcript_once_per_client_token() {
    let sandbox = sandbox().await;
    let client = connect_client(&sandbox, ConnectConfig::DEFAULT_REQUEST_TIMEOUT);
    let (contact_id, connection) = open_chat(&client, "a").await;

    let markdown = ChatMessage {
        content_type: MessageContentType::Markdown,
        content: "**where** is my order?".into(),
    };
    let sent = client
        .participant_sends()
        .send_message(
            &connection,
            "text/markdown",
            &markdown.content,
            "dm-1-part-0",
        )
        .await
        .unwrap();
    let id = sent.id.clone().expect("Connect answers the item's Id");
    assert!(sent.absolute_time_ms.is_some_and(|ms| ms > 0), "{sent:?}");
    // The port's send_message, then a retry of the first with the same ClientToken (an answer
    // lost on the way): the same Id, nothing added.
    client
        .send_message(&connection, &ChatMessage::plain("second"), "dm-2-part-0")
        .await
        .unwrap();
    let replays = sandbox.stats().connect.client_token_replays;
    let again = client
        .participant_sends()
        .send_message(
            &connection,
            "text/markdown",
            &markdown.content,
            "dm-1-part-0",
        )
        .await
        .unwrap();
    assert_eq!(again.id.as_deref(), Some(id.as_str()));
    assert_eq!(sandbox.stats().connect.client_token_replays, replays + 1);
    assert_eq!(
        customer_messages(&sandbox, &contact_id),
        vec![
            ("text/plain".to_owned(), "hello".to_owned()),
            (
                "text/markdown".to_owned(),
                "**where** is my order?".to_owned()
            ),
            ("text/plain".to_owned(), "second".to_owned()),
        ]
    );
    let transcript = sandbox.contact(&contact_id).unwrap().transcript;
    assert!(transcript.iter().any(|i| i.item.id == id));

    // SendEvent: typing (no content), a read receipt (content), each once per ClientToken.
    let typing = client
        .send_event(&connection, TYPING, None, "typing-1")
        .await
        .unwrap()
        .expect("an Id");
    let typing_again = client
        .send_event(&connection, TYPING, None, "typing-1")
        .await
        .unwrap();
    assert_eq!(typing_again.as_deref(), Some(typing.as_str()));
    assert_eq!(
        customer_events(&sandbox, &contact_id, TYPING),
        vec![(typing, None)]
    );
    let receipt = format!(r#"{{"messageId":"{id}"}}"#);
    let read = client
        .send_event(&connection, READ, Some(&receipt), "read-1")
        .await
        .unwrap()
        .expect("an Id");
    assert_eq!(
        customer_events(&sandbox, &contact_id, READ),
        vec![(read, Some(receipt))]
    );
    sandbox.shutdown();
}

#[tokio::test]
async fn an_ended_chat_is_chat_ended() {
    let sandbox = sandbox().await;
    let client = connect_client(&sandbox, ConnectConfig::DEFAULT_REQUEST_TIMEOUT);
    let (contact_id, connection) = open_chat(&client, "b").await;
    sandbox.end_chat(&contact_id).unwrap();

    let err = client
        .send_message(&connection, &ChatMessage::plain("anyone there?"), "late-1")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");
    assert!(
        err.to_string().contains("AccessDeniedException (HTTP 403)"),
        "{err}"
    );
    assert!(!err.to_string().contains(connection.expose()), "{err}");
    let err = client
        .send_event(&connection, TYPING, None, "late-2")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");
    // An unknown connection token is the same answer from Connect.
    let err = client
        .send_message(
            &ConnectionToken::new("not-a-connection"),
            &ChatMessage::plain("x"),
            "late-3",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");
    assert_eq!(
        customer_messages(&sandbox, &contact_id),
        vec![("text/plain".to_owned(), "hello".to_owned())]
    );
    sandbox.shutdown();
}

#[tokio::test]
async fn failures_are_classified_as_for_every_connect_call() {
    let sandbox = sandbox().await;
    let client = connect_client(&sandbox, Duration::from_millis(500));
    let (contact_id, connection) = open_chat(&client, "c").await;
    let send = |token: &'static str| {
        let client = client.clone();
        let connection = connection.clone();
        async move {
            client
                .send_message(&connection, &ChatMessage::plain(token), token)
                .await
        }
    };

    // Throttled by a fault profile (429 ThrottlingException on every call), on both operations.
    for op in [FaultOp::SendMessage, FaultOp::SendEvent] {
        sandbox
            .set_fault_profile(op, FaultProfile::default().with_throttle_rate(1.0))
            .unwrap();
    }
    let err = send("throttled").await.unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");
    assert!(err.is_retryable());
    let err = client
        .send_event(&connection, TYPING, None, "typing-throttled")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");
    sandbox.clear_fault_profiles();

    // The participant service's transient error (500 InternalServerException), once.
    sandbox
        .set_fault_profile(FaultOp::SendMessage, FaultProfile::errors(1.0))
        .unwrap();
    let err = send("failed").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    sandbox.clear_fault_profiles();

    // A quota (402 ServiceQuotaExceededException), a conflict (409 on SendEvent).
    sandbox.fail_next(
        FaultOp::SendMessage,
        1,
        Fault::error(402, "ServiceQuotaExceededException"),
    );
    let err = send("quota").await.unwrap_err();
    assert!(matches!(err, ConnectError::QuotaExceeded(_)), "{err:?}");
    sandbox.fail_next(
        FaultOp::SendEvent,
        1,
        Fault::error(409, "ConflictException"),
    );
    let err = client
        .send_event(
            &connection,
            READ,
            Some(r#"{"messageId":"m"}"#),
            "read-conflict",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");

    // Validation: longer than 1,024 characters; an event type Connect does not take.
    let long = "x".repeat(1025);
    let err = client
        .send_message(&connection, &ChatMessage::plain(long), "too-long")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("ValidationException"), "{err}");
    let err = client
        .send_event(
            &connection,
            "application/vnd.example.nope",
            None,
            "bad-event",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");

    // The connection closed without an answer.
    sandbox
        .set_fault_profile(
            FaultOp::SendMessage,
            FaultProfile::drops(1.0, DropMode::Before),
        )
        .unwrap();
    let err = send("dropped").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    sandbox.clear_fault_profiles();

    // Nothing of the above reached the chat; the next message does.
    send("after").await.unwrap();
    assert_eq!(
        customer_messages(&sandbox, &contact_id)
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>(),
        vec!["hello", "after"]
    );

    // An answer slower than the configured request timeout (500 ms).
    sandbox
        .set_fault_profile(FaultOp::SendMessage, FaultProfile::latency(2_000, 0))
        .unwrap();
    let err = send("slow").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    sandbox.shutdown();
}
