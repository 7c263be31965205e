//! The chat's life: transfers, agents leaving, chats ending, chats found ended.

use xdm_core::ids::InitialContactId;
use xdm_core::ports::Store;
use xdm_core::session::SessionStatus;
use xdm_sandbox::{Fault, FaultOp};

use crate::helpers::*;

#[tokio::test]
async fn replies_survive_a_transfer_and_a_disconnect_flow_and_chat_ended_closes_the_session() {
    let app = spawn_app().await;
    let chat = app.open_chat("I need help with billing").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    app.sandbox
        .agent_send(
            &chat.contact_id,
            "Transferring you to billing.",
            "text/plain",
        )
        .unwrap();
    app.wait_dms(1).await;

    // Transfer: a new ContactId, the same InitialContactId.
    let after = app.sandbox.transfer(&chat.contact_id).unwrap();
    assert_ne!(after.contact_id, after.initial_contact_id);
    app.sandbox.agent_accept(&after.contact_id, "Bea").unwrap();
    app.sandbox
        .agent_send(
            &after.contact_id,
            "Hi, Bea from billing here.",
            "text/markdown",
        )
        .unwrap();
    assert_eq!(app.wait_dms(2).await[1], "Hi, Bea from billing here.");

    // The agent leaves; the disconnect flow still reaches the customer.
    app.sandbox.agent_leave(&after.contact_id).unwrap();
    app.sandbox
        .system_message(&after.contact_id, "Please rate us from 1 to 5.")
        .unwrap();
    assert_eq!(app.wait_dms(3).await[2], "Please rate us from 1 to 5.");
    let id = InitialContactId::parse(chat.initial_contact_id.clone()).unwrap();
    let session = app
        .bridge
        .store()
        .session_by_initial_contact(&id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        session.status,
        SessionStatus::Ended,
        "participant.left keeps the session"
    );

    // The customer answers the survey in the same chat.
    app.dm("5").await;
    app.wait_contact("the survey answer", |c, m| {
        c.initial_contact_id == chat.initial_contact_id && m.contains(&"5".to_owned())
    })
    .await;

    // chat.ended closes it; the next DM opens a new chat.
    app.sandbox.end_chat(&after.contact_id).unwrap();
    let bridge = app.bridge.clone();
    let mut ended = false;
    for _ in 0..300 {
        let s = bridge
            .store()
            .session_by_initial_contact(&id)
            .await
            .unwrap()
            .unwrap();
        if s.status == SessionStatus::Ended {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ended, "chat.ended marks the session ended");
    app.dm("one more thing").await;
    let second = app
        .wait_contact("a new chat", |c, m| {
            c.initial_contact_id != chat.initial_contact_id && !m.is_empty()
        })
        .await;
    app.settle().await;
    let second = app.sandbox.contact(&second.contact_id).unwrap();
    assert_eq!(customer_messages(&second), vec!["one more thing"]);
    assert_eq!(app.contacts().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_send_into_an_ended_chat_opens_a_new_chat_carrying_the_message() {
    let app = spawn_app().await;
    let chat = app.open_chat("first").await;
    // Connect says the chat is over (e.g. it expired) without the bridge having heard chat.ended.
    app.sandbox.fail_next(
        FaultOp::SendMessage,
        1,
        Fault::error(403, "AccessDeniedException")
            .with_message("Access denied: the chat has already been terminated"),
    );
    app.dm("second").await;
    let second = app
        .wait_contact("the new chat", |c, m| {
            c.initial_contact_id != chat.initial_contact_id && !m.is_empty()
        })
        .await;
    app.settle().await;
    let second = app.sandbox.contact(&second.contact_id).unwrap();
    assert_eq!(
        customer_messages(&second),
        vec!["second"],
        "the message opened the new chat"
    );
    assert_eq!(
        customer_messages(&app.contacts()[0]),
        vec!["first"],
        "nothing went to the old chat"
    );
    let old = app
        .bridge
        .store()
        .session_by_initial_contact(
            &InitialContactId::parse(chat.initial_contact_id.clone()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, SessionStatus::Ended);
    assert!(is_open(&second));
    app.stop().await;
}
