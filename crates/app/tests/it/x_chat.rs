//! Customers on encrypted X Chat, end to end: the bridge's keys made and registered by
//! `x chat-keys init`, a customer played by X's own Chat SDK (`scripts/xchat_customer.py` on the
//! `chatxdk` wheel, in `./.venv`) writing to the business through the sandbox's X Chat, the
//! bridge opening it into Connect, and the agent's answers read back by X's SDK with signatures
//! checked. Every encryption and decryption on the customer's side is X's code, never the bridge's.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xdm_app::commands::x::chat_keys::{self, ChatKeysCommand, KeepArgs};
use xdm_app::config::Config;
use xdm_app::sandbox_link::{LinkedBridge, bridge_config};
use xdm_app::x_link::XLink;
use xdm_core::ports::Store;
use xdm_sandbox::{
    ChatEventKind, ContactView, MediaFile, Sandbox, SandboxConfig, SandboxHandle, SandboxUser,
};

use super::helpers::*;

/// A bridge with X Chat keys, and a chatxdk customer.
struct ChatApp {
    app: TestApp,
    business: String,
    customer: Customer,
    dir: tempfile::TempDir,
    blob: String,
}

struct Customer {
    state: PathBuf,
}

impl Customer {
    async fn init(sandbox: &SandboxHandle, dir: &Path) -> Self {
        let token = sandbox
            .issue_oauth2_token(CUSTOMER, &CHAT_SCOPES)
            .access_token;
        let state = dir.join("customer.json");
        chatxdk_customer(&[
            "init",
            "--api",
            &sandbox.base_url(),
            "--token",
            &token,
            "--user-id",
            CUSTOMER,
            "--state",
            state.to_str().unwrap(),
        ])
        .await
        .unwrap();
        Self { state }
    }

    async fn send(&self, to: &str, text: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "send",
            "--state",
            self.state.to_str().unwrap(),
            "--to",
            to,
            "--text",
            text,
        ];
        args.extend_from_slice(extra);
        chatxdk_customer(&args).await.unwrap()
    }

    /// The business's messages as X's SDK decrypts them (signatures required), media saved.
    async fn received_from(&self, business: &str, media_dir: &Path) -> Vec<Value> {
        let out = chatxdk_customer(&[
            "receive",
            "--state",
            self.state.to_str().unwrap(),
            "--peer",
            business,
            "--media-dir",
            media_dir.to_str().unwrap(),
        ])
        .await
        .unwrap();
        assert_eq!(out["errors"], json!({}), "chatxdk refused something: {out}");
        out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender_id"] == business)
            .cloned()
            .collect()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bridge's keys as `xdm-connect x chat-keys init` makes them: registered with the
/// sandbox's X as the business account, kept in a configuration file; returns (blob, version).
async fn chat_keys_init(sandbox: &SandboxHandle, dir: &Path) -> (String, String) {
    let config = bridge_config(
        sandbox,
        "127.0.0.1:0",
        &format!("sqlite:{}", dir.join("cli.db").display()),
    )
    .unwrap();
    let link = XLink::open(config).await.unwrap();
    let file = dir.join("xdm-connect.toml");
    chat_keys::run(
        Some(&file),
        &link,
        ChatKeysCommand::Init(KeepArgs {
            account: chat_keys::AccountArg { account: None },
            print: false,
        }),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the key blob's file is the owner's only"
        );
    }
    let doc: toml::Table = text.parse().unwrap();
    let x = doc["x"].as_table().unwrap();
    (
        x["chat_keys"].as_str().unwrap().to_owned(),
        x["chat_key_version"].as_str().unwrap().to_owned(),
    )
}

