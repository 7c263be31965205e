//! The Connect control plane over reqwest and the participant service through the official AWS SDK.

use aws_sdk_connectparticipant::Client;
use aws_sdk_connectparticipant::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_connectparticipant::error::ProvideErrorMetadata;
use aws_sdk_connectparticipant::types::{ConnectionType, ScanDirection, SortKey};
use reqwest::Method;
use serde_json::json;
use xdm_sandbox::{ContactStatus, Fault, FaultOp, ParticipantRole, SandboxHandle, content_types};

use crate::support::{
    connect_call, connect_customer, http, participant_call, sandbox, start_chat, start_chat_body,
};

/// The official participant client, pointed at the sandbox.
pub(crate) fn sdk(sb: &SandboxHandle) -> Client {
    let config = aws_sdk_connectparticipant::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(sb.config().connect.region.clone()))
        .endpoint_url(sb.base_url())
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn start_chat_contact_is_idempotent_by_client_token() {
    let sb = sandbox().await;
    let mut body = start_chat_body(&sb, "Elizabeth Fuentes", "Hola2");
    body["ClientToken"] = json!("x-dm-2039459599745679612");
    let (s1, h1, first) = connect_call(&sb, Method::PUT, "/contact/chat", body.clone()).await;
    let (s2, _, second) = connect_call(&sb, Method::PUT, "/contact/chat", body).await;
    assert_eq!((s1, s2), (200, 200), "{first} {second}");
    assert!(h1.contains_key("x-amzn-requestid"));
    assert_eq!(first, second);
    assert_eq!(sb.contacts().len(), 1);
    let contact = sb.contact(first["ContactId"].as_str().unwrap()).unwrap();
    assert_eq!(contact.initial_contact_id, contact.contact_id);
    assert_eq!(
        contact.client_token.as_deref(),
        Some("x-dm-2039459599745679612")
    );
    assert_eq!(contact.attributes["Channel"], "X");
    assert_eq!(contact.status, ContactStatus::Started);
    let initial = &contact.transcript[0].item;
    assert_eq!(initial.content.as_deref(), Some("Hola2"));
    assert_eq!(initial.participant_role, Some(ParticipantRole::Customer));
    assert_eq!(
        initial.participant_id.as_deref(),
        first["ParticipantId"].as_str()
    );
}

#[tokio::test]
async fn start_chat_contact_validates_like_connect() {
    let sb = sandbox().await;
    let max = "é".repeat(1024);
    let (status, _, _) = connect_call(
        &sb,
        Method::PUT,
        "/contact/chat",
        start_chat_body(&sb, "A", &max),
    )
    .await;
    assert_eq!(status, 200, "1,024 characters (2,048 bytes) fit");
    let (status, headers, body) = connect_call(
        &sb,
        Method::PUT,
        "/contact/chat",
        start_chat_body(&sb, "A", &"a".repeat(1025)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "InvalidParameterException");
    assert_eq!(body["__type"], "InvalidParameterException");

    let mut wrong_instance = start_chat_body(&sb, "A", "hi");
    wrong_instance["InstanceId"] = json!("00000000-0000-0000-0000-000000000000");
    let (status, headers, _) =
        connect_call(&sb, Method::PUT, "/contact/chat", wrong_instance).await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (404, "ResourceNotFoundException")
    );

    let mut no_plain = start_chat_body(&sb, "A", "hi");
    no_plain["SupportedMessagingContentTypes"] = json!(["text/markdown"]);
    assert_eq!(
        connect_call(&sb, Method::PUT, "/contact/chat", no_plain)
            .await
            .0,
        400
    );
    let mut bad_key = start_chat_body(&sb, "A", "hi");
    bad_key["Attributes"] = json!({"has space": "v"});
    assert_eq!(
        connect_call(&sb, Method::PUT, "/contact/chat", bad_key)
            .await
            .0,
        400
    );
    let mut short = start_chat_body(&sb, "A", "hi");
    short["ChatDurationInMinutes"] = json!(59);
    assert_eq!(
        connect_call(&sb, Method::PUT, "/contact/chat", short)
            .await
            .0,
        400
    );

    // Malformed JSON and missing SigV4.
    let resp = http()
        .put(format!("{}/contact/chat", sb.base_url()))
        .header(
            "authorization",
            crate::support::sigv4("us-east-1")[0].1.clone(),
        )
        .header("x-amz-date", "20261125T120000Z")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "InvalidRequestException"
    );
    let resp = http()
        .put(format!("{}/contact/chat", sb.base_url()))
        .json(&start_chat_body(&sb, "A", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(sb.contacts().len(), 1);
}

/// StartChatContact → (status, `x-amzn-ErrorType`, body).
async fn start(sb: &SandboxHandle, body: serde_json::Value) -> (u16, String, serde_json::Value) {
    let (status, headers, body) = connect_call(sb, Method::PUT, "/contact/chat", body).await;
    let code = headers
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, code, body)
}

