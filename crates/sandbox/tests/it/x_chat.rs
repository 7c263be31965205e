//! The X Chat emulator against X's own SDK: two customers built on `chatxdk`
//! (scripts/xchat_customer.py, from ./.venv: `./scripts/venv.sh`) register keys, agree a
//! conversation key, exchange signed, encrypted messages and media through the sandbox, and decrypt
//! what it relays and delivers; the requests a wrong client would make are refused. The
//! deterministic conversation of testdata/xchat-vectors.json (made with chatxdk 0.5.2) is replayed
//! for the exact negative cases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xdm_sandbox::x::chat::thrift::{self, Writer};
use xdm_sandbox::{
    ChatEventKind, ChatIndicatorKind, DropMode, Fault, FaultOp, FaultProfile, SandboxHandle, XOp,
};

use crate::support::{WAIT, http, sandbox, sandbox_with_webhook, venv_python};

const SCOPES: [&str; 5] = [
    "dm.read",
    "dm.write",
    "tweet.read",
    "users.read",
    "media.write",
];
const ALICE: &str = "1111111111111111111";
const BOB: &str = "2222222222222222222";
const CAROL: &str = "3333333333333333333";
const CONVERSATION: &str = "1111111111111111111:2222222222222222222";

// ----- the chatxdk customer -----