async fn spawn_chat_app() -> ChatApp {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let business = sandbox.config().x.business.id.clone();
    let (blob, version) = chat_keys_init(&sandbox, dir.path()).await;
    // X serves the registered keys under that version.
    let served = sandbox.chat_public_keys(&business);
    assert_eq!(served.len(), 1, "{served:?}");
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let running = Box::pin(LinkedBridge::start(
        &sandbox,
        &store,
        |config: &mut Config| {
            config.delivery.reorder_window_ms = 150;
            config.delivery.outbound_reorder_window_ms = 150;
            config.delivery.retry_base_ms = 50;
            config.x.chat_keys = Some(secrecy::SecretString::from(blob.clone()));
            config.x.chat_key_version = Some(version.clone());
        },
    ))
    .await
    .unwrap();
    sandbox.add_user(SandboxUser {
        followers_count: 22,
        ..SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper")
    });
    running.link_x_webhook(&sandbox).await.unwrap();
    let webhook = sandbox.webhooks().into_iter().next().unwrap();
    sandbox
        .subscribe_activity("chat.received", &business, Some(&webhook.id), None)
        .unwrap();
    let customer = Customer::init(&sandbox, dir.path()).await;
    let app = TestApp::from_running(sandbox, running);
    ChatApp {
        app,
        business,
        customer,
        dir,
        blob,
    }
}

fn agent_texts(c: &ContactView) -> Vec<String> {
    c.transcript
        .iter()
        .filter(|i| i.item.participant_role == Some(xdm_sandbox::ParticipantRole::Customer))
        .filter_map(|i| i.item.content.clone())
        .collect()
}