#[tokio::test]
async fn start_chat_contact_keeps_the_customer_id() {
    let sb = sandbox().await;
    let profile_id = "0123456789abcdef0123456789abcdef";
    let mut body = start_chat_body(&sb, "Elizabeth Fuentes", "Hola");
    body["CustomerId"] = json!(profile_id);
    let (status, _, started) = start(&sb, body).await;
    assert_eq!(status, 200, "{started}");
    let contact_id = started["ContactId"].as_str().unwrap();
    assert_eq!(
        sb.contact(contact_id).unwrap().customer_id.as_deref(),
        Some(profile_id)
    );
    let view: serde_json::Value = http()
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
    assert_eq!(view["customer_id"], profile_id);
    let (_, _, plain) = start(&sb, start_chat_body(&sb, "A", "hi")).await;
    assert_eq!(
        sb.contact(plain["ContactId"].as_str().unwrap())
            .unwrap()
            .customer_id,
        None
    );

    // CustomerId: 1–128 characters.
    let mut longest = start_chat_body(&sb, "A", "hi");
    longest["CustomerId"] = json!("c".repeat(128));
    assert_eq!(start(&sb, longest).await.0, 200);
    for bad in [String::new(), "c".repeat(129)] {
        let mut body = start_chat_body(&sb, "A", "hi");
        body["CustomerId"] = json!(bad);
        let (status, code, _) = start(&sb, body).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidParameterException"),
            "{} characters",
            bad.len()
        );
    }
    assert_eq!(sb.contacts().len(), 3);
}

#[tokio::test]
async fn persistent_chat_rules() {
    let sb = sandbox().await;
    let (source, _) = start_chat(&sb, "first chat").await;
    let persistent = |source: &str, token: &str| {
        let mut body = start_chat_body(&sb, "Elizabeth Fuentes", "back again");
        body["PersistentChat"] =
            json!({"RehydrationType": "ENTIRE_PAST_SESSION", "SourceContactId": source});
        body["ClientToken"] = json!(token);
        body
    };

    // The source must have ended.
    let (status, code, _) = start(&sb, persistent(&source, "t-0")).await;
    assert_eq!((status, code.as_str()), (400, "InvalidRequestException"));
    sb.end_chat(&source).unwrap();
    // It must exist; RehydrationType is required and one of two.
    let (status, code, _) = start(&sb, persistent("no-such-contact", "t-1")).await;
    assert_eq!((status, code.as_str()), (404, "ResourceNotFoundException"));
    for rehydration in [json!(null), json!("EVERYTHING")] {
        let mut body = persistent(&source, "t-2");
        body["PersistentChat"]["RehydrationType"] = rehydration;
        let (status, code, _) = start(&sb, body).await;
        assert_eq!((status, code.as_str()), (400, "InvalidParameterException"));
    }
    // Not together with RelatedContactId (documented: "You cannot provide data for both").
    let mut related = persistent(&source, "t-3");
    related["RelatedContactId"] = json!(source);
    let (status, code, body) = start(&sb, related).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidRequestException"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("RelatedContactId")
    );
    // RelatedContactId alone is fine.
    let mut related_only = start_chat_body(&sb, "A", "hi");
    related_only["RelatedContactId"] = json!(source);
    assert_eq!(start(&sb, related_only).await.0, 200);

    let (status, _, first) = start(&sb, persistent(&source, "t-4")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["ContinuedFromContactId"], source.as_str());
    let continued = first["ContactId"].as_str().unwrap();
    assert_eq!(
        sb.contact(continued)
            .unwrap()
            .continued_from_contact_id
            .as_deref(),
        Some(source.as_str())
    );

    // The same ClientToken answers the first response again…
    let (status, _, replay) = start(&sb, persistent(&source, "t-4")).await;
    assert_eq!((status, &replay), (200, &first));
    // …another one cannot continue the same source a second time (either rehydration type).
    for (token, rehydration) in [("t-5", "ENTIRE_PAST_SESSION"), ("t-6", "FROM_SEGMENT")] {
        let mut body = persistent(&source, token);
        body["PersistentChat"]["RehydrationType"] = json!(rehydration);
        let (status, code, body) = start(&sb, body).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidRequestException"),
            "{body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&source) && message.contains("only once"),
            "{message}"
        );
    }
    // The continued chat, once ended, can itself be continued.
    sb.end_chat(continued).unwrap();
    let (status, _, next) = start(&sb, persistent(continued, "t-7")).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["ContinuedFromContactId"], continued);
    assert_eq!(sb.contacts().len(), 4);
}

