//! What an X Chat message costs the bridge in CPU, with the messages X's SDK made
//! (`testdata/xchat-vectors.json`): opening a customer's message (the key change's signature
//! checked and the key unwrapped — one ECDH —, the message's signature checked, the contents
//! opened) and sealing and signing a reply. docs/performance.md, "X Chat".
//!
//! `cargo bench -p xdm-xchat --bench open`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use xdm_xchat::events::{Sender, parse_event, text_message_with};
use xdm_xchat::keys::parse_public_key;
use xdm_xchat::thrift::message_text;
use xdm_xchat::{ChatKeys, ConversationKey};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/xchat-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    path.split('.').fold(v, |v, k| &v[k]).as_str().unwrap()
}

fn xchat(c: &mut Criterion) {
    let v = vectors();
    let bob = ChatKeys::from_blob(
        &STANDARD
            .decode(text(&v, "participants.bob.key_blob_b64"))
            .unwrap(),
    )
    .unwrap();
    let bob_version = text(&v, "participants.bob.public_key_version");
    let alice_signing = parse_public_key(
        &STANDARD
            .decode(text(&v, "participants.alice.signing_key_entry.public_key"))
            .unwrap(),
    )
    .unwrap();
    let payload = &v["message"]["webhook_chat_received_example"]["data"]["payload"];
    let encoded = payload["encoded_event"].as_str().unwrap();
    let key_change = payload["conversation_key_change_event"].as_str().unwrap();
    let bob_id = "2222222222222222222";

    let mut group = c.benchmark_group("x chat");
    group.bench_function("open a customer's message (key change + message)", |b| {
        b.iter(|| {
            let change = parse_event(key_change).unwrap();
            let (version, key) = change
                .open_key_change(&bob, bob_id, Some(bob_version), &alice_signing)
                .unwrap();
            let event = parse_event(encoded).unwrap();
            let plaintext = event
                .open_message(&alice_signing, |v| (v == version).then(|| key.clone()))
                .unwrap();
            message_text(&plaintext).unwrap()
        })
    });
    let change = parse_event(key_change).unwrap();
    let (version, key): (String, ConversationKey) = change
        .open_key_change(&bob, bob_id, Some(bob_version), &alice_signing)
        .unwrap();
    let event = parse_event(encoded).unwrap();
    group.bench_function("open the message alone (key known)", |b| {
        b.iter(|| {
            let plaintext = event
                .open_message(&alice_signing, |v| (v == version).then(|| key.clone()))
                .unwrap();
            message_text(&plaintext).unwrap()
        })
    });
    let sender = Sender {
        keys: &bob,
        user_id: bob_id,
        public_key_version: bob_version,
    };
    let reply = "Your order ships today: track it (https://t.example/42)";
    group.bench_function("seal and sign a reply", |b| {
        b.iter(|| {
            text_message_with(
                sender,
                "1111111111111111111:2222222222222222222",
                &version,
                &key,
                "0b6f3c1e-5d2a-4c3b-9e8f-7a6b5c4d3e2f",
                reply,
                [7; 24],
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, xchat);
criterion_main!(benches);