#[tokio::test]
async fn an_x_chat_customer_and_an_agent_talk_end_to_end_encrypted() {
    let t = Box::pin(spawn_chat_app()).await;
    let app = &t.app;

    // The customer writes on X Chat: X's SDK makes the conversation key and seals the text.
    let first = t
        .customer
        .send(&t.business, "Hola, ¿dónde está mi pedido? 📦", &[])
        .await;
    let chat = app
        .wait_contact("the customer's X Chat message", |_, m| {
            m.iter().any(|t| t == "Hola, ¿dónde está mi pedido? 📦")
        })
        .await;
    assert_eq!(chat.attributes["x_channel"], "chat");
    assert_eq!(chat.attributes["customerId"], CUSTOMER);

    // A photo, sealed by X's SDK and uploaded in pieces.
    let mut photo = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    photo.extend((0..60_000u32).map(|i| (i * 31 % 251) as u8));
    let photo_path = t.dir.path().join("receipt-photo.png");
    std::fs::write(&photo_path, &photo).unwrap();
    t.customer
        .send(
            &t.business,
            "la foto",
            &[
                "--media",
                photo_path.to_str().unwrap(),
                "--media-type",
                "image",
            ],
        )
        .await;
    let attachment =
        app.sandbox
            .wait_until("the photo in Connect", WAIT, |_| {
                app.sandbox.attachments().into_iter().find(|a| {
                    a.role == xdm_sandbox::ParticipantRole::Customer && a.sha256.is_some()
                })
            })
            .await
            .unwrap();
    assert_eq!(
        attachment.sha256.as_deref(),
        Some(sha256_hex(&photo).as_str())
    );
    assert_eq!(attachment.size, Some(photo.len() as u64));
    assert_eq!(attachment.content_type, "image/png");
    let chat = app
        .wait_contact("the photo's caption", |_, m| {
            m.iter().any(|t| t == "la foto")
        })
        .await;
    assert_eq!(app.contacts().len(), 1, "one chat for the customer");

    // The agent answers with markdown and a PNG: the customer reads both with X's SDK.
    let contact = chat.contact_id.clone();
    app.sandbox.agent_accept(&contact, "Enrique").unwrap();
    app.sandbox
        .agent_send(
            &contact,
            "Your order ships **today**: [track it](https://t.example/42)",
            "text/markdown",
        )
        .unwrap();
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    png.extend((0..3_000u32).map(|i| (i % 7) as u8));
    let file = app
        .sandbox
        .add_file(MediaFile::bytes("label.png", "image/png", png.clone()));
    app.sandbox
        .agent_send_attachment(&contact, "label.png", "image/png", &file.file_id)
        .unwrap();
    let media_dir = t.dir.path().join("received");
    std::fs::create_dir_all(&media_dir).unwrap();
    let mut from_business = Vec::new();
    for _ in 0..100 {
        from_business = t.customer.received_from(&t.business, &media_dir).await;
        if from_business.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(from_business.len(), 2, "{from_business:?}");
    assert!(from_business.iter().all(|m| m["verified"] == true));
    // (The two items may carry the same AbsoluteTime: either may be first.)
    let text = from_business
        .iter()
        .find(|m| m["attachments"].as_array().is_none_or(Vec::is_empty))
        .unwrap();
    assert_eq!(
        text["text"],
        "Your order ships today: track it (https://t.example/42)"
    );
    let with_file = from_business
        .iter()
        .find(|m| m["attachments"].as_array().is_some_and(|a| !a.is_empty()))
        .unwrap();
    let received = &with_file["attachments"][0];
    assert_eq!(received["sha256"], sha256_hex(&png));
    assert_eq!(received["size"], png.len());
    // Nothing went the legacy DM way.
    assert!(app.sandbox.sent_dms().is_empty());

    // X delivers the first message again: it reaches the chat once.
    let events = app.sandbox.chat_events();
    let original = events
        .iter()
        .find(|e| e.message_id == first["message_id"].as_str().unwrap())
        .unwrap();
    let key_change = events
        .iter()
        .find(|e| e.kind == ChatEventKind::KeyChange)
        .unwrap();
    let payload = |encoded: &str, id: &str| {
        json!({
            "id": id, "sender_id": CUSTOMER, "created_at_msec": original.created_at_msec.to_string(),
            "conversation_id": original.conversation_id, "encoded_event": encoded,
            "conversation_key_version": original.conversation_key_version,
            "conversation_key_change_event": key_change.encoded_event,
        })
    };
    app.sandbox
        .deliver_chat_raw(
            &t.business,
            "chat.received",
            payload(&original.encoded_event, &original.message_id),
        )
        .await
        .unwrap();

    // A forged message (another id, altered contents, the customer's signature no longer
    // covering it) never reaches the agent as text.
    let forged_id = "00000000-1111-4222-8333-444444444444";
    let mut raw = STANDARD.decode(&original.encoded_event).unwrap();
    let at = raw
        .windows(36)
        .position(|w| w == original.message_id.as_bytes())
        .unwrap();
    raw[at..at + 36].copy_from_slice(forged_id.as_bytes());
    app.sandbox
        .deliver_chat_raw(
            &t.business,
            "chat.received",
            payload(&STANDARD.encode(&raw), forged_id),
        )
        .await
        .unwrap();
    let chat = app
        .wait_contact("the note about the forged message", |_, m| {
            m.iter()
                .any(|t| t.contains("could not be verified or decrypted"))
        })
        .await;
    app.settle().await;
    let texts = agent_texts(&app.contacts()[0]);
    assert_eq!(
        texts
            .iter()
            .filter(|t| *t == "Hola, ¿dónde está mi pedido? 📦")
            .count(),
        1,
        "the redelivery reached the chat once: {texts:?}"
    );
    assert_eq!(chat.contact_id, contact);

    // The customer's app makes a new conversation key mid-conversation: followed.
    t.customer
        .send(&t.business, "después de cambiar la clave", &["--new-key"])
        .await;
    app.wait_contact("the message under the new key", |_, m| {
        m.iter().any(|t| t == "después de cambiar la clave")
    })
    .await;
    app.sandbox
        .agent_send(&contact, "Got it", "text/plain")
        .unwrap();
    let mut last = Vec::new();
    for _ in 0..100 {
        last = t.customer.received_from(&t.business, &media_dir).await;
        if last.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(last[2]["text"], "Got it");
    let versions: Vec<String> = app
        .sandbox
        .chat_events()
        .iter()
        .filter(|e| e.kind == ChatEventKind::Message && e.sender_id == t.business)
        .map(|e| e.conversation_key_version.clone())
        .collect();
    assert_eq!(versions.len(), 3);
    assert_ne!(
        versions[2], versions[0],
        "the reply after the rotation uses the new key"
    );

    // The bridge's key blob is X's own format: X's SDK imports it and reads the same
    // conversation as the business.
    let as_business = t.dir.path().join("business.json");
    std::fs::write(
        &as_business,
        json!({
            "api": app.sandbox.base_url(),
            "token": app.sandbox.issue_oauth2_token(&t.business, &CHAT_SCOPES).access_token,
            "user_id": t.business,
            "blob": t.blob,
            "version": app.sandbox.chat_public_keys(&t.business)[0].public_key_version,
        })
        .to_string(),
    )
    .unwrap();
    let read = chatxdk_customer(&[
        "receive",
        "--state",
        as_business.to_str().unwrap(),
        "--peer",
        CUSTOMER,
    ])
    .await
    .unwrap();
    assert_eq!(read["errors"], json!({}), "{read}");
    let customer_said: Vec<&str> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender_id"] == CUSTOMER)
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        customer_said,
        vec![
            "Hola, ¿dónde está mi pedido? 📦",
            "la foto",
            "después de cambiar la clave"
        ]
    );

    // No key material in the store, in /metrics or in the served keys' answers.
    let blob_bytes = STANDARD.decode(&t.blob).unwrap();
    let identity_hex: String = blob_bytes[..32]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let db = std::fs::read(t.dir.path().join("bridge.db")).unwrap();
    let db_text = String::from_utf8_lossy(&db);
    assert!(!db_text.contains(&t.blob) && !db_text.contains(&identity_hex));
    assert!(
        !db.windows(32).any(|w| w == &blob_bytes[..32]),
        "the identity key's bytes are not in the store"
    );
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains(&t.blob));
    let record = app
        .bridge
        .store()
        .record(&format!("x-chat/{}/{CUSTOMER}", t.business))
        .await
        .unwrap()
        .unwrap();
    assert!(record.value.contains("key_version"));
    t.app.stop().await;
}