/// A scratch directory for state files and media, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("xdm-x-chat-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `scripts/xchat_customer.py <args>`: its JSON answer, or its stderr.
async fn customer_cli(args: &[&str]) -> Result<Value, String> {
    let (python, _) = venv_python("xchat_customer.py", "X's chatxdk (X Chat SDK)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/xchat_customer.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A chatxdk customer with its state file.
struct Customer {
    state: String,
}

impl Customer {
    /// Registers fresh keys (or the given blob and version) for `id` with a token of `SCOPES`.
    async fn init(
        sb: &SandboxHandle,
        dir: &Scratch,
        id: &'static str,
        blob: Option<(&str, &str)>,
    ) -> (Self, Value) {
        let token = sb.issue_oauth2_token(id, &SCOPES).access_token;
        let state = dir.path(&format!("{id}.json"));
        let api = sb.base_url();
        let mut args = vec![
            "init",
            "--api",
            &api,
            "--token",
            &token,
            "--user-id",
            id,
            "--state",
            &state,
        ];
        if let Some((b64, version)) = blob {
            args.extend(["--blob", b64, "--version", version]);
        }
        let answer = customer_cli(&args).await.expect("init");
        (Self { state }, answer)
    }

    async fn run(&self, command: &str, extra: &[&str]) -> Result<Value, String> {
        let mut args = vec![command, "--state", &self.state];
        args.extend_from_slice(extra);
        customer_cli(&args).await
    }
}

// ----- helpers -----

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../../../testdata/xchat-vectors.json")).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A 40×30 RGB PNG (stored deflate blocks): deterministic bytes a viewer would open.
fn png() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend(data);
        out.extend(&typed);
        out.extend(crc32(&typed).to_be_bytes());
    }
    let (width, height) = (40u32, 30u32);
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        raw.extend((0..width * 3).map(|x| ((x * 7 + y * 13) % 251) as u8));
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend((raw.len() as u16).to_le_bytes());
    zlib.extend((!(raw.len() as u16)).to_le_bytes());
    zlib.extend(&raw);
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A JSON call with a user's OAuth 2.0 token: (status, body).
async fn call(
    sb: &SandboxHandle,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = sb.issue_oauth2_token(user, &SCOPES).access_token;
    let mut req = http()
        .request(method, format!("{}{path}", sb.base_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(sb: &SandboxHandle, user: &str, path: &str, body: Value) -> (u16, Value) {
    call(sb, user, reqwest::Method::POST, path, Some(body)).await
}

async fn get(sb: &SandboxHandle, user: &str, path: &str) -> (u16, Value) {
    call(sb, user, reqwest::Method::GET, path, None).await
}

/// Webhook bodies (parsed) received so far.
fn posted(rx: &crate::support::Receiver) -> Vec<Value> {
    rx.inbox()
        .webhook_posts
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

/// Waits for `n` webhook posts, then a little longer for any that should not come.
async fn settle(sb: &SandboxHandle, rx: &crate::support::Receiver, n: usize) {
    sb.wait_until("chat deliveries", WAIT, |_| {
        (posted(rx).len() >= n).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

// ----- tests -----

/// Two chatxdk customers talk through the emulator: keys, a conversation key, text and a photo
/// one way, text back; both decrypt everything with signatures verified, and the sandbox holds
/// ciphertext only.
#[tokio::test]
async fn chatxdk_customers_exchange_text_and_media() {
    let sb = sandbox().await;
    let dir = Scratch::new();
    let v = vectors();
    let (alice, registered) = Customer::init(&sb, &dir, ALICE, None).await;
    let alice_version = registered["public_key_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        alice_version.len(),
        13,
        "a millisecond timestamp: {registered}"
    );
    assert_eq!(registered["fingerprint"].as_str().unwrap().len(), 43);
    // Bob imports the vectors' fixed keys: the registration is byte for byte X's SDK's.
    let bob_keys = &v["participants"]["bob"];
    let (bob, registered) = Customer::init(
        &sb,
        &dir,
        BOB,
        Some((
            bob_keys["key_blob_b64"].as_str().unwrap(),
            bob_keys["public_key_version"].as_str().unwrap(),
        )),
    )
    .await;
    assert_eq!(registered["public_key_version"], "1736723828667");
    let bob_row = &sb.chat_public_keys(BOB)[0];
    let expected = &bob_keys["registration_request"]["public_key"];
    assert_eq!(bob_row.public_key, expected["public_key"].as_str().unwrap());
    assert_eq!(
        bob_row.signing_public_key_signature,
        expected["signing_public_key_signature"].as_str().unwrap()
    );
    assert_eq!(
        sb.chat_public_keys(ALICE)[0].public_key_version,
        alice_version
    );

    let photo = png();
    let photo_path = dir.path("photo.png");
    std::fs::write(&photo_path, &photo).unwrap();
    let text = "Hola Bob — ¿llegó la foto? 👋";
    let sent = alice
        .run(
            "send",
            &[
                "--to",
                BOB,
                "--text",
                text,
                "--media",
                &photo_path,
                "--append",
                "multipart",
                "--segment-bytes",
                "1000",
            ],
        )
        .await
        .unwrap();
    assert_eq!(sent["conversation_id"], CONVERSATION);
    let key_version = sent["conversation_key_version"]
        .as_str()
        .unwrap()
        .to_owned();

    let media_dir = dir.path("bob-media");
    let got = bob
        .run("receive", &["--peer", ALICE, "--media-dir", &media_dir])
        .await
        .unwrap();
    assert_eq!(got["errors"], json!({}), "{got}");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{got}");
    let first = &messages[0];
    assert_eq!(first["text"], text);
    assert_eq!(first["verified"], true);
    assert_eq!(first["sender_id"], ALICE);
    assert_eq!(first["message_id"], sent["message_id"]);
    assert_eq!(first["sequence_id"], sent["sequence_id"]);
    let attachment = &first["attachments"][0];
    assert_eq!(attachment["sha256"], sha256_hex(&photo).as_str());
    assert_eq!(attachment["size"], photo.len());
    assert_eq!(attachment["filename"], "photo.png");
    let written = std::fs::read(attachment["path"].as_str().unwrap()).unwrap();
    assert_eq!(written, photo);

    let reply = "Sí, ¡gracias Alice!";
    let answered = bob
        .run("send", &["--to", ALICE, "--text", reply])
        .await
        .unwrap();
    assert_eq!(
        answered["conversation_key_version"], key_version,
        "bob reuses the conversation key alice made"
    );
    let got = alice.run("receive", &["--peer", BOB]).await.unwrap();
    assert_eq!(got["errors"], json!({}), "{got}");
    let texts: Vec<(&str, &str, bool)> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["sender_id"].as_str().unwrap(),
                m["text"].as_str().unwrap(),
                m["verified"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(texts, [(ALICE, text, true), (BOB, reply, true)]);

    // What the sandbox stored: one key change, two messages, ciphertext only.
    let events = sb.chat_events();
    let kinds: Vec<ChatEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            ChatEventKind::KeyChange,
            ChatEventKind::Message,
            ChatEventKind::Message
        ]
    );
    assert!(events.iter().all(|e| e.conversation_id == CONVERSATION
        && e.conversation_key_version == key_version
        && e.sequence_id.len() == 19));
    assert!(
        events
            .windows(2)
            .all(|w| w[0].sequence_id < w[1].sequence_id)
    );
    let media = sb.chat_media();
    assert_eq!(media.len(), 1);
    assert!(media[0].finalized);
    assert_eq!(media[0].segments, 4, "1000-byte multipart segments");
    let blob = sb.chat_media_bytes(&media[0].media_hash_key).unwrap();
    assert_eq!(media[0].sha256.as_deref(), Some(sha256_hex(&blob).as_str()));
    assert_eq!(
        blob.len(),
        24 + photo.len() + 17 * photo.len().div_ceil(1024)
    );
    let mut stored: Vec<Vec<u8>> = events
        .iter()
        .map(|e| STANDARD.decode(&e.encoded_event).unwrap())
        .collect();
    stored.push(blob);
    for bytes in &stored {
        for plain in [
            text.as_bytes(),
            reply.as_bytes(),
            &photo[100..132],
            b"photo.png",
        ] {
            assert!(!contains(bytes, plain), "plaintext stored");
        }
    }

    // History pages, newest first; every page lists the key change.
    let (status, page) = get(
        &sb,
        BOB,
        &format!("/2/chat/conversations/{ALICE}/events?max_results=1"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], events[2].sequence_id.as_str());
    assert_eq!(
        page["data"][0]["previous_id"],
        events[1].sequence_id.as_str()
    );
    assert_eq!(page["meta"]["result_count"], 1);
    assert_eq!(
        page["meta"]["conversation_key_events"],
        json!([events[0].encoded_event])
    );
    let next = page["meta"]["next_token"].as_str().unwrap();
    let (_, page) = get(
        &sb,
        BOB,
        &format!(
            "/2/chat/conversations/{ALICE}-{BOB}/events?max_results=1&pagination_token={next}"
        ),
    )
    .await;
    assert_eq!(
        page["data"][0]["encoded_event"],
        events[1].encoded_event.as_str()
    );
    assert!(page["meta"].get("next_token").is_none(), "{page}");
    assert_eq!(
        page["meta"]["conversation_key_events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Typing and read are answered and recorded.
    assert_eq!(
        bob.run("typing", &["--peer", ALICE]).await.unwrap(),
        json!({"data": {"success": true}})
    );
    assert_eq!(
        bob.run("read", &["--peer", ALICE]).await.unwrap(),
        json!({"data": {"success": true}})
    );
    let indicators = sb.chat_indicators();
    assert_eq!(indicators.len(), 2);
    assert_eq!(indicators[0].kind, ChatIndicatorKind::Typing);
    assert_eq!(indicators[1].kind, ChatIndicatorKind::Read);
    assert_eq!(
        indicators[1].seen_until_sequence_id.as_deref(),
        Some(events[2].sequence_id.as_str())
    );
    let stats = sb.stats();
    assert_eq!(stats.op(FaultOp::ChatSendMessage).status_2xx, 2);
    assert_eq!(stats.op(FaultOp::ChatAddKeys).status_2xx, 1);
    assert_eq!(
        stats.op(FaultOp::ChatMediaUpload).calls,
        6,
        "initialize, 4 appends, finalize"
    );
}

/// The `chat.received`, `chat.sent` and `chat.conversation.join` events the sandbox POSTs to
/// webhooks decrypt with chatxdk, signatures verified.
#[tokio::test]
async fn delivered_chat_events_decrypt_with_chatxdk() {
    let (sb, rx) = sandbox_with_webhook().await;
    let hook = sb.webhook().unwrap().id;
    let dir = Scratch::new();
    let (alice, _) = Customer::init(&sb, &dir, ALICE, None).await;
    let (bob, _) = Customer::init(&sb, &dir, BOB, None).await;
    sb.subscribe_activity("chat.received", BOB, Some(&hook), Some("bob-in"))
        .unwrap();
    sb.subscribe_activity("chat.conversation.join", BOB, Some(&hook), None)
        .unwrap();
    sb.subscribe_activity("chat.sent", ALICE, Some(&hook), None)
        .unwrap();
    let text = "¿Me lees, Bob?";
    let sent = alice
        .run("send", &["--to", BOB, "--text", text])
        .await
        .unwrap();
    let bodies = sb
        .wait_until("three chat events", WAIT, |_| {
            let bodies = posted(&rx);
            (bodies.len() == 3).then_some(bodies)
        })
        .await
        .unwrap();
    let types: Vec<&str> = bodies
        .iter()
        .map(|b| b["data"]["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["chat.conversation.join", "chat.received", "chat.sent"]
    );
    assert!(
        sb.webhook_deliveries()
            .iter()
            .all(|d| d.status == Some(200))
    );

    let received = &bodies[1]["data"];
    assert_eq!(received["filter"]["user_id"], BOB);
    assert_eq!(received["tag"], "bob-in");
    let payload = &received["payload"];
    assert_eq!(payload["id"], sent["message_id"]);
    assert_eq!(payload["sender_id"], ALICE);
    assert_eq!(payload["conversation_id"], CONVERSATION);
    assert_eq!(
        payload["conversation_key_version"],
        sent["conversation_key_version"]
    );
    let alice_row = &sb.chat_public_keys(ALICE)[0];
    let signature = &payload["message_event_signature"];
    assert_eq!(
        signature["signing_public_key"],
        alice_row.signing_public_key.as_str()
    );
    assert_eq!(
        signature["public_key_version"],
        alice_row.public_key_version.as_str()
    );
    assert_eq!(signature["signature_version"], "7");
    assert_eq!(
        payload["conversation_key_change_event"],
        bodies[0]["data"]["payload"]["encoded_event"]
    );

    let file = dir.path("received.json");
    std::fs::write(&file, bodies[1].to_string()).unwrap();
    let event = bob
        .run("decrypt-payload", &["--payload", &file])
        .await
        .unwrap();
    assert_eq!(event["type"], "Message");
    assert_eq!(event["verified"], true);
    assert_eq!(event["content"]["text"], text);
    assert_eq!(event["sequence_id"], sent["sequence_id"]);

    let file = dir.path("sent.json");
    std::fs::write(&file, bodies[2]["data"]["payload"].to_string()).unwrap();
    let own = alice
        .run("decrypt-payload", &["--payload", &file])
        .await
        .unwrap();
    assert_eq!(
        (own["content"]["text"].as_str(), own["verified"].as_bool()),
        (Some(text), Some(true))
    );

    let file = dir.path("join.json");
    std::fs::write(&file, bodies[0].to_string()).unwrap();
    let join = bob
        .run("decrypt-payload", &["--payload", &file])
        .await
        .unwrap();
    assert_eq!(
        (join["type"].as_str(), join["verified"].as_bool()),
        (Some("KeyChange"), Some(true))
    );

    // A tampered event delivered raw is refused by chatxdk (the negative path for the bridge).
    let mut tampered = payload.clone();
    let mut bytes = STANDARD
        .decode(tampered["encoded_event"].as_str().unwrap())
        .unwrap();
    let at = bytes.len() - 60;
    bytes[at] ^= 1;
    tampered["encoded_event"] = json!(STANDARD.encode(&bytes));
    let delivery = sb
        .deliver_chat_raw(BOB, "chat.received", tampered.clone())
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200));
    let raw: Value = serde_json::from_str(&delivery.payload).unwrap();
    assert_eq!(
        raw["data"]["payload"]["encoded_event"],
        tampered["encoded_event"]
    );
    let file = dir.path("tampered.json");
    std::fs::write(&file, delivery.payload).unwrap();
    let refused = bob
        .run("decrypt-payload", &["--payload", &file])
        .await
        .unwrap_err();
    assert!(refused.contains("does not decrypt"), "{refused}");
    assert!(
        sb.deliver_chat_raw(BOB, "dm.received", json!({}))
            .await
            .is_err()
    );

    // The same over the control API.
    let ctl = format!("{}/_sandbox/x/chat", sb.base_url());
    let events: Value = http()
        .get(format!("{ctl}/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["key_change", "message"]);
    assert_eq!(events[1]["message_id"], sent["message_id"]);
    let keys: Value = http()
        .get(format!("{ctl}/public-keys?user_id={ALICE}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys[0]["public_key_version"],
        alice_row.public_key_version.as_str()
    );
    let resp = http()
        .post(format!("{ctl}/deliver"))
        .json(&json!({"user_id": BOB, "event_type": "chat.received", "payload": {"id": "raw-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let delivery: Value = resp.json().await.unwrap();
    assert_eq!(
        (delivery["kind"].as_str(), delivery["status"].as_u64()),
        (Some("chat"), Some(200))
    );
    assert_eq!(
        posted(&rx).len(),
        5,
        "join, received, sent and two raw deliveries"
    );
}

/// The deterministic conversation of the vectors, replayed: accepted as made by chatxdk, refused
/// when tampered, idempotent on `message_id`.
#[tokio::test]
async fn the_emulator_refuses_what_x_would() {
    let (sb, rx) = sandbox_with_webhook().await;
    let hook = sb.webhook().unwrap().id;
    sb.subscribe_activity("chat.received", BOB, Some(&hook), None)
        .unwrap();
    let v = vectors();
    let alice = &v["participants"]["alice"];
    let bob = &v["participants"]["bob"];

    // Registration: a broken binding is refused; chatxdk's bodies are accepted.
    let mut broken = bob["registration_request"].clone();
    broken["public_key"]["identity_public_key_signature"] =
        broken["public_key"]["signing_public_key_signature"].clone();
    let (status, body) = post(&sb, BOB, &format!("/2/users/{BOB}/public_keys"), broken).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["title"], "INVALID_PUBLIC_KEY");
    assert!(sb.chat_public_keys(BOB).is_empty());
    let (status, _) = post(
        &sb,
        ALICE,
        &format!("/2/users/{BOB}/public_keys"),
        bob["registration_request"].clone(),
    )
    .await;
    assert_eq!(status, 403, "only for oneself");
    for (user, keys) in [(ALICE, alice), (BOB, bob)] {
        let (status, body) = post(
            &sb,
            user,
            &format!("/2/users/{user}/public_keys"),
            keys["registration_request"].clone(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["public_key_version"],
            keys["public_key_version"]
        );
    }
    let (_, listed) = get(
        &sb,
        CAROL,
        &format!("/2/users/public_keys?ids={BOB},{CAROL},{ALICE}"),
    )
    .await;
    let versions: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["public_key_version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1736723828667", "1765382634817"]);
    assert_eq!(
        listed["data"][0]["public_key"],
        bob["identity_public_spki_b64"]
    );
    assert_eq!(
        get(&sb, ALICE, &format!("/2/users/{CAROL}/public_keys"))
            .await
            .1,
        json!({"data": []})
    );

    // Conversation key: action_signatures are required.
    let keys_body = v["conversation"]["add_conversation_keys_request"].clone();
    let keys_path = format!("/2/chat/conversations/{BOB}/keys");
    let mut unsigned = keys_body.clone();
    unsigned
        .as_object_mut()
        .unwrap()
        .remove("action_signatures");
    let (status, body) = post(&sb, ALICE, &keys_path, unsigned).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("action_signatures")
    );
    let (status, body) = post(
        &sb,
        CAROL,
        &format!("/2/chat/conversations/{ALICE}-{BOB}/keys"),
        keys_body.clone(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&sb, ALICE, &keys_path, keys_body.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["conversation_id"], CONVERSATION);
    assert_eq!(body["data"]["sequence_id"].as_str().unwrap().len(), 19);

    // The chatxdk message is relayed; the same message_id again is the same event, once.
    let send_path = format!("/2/chat/conversations/{BOB}/messages");
    let send_body = v["message"]["send_message_request"].clone();
    let (status, first) = post(&sb, ALICE, &send_path, send_body.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(
        &sb,
        ALICE,
        &format!("/2/chat/conversations/{ALICE}-{BOB}/messages"),
        send_body.clone(),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    let relayed = STANDARD
        .decode(first["data"]["encoded_message_event"].as_str().unwrap())
        .unwrap();
    let event = thrift::parse_struct(&relayed).unwrap();
    assert_eq!(event.string(2), send_body["message_id"].as_str());
    assert_eq!(event.string(3), Some(ALICE));
    assert_eq!(event.string(4), Some(CONVERSATION));
    let messages = || {
        sb.chat_events()
            .into_iter()
            .filter(|e| e.kind == ChatEventKind::Message)
            .count()
    };
    assert_eq!(messages(), 1);

    // Refusals, none stored or delivered.
    let refused = |body: &Value, title: &str| {
        assert_eq!(body["title"], title, "{body}");
        assert_eq!(body["status"], 400);
    };
    // Signed with another key (the right string, the wrong signer).
    let create = STANDARD
        .decode(send_body["encoded_message_create_event"].as_str().unwrap())
        .unwrap();
    let contents = thrift::parse_struct(&create)
        .unwrap()
        .binary(100)
        .unwrap()
        .to_vec();
    let mallory_mid = "0b0b0b0b-1111-4222-8333-444444444444";
    let signed = format!(
        "MessageCreateEvent,{mallory_mid},{ALICE},{CONVERSATION},{},{}",
        v["conversation"]["conversation_key_version"]
            .as_str()
            .unwrap(),
        STANDARD_NO_PAD.encode(&contents)
    );
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let mallory =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let signature = mallory.sign(&rng, signed.as_bytes()).unwrap();
    let forged_signature = Writer::new()
        .string(1, &STANDARD_NO_PAD.encode(signature.as_ref()))
        .string(2, alice["public_key_version"].as_str().unwrap())
        .string(3, "7")
        .finish();
    let mut other_key = send_body.clone();
    other_key["message_id"] = json!(mallory_mid);
    other_key["encoded_message_event_signature"] = json!(STANDARD.encode(forged_signature));
    let (status, body) = post(&sb, ALICE, &send_path, other_key).await;
    assert_eq!(status, 400);
    refused(&body, "INVALID_SENDER_SIGNATURE");
    // chatxdk's signature, another message_id.
    let mut forged_id = send_body.clone();
    forged_id["message_id"] = json!(mallory_mid);
    let (status, body) = post(&sb, ALICE, &send_path, forged_id).await;
    assert_eq!(status, 400);
    refused(&body, "INVALID_SENDER_SIGNATURE");
    // Bob cannot send alice's message as his.
    let (status, body) = post(
        &sb,
        BOB,
        &format!("/2/chat/conversations/{ALICE}/messages"),
        {
            let mut as_bob = send_body.clone();
            as_bob["message_id"] = json!("b0b0b0b0-1111-4222-8333-444444444444");
            as_bob
        },
    )
    .await;
    assert_eq!(status, 400);
    refused(&body, "INVALID_SENDER_SIGNATURE");
    // A key version the conversation does not have (the deterministic message's).
    let (status, body) = post(
        &sb,
        ALICE,
        &send_path,
        v["deterministic"]["message"]["send_message_request"].clone(),
    )
    .await;
    assert_eq!(status, 400);
    refused(&body, "Invalid Request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1768236281331 is not a key version"),
        "{body}"
    );
    // A signature key version alice never registered.
    let mut unknown_version = send_body.clone();
    unknown_version["message_id"] = json!("c0c0c0c0-1111-4222-8333-444444444444");
    unknown_version["encoded_message_event_signature"] = json!(
        STANDARD.encode(
            Writer::new()
                .string(1, &STANDARD_NO_PAD.encode(signature.as_ref()))
                .string(2, "1")
                .string(3, "7")
                .finish()
        )
    );
    let (status, body) = post(&sb, ALICE, &send_path, unknown_version).await;
    assert_eq!(status, 400);
    refused(&body, "INVALID_SENDER_SIGNATURE");
    assert_eq!(messages(), 1);
    let records: Vec<(XOp, u16)> = sb
        .x_requests()
        .iter()
        .filter(|r| r.op == XOp::ChatSendMessage)
        .map(|r| (r.op, r.status))
        .collect();
    assert_eq!(records.iter().filter(|(_, s)| *s == 400).count(), 5);

    // Exactly one chat.received reached the webhook.
    settle(&sb, &rx, 1).await;
    let received: Vec<Value> = posted(&rx)
        .into_iter()
        .filter(|b| b["data"]["event_type"] == "chat.received")
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0]["data"]["payload"]["id"],
        send_body["message_id"]
    );

    // Media: participants only.
    let ciphertext: Vec<u8> = (0..3000u32).map(|i| (i * 31 % 256) as u8).collect();
    let (status, init) = post(
        &sb,
        ALICE,
        "/2/chat/media/upload/initialize",
        json!({"conversation_id": CONVERSATION, "total_bytes": 3000}),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let session = init["data"]["session_id"].as_str().unwrap().to_owned();
    let key = init["data"]["media_hash_key"].as_str().unwrap().to_owned();
    assert_eq!(init["data"]["conversation_id"], CONVERSATION);
    let append = format!("/2/chat/media/upload/{session}/append");
    for (index, part) in ciphertext.chunks(2000).enumerate().rev() {
        let (status, body) = post(
            &sb,
            ALICE,
            &append,
            json!({
                "conversation_id": format!("{ALICE}-{BOB}"),
                "media_hash_key": key,
                "segment_index": index,
                "media": STANDARD.encode(part),
            }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let finalize = format!("/2/chat/media/upload/{session}/finalize");
    let (status, body) = post(
        &sb,
        ALICE,
        &finalize,
        json!({"conversation_id": CONVERSATION, "media_hash_key": key, "num_parts": 3}),
    )
    .await;
    assert_eq!(status, 400, "a missing part: {body}");
    let (status, body) = post(
        &sb,
        ALICE,
        &finalize,
        json!({"conversation_id": CONVERSATION, "media_hash_key": key, "num_parts": "2"}),
    )
    .await;
    assert_eq!((status, body), (200, json!({"data": {"success": true}})));
    let token = |user: &str| sb.issue_oauth2_token(user, &SCOPES).access_token;
    let download = |user: String, path: String| {
        let url = format!("{}{path}", sb.base_url());
        async move { http().get(url).bearer_auth(user).send().await.unwrap() }
    };
    let resp = download(token(BOB), format!("/2/chat/media/{ALICE}-{BOB}/{key}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), ciphertext);
    let resp = download(token(CAROL), format!("/2/chat/media/{ALICE}-{BOB}/{key}")).await;
    assert_eq!(resp.status(), 403);
    let resp = download(token(CAROL), format!("/2/chat/media/{ALICE}/{key}")).await;
    assert_eq!(
        resp.status(),
        404,
        "carol's own conversation with alice has no such media"
    );
    let resp = download(token(BOB), format!("/2/chat/media/{ALICE}:{BOB}/abc123")).await;
    assert_eq!(resp.status(), 404);
    let stored = http()
        .get(format!(
            "{}/_sandbox/x/chat/media/{key}/content",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.bytes().await.unwrap().to_vec(), ciphertext);
    let media = sb.chat_media();
    assert_eq!(
        (
            media[0].segments,
            media[0].size,
            media[0].uploader_id.as_str()
        ),
        (2, 3000, ALICE)
    );
}

/// Faults on the chat routes: a send refused before it is stored, and one whose answer is lost
/// after it was stored (a retry then gets the same event, delivered once).
#[tokio::test]
async fn chat_faults_before_and_after_the_send_is_stored() {
    let (sb, rx) = sandbox_with_webhook().await;
    let hook = sb.webhook().unwrap().id;
    sb.subscribe_activity("chat.received", BOB, Some(&hook), None)
        .unwrap();
    let v = vectors();
    for (user, who) in [(ALICE, "alice"), (BOB, "bob")] {
        let body = v["participants"][who]["registration_request"].clone();
        assert_eq!(
            post(&sb, user, &format!("/2/users/{user}/public_keys"), body)
                .await
                .0,
            200
        );
    }
    let keys = v["conversation"]["add_conversation_keys_request"].clone();
    assert_eq!(
        post(
            &sb,
            ALICE,
            &format!("/2/chat/conversations/{BOB}/keys"),
            keys
        )
        .await
        .0,
        200
    );
    let send_path = format!("/2/chat/conversations/{BOB}/messages");
    let send_body = v["message"]["send_message_request"].clone();

    sb.fail_next(FaultOp::ChatSendMessage, 1, Fault::status(503));
    let (status, _) = post(&sb, ALICE, &send_path, send_body.clone()).await;
    assert_eq!(status, 503);
    assert!(
        sb.chat_events()
            .iter()
            .all(|e| e.kind == ChatEventKind::KeyChange)
    );

    sb.set_fault_profile(
        FaultOp::ChatSendMessage,
        FaultProfile::drops(1.0, DropMode::After),
    )
    .unwrap();
    let token = sb.issue_oauth2_token(ALICE, &SCOPES).access_token;
    let lost = http()
        .post(format!("{}{send_path}", sb.base_url()))
        .bearer_auth(&token)
        .json(&send_body)
        .send()
        .await;
    assert!(lost.is_err(), "the connection closes without an answer");
    let stored: Vec<String> = sb
        .chat_events()
        .into_iter()
        .filter(|e| e.kind == ChatEventKind::Message)
        .map(|e| e.encoded_event)
        .collect();
    assert_eq!(stored.len(), 1, "stored before the answer was lost");
    sb.clear_faults();
    let (status, retried) = post(&sb, ALICE, &send_path, send_body).await;
    assert_eq!(status, 201);
    assert_eq!(retried["data"]["encoded_message_event"], stored[0].as_str());
    settle(&sb, &rx, 1).await;
    assert_eq!(posted(&rx).len(), 1, "delivered once");
    let stats = sb.stats().op(FaultOp::ChatSendMessage);
    assert_eq!(
        (
            stats.calls,
            stats.dropped,
            stats.status_5xx,
            stats.status_2xx
        ),
        (3, 1, 1, 1)
    );
}
