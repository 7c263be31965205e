//! X Chat through the fake, with the messages, keys and key changes X's own Chat SDK made
//! (`testdata/xchat-vectors.json`, chatxdk 0.5.2): the business account is bob
//! (`2222222222222222222`), the customer alice (`1111111111111111111`). A delivery is read,
//! checked against alice's keys as the fake serves them and opened; anything altered is
//! `Unreadable`; a reply is sealed with the conversation key, signed, and the same request on
//! every attempt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use serde_json::{Value, json};
use xdm_core::inbound::InboundEvent;
use xdm_core::ports::{ChatKeyChange, ChatRequest};
use xdm_x::chat::ChatIdentity;
use xdm_xchat::events::{Detail, parse_event};
use xdm_xchat::keys::parse_public_key;
use xdm_xchat::{ConversationKey, signatures, thrift};

use super::*;

const ALICE: &str = "1111111111111111111";
const BOB: &str = "2222222222222222222";

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/xchat-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text(v: &Value, path: &str) -> String {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_str()
        .unwrap_or_else(|| panic!("{path}"))
        .to_owned()
}

/// Bob's client: his keys as X's SDK exported them, OAuth 1.0a as the default account.
fn bob_client(base: &str, v: &Value) -> XClient {
    let identity = ChatIdentity::from_blob_base64(
        &text(v, "participants.bob.key_blob_b64"),
        text(v, "participants.bob.public_key_version"),
    )
    .unwrap();
    let config = XClientConfig::oauth1(base, consumer(), default_token())
        .unwrap()
        .with_default_chat_identity(identity);
    XClient::new(config).unwrap()
}

/// Alice's public keys as X serves them (`GET /2/users/{id}/public_keys`).
fn alice_keys(v: &Value) -> String {
    let entry = &v["participants"]["alice"]["signing_key_entry"];
    json!({"data": [{
        "public_key": entry["identity_public_key"],
        "signing_public_key": entry["public_key"],
        "identity_public_key_signature": entry["identity_public_key_signature"],
        "public_key_version": entry["public_key_version"],
    }]})
    .to_string()
}

fn keys_route(body: String) -> (&'static str, Responder) {
    (
        "/2/users/1111111111111111111/public_keys",
        Arc::new(move |_seen: &Seen| {
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.clone(),
            )
                .into_response()
        }),
    )
}

fn delivered(v: &Value) -> xdm_core::inbound::InboundChat {
    let body = serde_json::to_vec(&v["message"]["webhook_chat_received_example"]).unwrap();
    let parsed = xdm_x::parse_delivery(&body).unwrap();
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    match parsed.batch.events.as_slice() {
        [InboundEvent::Chat(chat)] => chat.clone(),
        other => panic!("one chat message expected, got {other:?}"),
    }
}

#[test]
fn a_chat_received_delivery_is_read_sealed_as_it_came() {
    let v = vectors();
    let chat = delivered(&v);
    assert_eq!(chat.business.as_str(), BOB);
    assert_eq!(chat.sender.as_str(), ALICE);
    assert_eq!(
        chat.message_id.as_str(),
        "6cd0b7b0-9b98-4741-95ef-d3bebb84caff"
    );
    assert_eq!(chat.created_ms, 1_796_529_805_488);
    assert_eq!(chat.conversation_id, format!("{ALICE}:{BOB}"));
    assert!(chat.key_change_event.is_some());
    // Nothing of the text is in what is kept.
    let kept = serde_json::to_string(&chat).unwrap();
    assert!(!kept.contains("Hello from the bridge"));
    // A chat event that carries no message, and one missing its event: nothing, a skip.
    let join = json!({"data": {"event_type": "chat.conversation.join", "filter": {"user_id": BOB},
        "payload": {"conversation_id": "1:2"}}});
    let parsed = xdm_x::parse_delivery(join.to_string().as_bytes()).unwrap();
    assert!(parsed.batch.events.is_empty() && parsed.skipped.is_empty());
    let mut broken = v["message"]["webhook_chat_received_example"].clone();
    broken["data"]["payload"]["encoded_event"] = Value::Null;
    let parsed = xdm_x::parse_delivery(broken.to_string().as_bytes()).unwrap();
    assert!(parsed.batch.events.is_empty());
    assert_eq!(parsed.skipped.len(), 1);
}