#[tokio::test]
async fn a_customer_who_moves_from_dms_to_x_chat_stays_in_the_same_chat() {
    let t = Box::pin(spawn_chat_app()).await;
    let app = &t.app;
    let chat = app.open_chat("first, as a legacy DM").await;
    assert_eq!(chat.attributes["x_channel"], "dm");
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    app.sandbox
        .agent_send(&chat.contact_id, "Hello on DMs", "text/plain")
        .unwrap();
    app.wait_dms(1).await;

    // X moved the conversation to X Chat: the customer's next message is encrypted.
    t.customer.send(&t.business, "now on X Chat", &[]).await;
    let chat = app
        .wait_contact("the X Chat message in the same chat", |c, m| {
            m.iter().any(|t| t == "now on X Chat")
                && c.attributes.get("x_channel").map(String::as_str) == Some("chat")
        })
        .await;
    assert_eq!(app.contacts().len(), 1, "one chat across both channels");
    assert_eq!(
        customer_messages(&chat),
        vec!["first, as a legacy DM", "now on X Chat"]
    );

    // The agent's next answer goes where the customer now is.
    app.sandbox
        .agent_send(&chat.contact_id, "Answered on X Chat", "text/plain")
        .unwrap();
    let dir = t.dir.path().join("received");
    std::fs::create_dir_all(&dir).unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got = t.customer.received_from(&t.business, &dir).await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["text"], "Answered on X Chat");
    assert_eq!(got[0]["verified"], true);
    app.settle().await;
    assert_eq!(
        app.dm_texts(),
        vec!["Hello on DMs"],
        "no legacy DM after the move"
    );
    t.app.stop().await;
}