#[tokio::test]
async fn participant_service_through_the_aws_sdk() {
    let sb = sandbox().await;
    let (contact_id, participant_token) = start_chat(&sb, "Hola").await;
    let client = sdk(&sb);

    let connection = client
        .create_participant_connection()
        .participant_token(&participant_token)
        .r#type(ConnectionType::ConnectionCredentials)
        .connect_participant(true)
        .send()
        .await
        .unwrap();
    let credentials = connection.connection_credentials().unwrap();
    let token = credentials.connection_token().unwrap().to_owned();
    assert!(credentials.expiry().unwrap().ends_with('Z'));
    assert!(connection.websocket().is_none());
    let contact = sb.contact(&contact_id).unwrap();
    assert!(contact.customer_connected);
    assert_eq!(contact.status, ContactStatus::Connected);

    let sent = client
        .send_message()
        .connection_token(&token)
        .content_type("text/plain")
        .content("é".repeat(1024))
        .client_token("retry-1")
        .send()
        .await
        .unwrap();
    let again = client
        .send_message()
        .connection_token(&token)
        .content_type("text/plain")
        .content("é".repeat(1024))
        .client_token("retry-1")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.id(), again.id(), "same ClientToken, same message");
    let too_long = client
        .send_message()
        .connection_token(&token)
        .content_type("text/plain")
        .content("a".repeat(1025))
        .send()
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Some("ValidationException"));

    client
        .send_event()
        .connection_token(&token)
        .content_type(content_types::TYPING)
        .send()
        .await
        .unwrap();
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    sb.agent_send(&contact_id, "**Hi**, how can I help?", "text/markdown")
        .unwrap();
    sb.agent_send_item(
        &contact_id,
        xdm_sandbox::ItemSpec::message(
            ParticipantRole::Agent,
            xdm_sandbox::MessageVisibility::Agent,
            "text/plain",
            "agents only",
        ),
    )
    .unwrap();

    let transcript = client
        .get_transcript()
        .connection_token(&token)
        .scan_direction(ScanDirection::Forward)
        .sort_order(SortKey::Ascending)
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert_eq!(transcript.initial_contact_id(), Some(contact_id.as_str()));
    let contents: Vec<Option<&str>> = transcript
        .transcript()
        .iter()
        .map(|i| i.content())
        .collect();
    let long = "é".repeat(1024);
    // Initial message, customer joined, one deduplicated message, agent joined, agent message;
    // no typing indicator and no agent-only item.
    assert_eq!(
        contents,
        vec![
            Some("Hola"),
            None,
            Some(long.as_str()),
            None,
            Some("**Hi**, how can I help?")
        ]
    );
    let page = client
        .get_transcript()
        .connection_token(&token)
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.transcript().len(), 2);
    assert_eq!(
        page.transcript()[1].content(),
        Some("**Hi**, how can I help?")
    );
    let older = client
        .get_transcript()
        .connection_token(&token)
        .max_results(2)
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(older.transcript()[1].content(), Some(long.as_str()));

    client
        .disconnect_participant()
        .connection_token(&token)
        .send()
        .await
        .unwrap();
    let contact = sb.contact(&contact_id).unwrap();
    assert_eq!(contact.status, ContactStatus::Ended);
    let last_two: Vec<&str> = contact.transcript[contact.transcript.len() - 2..]
        .iter()
        .map(|i| i.item.content_type.as_str())
        .collect();
    assert_eq!(
        last_two,
        vec![content_types::PARTICIPANT_LEFT, content_types::CHAT_ENDED]
    );
    let denied = client
        .send_message()
        .connection_token(&token)
        .content_type("text/plain")
        .content("still there?")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn everything_is_access_denied_after_the_chat_ends() {
    let sb = sandbox().await;
    let (contact_id, participant_token) = start_chat(&sb, "Hola").await;
    let token = connect_customer(&sb, &participant_token).await;
    sb.end_chat(&contact_id).unwrap();

    let (status, headers, body) = participant_call(
        &sb,
        "/participant/message",
        &token,
        json!({"ContentType": "text/plain", "Content": "hi"}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-amzn-errortype"], "AccessDeniedException");
    assert_eq!(body["__type"], "AccessDeniedException");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("has already been terminated")
    );
    let (status, _, body) = participant_call(
        &sb,
        "/participant/connection",
        &participant_token,
        json!({"Type": ["CONNECTION_CREDENTIALS"], "ConnectParticipant": true}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (403, Some("AccessDeniedException"))
    );
    let (status, _, _) = participant_call(
        &sb,
        "/participant/message",
        "unknown",
        json!({"ContentType": "text/plain", "Content": "x"}),
    )
    .await;
    assert_eq!(status, 403);
    // StopContact on an ended contact.
    let (status, headers, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/stop",
        json!({"InstanceId": sb.config().connect.instance_id, "ContactId": contact_id}),
    )
    .await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (410, "ContactNotFoundException")
    );
}

#[tokio::test]
async fn transfer_changes_the_contact_id_but_not_the_session() {
    let sb = sandbox().await;
    let (contact_id, participant_token) = start_chat(&sb, "Hola").await;
    let token = connect_customer(&sb, &participant_token).await;
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    let after = sb.transfer(&contact_id).unwrap();
    assert_ne!(after.contact_id, contact_id);
    assert_eq!(after.initial_contact_id, contact_id);
    assert_eq!(after.previous_contact_ids, vec![contact_id.clone()]);
    let left = after.transcript.last().unwrap();
    assert_eq!(left.item.content_type, content_types::PARTICIPANT_LEFT);
    assert_eq!(left.item.contact_id, contact_id);

    let (status, _, _) = participant_call(
        &sb,
        "/participant/message",
        &token,
        json!({"ContentType": "text/plain", "Content": "still me"}),
    )
    .await;
    assert_eq!(status, 200);
    sb.agent_accept(&after.contact_id, "Second agent").unwrap();
    let view = sb.contact(&contact_id).unwrap();
    let last = view.transcript.last().unwrap();
    assert_eq!(last.item.contact_id, after.contact_id);
    assert_eq!(last.item.initial_contact_id, contact_id);
}

#[tokio::test]
async fn streaming_rules() {
    let sb = sandbox().await;
    let (contact_id, _) = start_chat(&sb, "Hola").await;
    let instance = sb.config().connect.instance_id.clone();
    let start = |arn: &str, token: &str| {
        json!({"InstanceId": instance, "ContactId": contact_id,
               "ChatStreamingConfiguration": {"StreamingEndpointArn": arn}, "ClientToken": token})
    };
    let (s1, _, first) = connect_call(
        &sb,
        Method::POST,
        "/contact/start-streaming",
        start(&sb.sns_topic_arn(), "a"),
    )
    .await;
    assert_eq!(s1, 200);
    let (_, _, same) = connect_call(
        &sb,
        Method::POST,
        "/contact/start-streaming",
        start(&sb.sns_topic_arn(), "a"),
    )
    .await;
    assert_eq!(first["StreamingId"], same["StreamingId"]);
    let second_topic = "arn:aws:sns:us-east-1:123456789012:second";
    assert_eq!(
        connect_call(
            &sb,
            Method::POST,
            "/contact/start-streaming",
            start(second_topic, "b")
        )
        .await
        .0,
        200
    );
    let (status, headers, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/start-streaming",
        start("arn:aws:sns:us-east-1:123456789012:third", "c"),
    )
    .await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (429, "LimitExceededException")
    );
    let other_region = "arn:aws:sns:eu-west-1:123456789012:chat";
    assert_eq!(
        connect_call(
            &sb,
            Method::POST,
            "/contact/start-streaming",
            start(other_region, "d")
        )
        .await
        .0,
        400
    );

    let (status, _, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/stop-streaming",
        json!({"InstanceId": sb.config().connect.instance_id, "ContactId": contact_id, "StreamingId": first["StreamingId"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        sb.contact(&contact_id)
            .unwrap()
            .streaming
            .iter()
            .filter(|s| s.active)
            .count(),
        1
    );

    let unknown = json!({"InstanceId": sb.config().connect.instance_id, "ContactId": "nope",
        "ChatStreamingConfiguration": {"StreamingEndpointArn": sb.sns_topic_arn()}, "ClientToken": "e"});
    assert_eq!(
        connect_call(&sb, Method::POST, "/contact/start-streaming", unknown)
            .await
            .0,
        404
    );
    let (status, _, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/stop",
        json!({"InstanceId": sb.config().connect.instance_id, "ContactId": contact_id}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/start-streaming",
        start(&sb.sns_topic_arn(), "f"),
    )
    .await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (400, "InvalidRequestException")
    );
}

#[tokio::test]
async fn faults_reach_the_sdk_as_aws_errors() {
    let sb = sandbox().await;
    let (_, participant_token) = start_chat(&sb, "Hola").await;
    let token = connect_customer(&sb, &participant_token).await;
    sb.fail_next(FaultOp::SendMessage, 1, Fault::status(429));
    sb.fail_next(
        FaultOp::SendMessage,
        1,
        Fault::error(500, "InternalServerException").with_message("boom"),
    );
    let client = sdk(&sb);
    let send = || {
        client
            .send_message()
            .connection_token(&token)
            .content_type("text/plain")
            .content("hi")
            .send()
    };
    // The SDK retries throttling and 5xx by itself (3 attempts by default), so both faults are
    // consumed by one call that then succeeds.
    let ok = send().await.unwrap();
    assert!(ok.id().is_some());
    let injected: Vec<_> = sb
        .event_log(0)
        .into_iter()
        .filter(|e| matches!(e.event, xdm_sandbox::SandboxEvent::FaultInjected { .. }))
        .collect();
    assert_eq!(injected.len(), 2);

    sb.fail_next(
        FaultOp::SendMessage,
        1,
        Fault::error(400, "ValidationException").with_message("nope"),
    );
    let err = send().await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Some("ValidationException"), Some("nope"))
    );
}

#[tokio::test]
async fn update_contact_attributes_merges_into_the_chat_and_checks_what_connect_checks() {
    let sb = sandbox().await;
    let (contact_id, _) = start_chat(&sb, "hi").await;
    let instance = sb.config().connect.instance_id.clone();
    let update = |attributes: serde_json::Value, initial: &str| json!({"InstanceId": instance, "InitialContactId": initial, "Attributes": attributes});
    let (status, _, body) = connect_call(
        &sb,
        Method::POST,
        "/contact/attributes",
        update(
            json!({"x_channel": "chat", "customerName": "Eli"}),
            &contact_id,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let contact = sb.contact(&contact_id).unwrap();
    assert_eq!(contact.attributes["x_channel"], "chat");
    assert_eq!(contact.attributes["customerName"], "Eli", "replaced");
    assert_eq!(contact.attributes["Channel"], "X", "kept");
    // What Connect refuses.
    for (attributes, initial, want) in [
        (json!({"bad key": "x"}), contact_id.as_str(), 400),
        (json!({"k": "x".repeat(40_000)}), contact_id.as_str(), 400),
        (json!({"k": "v"}), "no-such-contact", 404),
    ] {
        let (status, _, body) = connect_call(
            &sb,
            Method::POST,
            "/contact/attributes",
            update(attributes, initial),
        )
        .await;
        assert_eq!(status, want, "{body}");
    }
    let (status, _, _) = connect_call(
        &sb,
        Method::POST,
        "/contact/attributes",
        json!({"InstanceId": "other", "InitialContactId": contact_id, "Attributes": {}}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(sb.contact(&contact_id).unwrap().attributes.get("k"), None);
}