#[tokio::test]
async fn a_customers_message_is_checked_against_their_keys_on_x_then_opened() {
    let v = vectors();
    let server = Server::routed(vec![keys_route(alice_keys(&v))]).await;
    let client = bob_client(&server.url(), &v);
    let opened = client.open_chat(&delivered(&v)).await.unwrap();
    assert_eq!(opened.text, text(&v, "message.text"));
    let event = parse_event(&text(
        &v,
        "message.webhook_chat_received_example.data.payload.encoded_event",
    ))
    .unwrap();
    assert_eq!(opened.sequence_id.as_str(), event.sequence_id);
    let key = opened.key.unwrap();
    assert_eq!(key.conversation_id, format!("{ALICE}:{BOB}"));
    assert_eq!(
        key.key_version,
        text(
            &v,
            "message.webhook_chat_received_example.data.payload.conversation_key_version"
        )
    );
    // Alice's keys were read once, as the business account, asking for every field needed.
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].target.contains("public_key.fields="),
        "{}",
        seen[0].target
    );
    seen[0].assert_signed_by(&default_token());
    // Cached: a second message needs no lookup.
    client.open_chat(&delivered(&v)).await.unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn anything_altered_or_signed_by_someone_else_is_unreadable() {
    let v = vectors();
    let server = Server::routed(vec![keys_route(alice_keys(&v))]).await;
    let client = bob_client(&server.url(), &v);
    let good = delivered(&v);

    // One byte of the sealed contents changed: the signature no longer covers it.
    let mut raw = STANDARD.decode(&good.encoded_event).unwrap();
    let at = raw.len() - 60;
    raw[at] ^= 1;
    let mut tampered = good.clone();
    tampered.encoded_event = STANDARD.encode(&raw);
    let e = client.open_chat(&tampered).await.unwrap_err();
    assert!(matches!(e, XError::Unreadable(_)), "{e:?}");
    assert!(!e.to_string().contains("Hello"));

    // The delivery names another message than the event carries.
    let mut renamed = good.clone();
    renamed.message_id =
        xdm_core::ids::ChatMessageId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    assert!(matches!(
        client.open_chat(&renamed).await,
        Err(XError::Unreadable(_))
    ));

    // X serves other keys for alice (bob's): nothing verifies.
    let bob_entry = &v["participants"]["bob"]["signing_key_entry"];
    let wrong = json!({"data": [{
        "public_key": bob_entry["identity_public_key"],
        "signing_public_key": bob_entry["public_key"],
        "identity_public_key_signature": bob_entry["identity_public_key_signature"],
        "public_key_version": v["participants"]["alice"]["public_key_version"],
    }]})
    .to_string();
    let other = Server::routed(vec![keys_route(wrong)]).await;
    let e = bob_client(&other.url(), &v)
        .open_chat(&good)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unreadable(_)), "{e:?}");

    // A row whose key binding does not verify is not trusted at all.
    let mut broken: Value = serde_json::from_str(&alice_keys(&v)).unwrap();
    broken["data"][0]["identity_public_key_signature"] =
        v["participants"]["bob"]["identity_public_key_signature_b64"].clone();
    let unbound = Server::routed(vec![keys_route(broken.to_string())]).await;
    let e = bob_client(&unbound.url(), &v)
        .open_chat(&good)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no trusted signing key"), "{e}");

    // Without keys the account cannot read X Chat at all (not an unreadable message: fixable).
    let keyless =
        XClient::new(XClientConfig::oauth1(&server.url(), consumer(), default_token()).unwrap())
            .unwrap();
    assert!(matches!(
        keyless.open_chat(&good).await,
        Err(XError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_reply_is_sealed_with_the_conversation_key_signed_and_the_same_request_each_time() {
    let v = vectors();
    let answer = json!({"data": {"encoded_message_event": text(&v, "message.server_event_b64")}})
        .to_string();
    let server = Server::routed(vec![
        keys_route(alice_keys(&v)),
        (
            "/2/chat/conversations/1111111111111111111/messages",
            Arc::new(move |_seen: &Seen| {
                (
                    StatusCode::CREATED,
                    [("content-type", "application/json")],
                    answer.clone(),
                )
                    .into_response()
            }),
        ),
    ])
    .await;
    let client = bob_client(&server.url(), &v);
    let payload = &v["message"]["webhook_chat_received_example"]["data"]["payload"];
    let request = ChatRequest {
        business: uid(BOB),
        recipient: uid(ALICE),
        key: ChatKeyChange {
            conversation_id: format!("{ALICE}:{BOB}"),
            key_version: payload["conversation_key_version"]
                .as_str()
                .unwrap()
                .to_owned(),
            encoded_event: payload["conversation_key_change_event"]
                .as_str()
                .unwrap()
                .to_owned(),
        },
        message_id: "0b6f3c1e-5d2a-4c3b-9e8f-7a6b5c4d3e2f".into(),
        text: "Your order ships **today** — ñ 👋".into(),
    };
    let sent = client.send_chat(&request).await.unwrap();
    let relayed = parse_event(&text(&v, "message.server_event_b64")).unwrap();
    assert_eq!(sent.sequence_id, relayed.sequence_id);
    client.send_chat(&request).await.unwrap();

    let posts: Vec<Seen> = server
        .requests()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].body, posts[1].body, "a retry is the same request");
    posts[0].assert_signed_by(&default_token());
    let body = posts[0].json();
    assert_eq!(body["message_id"], "0b6f3c1e-5d2a-4c3b-9e8f-7a6b5c4d3e2f");
    // What X receives: a MessageCreateEvent sealed under the conversation key of that version…
    let create = thrift::read_struct(
        &STANDARD
            .decode(body["encoded_message_create_event"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let contents = create.field(100).unwrap().as_bytes().unwrap().to_vec();
    assert_eq!(
        create.field(101).unwrap().as_str(),
        payload["conversation_key_version"].as_str()
    );
    // (the key alice's SDK made for this conversation, from the vectors' key change)
    let change = parse_event(payload["conversation_key_change_event"].as_str().unwrap()).unwrap();
    assert!(matches!(change.detail, Detail::KeyChange { .. }));
    let bob_keys = xdm_xchat::ChatKeys::from_blob(
        &STANDARD
            .decode(text(&v, "participants.bob.key_blob_b64"))
            .unwrap(),
    )
    .unwrap();
    let alice_signing = parse_public_key(
        &STANDARD
            .decode(text(&v, "participants.alice.signing_key_entry.public_key"))
            .unwrap(),
    )
    .unwrap();
    let (_, key): (String, ConversationKey) = change
        .open_key_change(&bob_keys, BOB, None, &alice_signing)
        .unwrap();
    let plaintext = key.open(&contents).unwrap();
    assert_eq!(
        thrift::message_text(&plaintext).unwrap().as_deref(),
        Some("Your order ships **today** — ñ 👋")
    );
    // …and signed by bob over the string X Chat signs, stamped with his key version.
    let signature = thrift::read_struct(
        &STANDARD
            .decode(body["encoded_message_event_signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        signature.field(2).unwrap().as_str(),
        Some(text(&v, "participants.bob.public_key_version").as_str())
    );
    let signed = signatures::message_payload(
        "0b6f3c1e-5d2a-4c3b-9e8f-7a6b5c4d3e2f",
        BOB,
        &format!("{ALICE}:{BOB}"),
        payload["conversation_key_version"].as_str().unwrap(),
        &contents,
    )
    .unwrap();
    signatures::verify(
        &bob_keys.signing_public(),
        &signed,
        signature.field(1).unwrap().as_str().unwrap(),
    )
    .unwrap();
}

fn key_of_conversation(v: &Value) -> ChatKeyChange {
    let payload = &v["message"]["webhook_chat_received_example"]["data"]["payload"];
    ChatKeyChange {
        conversation_id: format!("{ALICE}:{BOB}"),
        key_version: payload["conversation_key_version"]
            .as_str()
            .unwrap()
            .to_owned(),
        encoded_event: payload["conversation_key_change_event"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

fn pattern() -> Vec<u8> {
    (0..2500usize).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

#[tokio::test]
async fn a_file_sealed_by_x_sdk_is_downloaded_and_opened_and_an_altered_one_refused() {
    let v = vectors();
    let sealed = STANDARD
        .decode(text(&v, "media.chatxdk_encrypt_stream_b64"))
        .unwrap();
    let mut altered = sealed.clone();
    altered[1500] ^= 1;
    let serve = |bytes: Vec<u8>| -> Responder {
        Arc::new(move |_seen: &Seen| {
            (
                StatusCode::OK,
                [("content-type", "application/octet-stream")],
                bytes.clone(),
            )
                .into_response()
        })
    };
    let server = Server::routed(vec![
        keys_route(alice_keys(&v)),
        (
            "/2/chat/media/1111111111111111111-2222222222222222222/abc123DEF456",
            serve(sealed),
        ),
        (
            "/2/chat/media/1111111111111111111-2222222222222222222/altered1",
            serve(altered),
        ),
    ])
    .await;
    let client = bob_client(&server.url(), &v);
    let media = |id: &str| xdm_core::inbound::InboundMedia {
        kind: xdm_core::inbound::MediaKind::Photo,
        media_id: id.into(),
        url: String::new(),
        content_type: None,
        sealed: Some(key_of_conversation(&v)),
    };
    let file = client
        .download_media(&uid(BOB), &media("abc123DEF456"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(file.length, 2500);
    let bytes: Vec<u8> = file
        .body
        .fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk.unwrap());
            all
        })
        .await;
    assert_eq!(bytes, pattern());
    let download = server
        .requests()
        .into_iter()
        .find(|s| s.target.starts_with("/2/chat/media/"))
        .unwrap();
    download.assert_signed_by(&default_token());

    let e = client
        .download_media(&uid(BOB), &media("altered1"), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unreadable(_)), "{e:?}");
    // Over the limit: not opened.
    let e = client
        .download_media(&uid(BOB), &media("abc123DEF456"), 100)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::TooLarge { .. }), "{e:?}");
    // A media key that is not X Chat's is never put in a URL.
    let e = client
        .download_media(&uid(BOB), &media("../x"), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unreadable(_)), "{e:?}");
}

#[tokio::test]
async fn an_agents_file_is_sealed_uploaded_in_segments_and_sent_in_a_message() {
    let v = vectors();
    let answer = json!({"data": {"encoded_message_event": text(&v, "message.server_event_b64")}})
        .to_string();
    let segments: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = Arc::clone(&segments);
    let json_route =
        |prefix: &'static str, status: StatusCode, body: String| -> (&'static str, Responder) {
            (
                prefix,
                Arc::new(move |_seen: &Seen| {
                    (status, [("content-type", "application/json")], body.clone()).into_response()
                }),
            )
        };
    let server = Server::routed(vec![
        keys_route(alice_keys(&v)),
        json_route(
            "/2/chat/media/upload/initialize",
            StatusCode::OK,
            json!({"data": {"session_id": "s1", "media_hash_key": "Hk42", "conversation_id": format!("{ALICE}:{BOB}")}}).to_string(),
        ),
        (
            "/2/chat/media/upload/s1/append",
            Arc::new(move |seen: &Seen| {
                // The fake keeps small bodies only: the segments are kept here.
                kept.lock().unwrap().push(seen.json());
                (StatusCode::OK, [("content-type", "application/json")], r#"{"data":{"expires_at":1}}"#)
                    .into_response()
            }),
        ),
        json_route("/2/chat/media/upload/s1/finalize", StatusCode::OK, json!({"data": {"success": true}}).to_string()),
        json_route("/2/chat/conversations/1111111111111111111/messages", StatusCode::CREATED, answer),
    ])
    .await;
    let client = bob_client(&server.url(), &v);
    // 2.5 MiB: three segments.
    let file: Vec<u8> = (0..(5 << 19)).map(|i: usize| (i % 251) as u8).collect();
    let body = futures_util::stream::iter(
        file.chunks(70_000)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let sent = client
        .send_chat_file(xdm_core::ports::ChatFileRequest {
            business: uid(BOB),
            recipient: uid(ALICE),
            key: key_of_conversation(&v),
            message_id: "6f1d6d8e-0c7a-4b57-9a55-0e9f3a1f7c11".into(),
            kind: xdm_core::inbound::MediaKind::Photo,
            file: xdm_core::media::MediaStream {
                file_name: "receipt.png".into(),
                content_type: "image/png".into(),
                length: file.len() as u64,
                body: Box::pin(body),
            },
        })
        .await
        .unwrap();
    assert!(!sent.sequence_id.is_empty());
    let seen = server.requests();
    let init = seen
        .iter()
        .find(|s| s.target.ends_with("/initialize"))
        .unwrap()
        .json();
    assert_eq!(init["conversation_id"], format!("{ALICE}:{BOB}"));
    assert_eq!(
        init["total_bytes"].as_u64().unwrap(),
        xdm_xchat::media::sealed_len(file.len() as u64)
    );
    let appends = segments.lock().unwrap().clone();
    assert_eq!(appends.len(), 3);
    let mut uploaded = Vec::new();
    for (i, a) in appends.iter().enumerate() {
        assert_eq!(a["segment_index"], i);
        assert_eq!(a["media_hash_key"], "Hk42");
        uploaded.extend(STANDARD.decode(a["media"].as_str().unwrap()).unwrap());
    }
    let finalize = seen
        .iter()
        .find(|s| s.target.ends_with("/finalize"))
        .unwrap()
        .json();
    assert_eq!(finalize["num_parts"], "3");
    // The upload opens with the conversation key to the file.
    let key = ConversationKey::from_bytes(
        hex_bytes(&text(&v, "media.conversation_key_hex"))
            .try_into()
            .unwrap(),
    );
    let mut opener = xdm_xchat::media::MediaOpener::new(&key);
    let mut opened = opener.push(&uploaded).unwrap();
    opened.extend(opener.finish().unwrap());
    assert_eq!(opened, file);
    // The message names it.
    let post = seen
        .iter()
        .find(|s| s.target.ends_with("/messages"))
        .unwrap()
        .json();
    let create = thrift::read_struct(
        &STANDARD
            .decode(post["encoded_message_create_event"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let plaintext = key
        .open(create.field(100).unwrap().as_bytes().unwrap())
        .unwrap();
    let files = thrift::message_attachments(&plaintext).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].media_hash_key, "Hk42");
    assert_eq!(files[0].filesize, Some(file.len() as i64));
    assert_eq!(files[0].filename.as_deref(), Some("receipt.png"));
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn each_account_reads_x_chat_with_its_own_keys_or_none() {
    let v = vectors();
    let bob = ChatIdentity::from_blob_base64(
        &text(&v, "participants.bob.key_blob_b64"),
        text(&v, "participants.bob.public_key_version"),
    )
    .unwrap();
    let alice = ChatIdentity::from_blob_base64(
        &text(&v, "participants.alice.key_blob_b64"),
        text(&v, "participants.alice.public_key_version"),
    )
    .unwrap();
    let config = XClientConfig::oauth1("http://127.0.0.1:9", consumer(), default_token())
        .unwrap()
        .with_default_chat_identity(bob.clone())
        .with_chat_identity(uid(ALICE), Some(alice.clone()))
        .with_chat_identity(uid(OTHER_BUSINESS), None);
    let client = XClient::new(config).unwrap();
    assert_eq!(
        client.chat_identity(&uid(ALICE)).unwrap().fingerprint(),
        alice.fingerprint()
    );
    // The default account (not named) has the default keys; a named account without keys has
    // none, never the default account's.
    assert_eq!(
        client.chat_identity(&uid(BOB)).unwrap().fingerprint(),
        bob.fingerprint()
    );
    assert!(matches!(
        client.chat_identity(&uid(OTHER_BUSINESS)),
        Err(XError::Invalid(_))
    ));
    // Debug shows the fingerprint, never the key.
    let shown = format!("{bob:?}");
    assert!(shown.contains(&bob.fingerprint()));
    assert!(!shown.contains(&text(&v, "participants.bob.key_blob_b64")));
}

#[tokio::test]
async fn without_the_key_change_in_the_delivery_it_is_read_from_the_conversation() {
    let v = vectors();
    let payload = &v["message"]["webhook_chat_received_example"]["data"]["payload"];
    let history = json!({"data": [], "meta": {
        "conversation_key_events": [payload["conversation_key_change_event"]],
        "result_count": 0}})
    .to_string();
    let server = Server::routed(vec![
        keys_route(alice_keys(&v)),
        (
            "/2/chat/conversations/1111111111111111111/events",
            Arc::new(move |_seen: &Seen| {
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    history.clone(),
                )
                    .into_response()
            }),
        ),
    ])
    .await;
    let client = bob_client(&server.url(), &v);
    let mut chat = delivered(&v);
    chat.key_change_event = None;
    let opened = client.open_chat(&chat).await.unwrap();
    assert_eq!(opened.text, text(&v, "message.text"));
    let read = server
        .requests()
        .into_iter()
        .find(|s| s.target.contains("/events"))
        .expect("the conversation's key changes were read");
    assert!(read.target.contains("max_results=100"), "{}", read.target);
    // A conversation without that key change: unreadable, not retried.
    let empty = Server::routed(vec![
        keys_route(alice_keys(&v)),
        (
            "/2/chat/conversations/1111111111111111111/events",
            Arc::new(|_seen: &Seen| {
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    r#"{"data":[],"meta":{}}"#,
                )
                    .into_response()
            }),
        ),
    ])
    .await;
    let e = bob_client(&empty.url(), &v)
        .open_chat(&chat)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unreadable(_)), "{e:?}");
}
