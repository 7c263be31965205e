//! X Chat's primitives against the vectors made with X's own Chat SDK (`chatxdk` 0.5.2,
//! `scripts/xchat_vectors.py` → `testdata/xchat-vectors.json`): what X's SDK wrapped, sealed and
//! signed opens and verifies here, and what this crate makes from the same inputs is byte for
//! byte what X's SDK accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::Value;
use xdm_xchat::keys::{parse_public_key, public_key_der};
use xdm_xchat::signatures::{self, SIGNATURE_VERSION};
use xdm_xchat::{ChatKeys, ConversationKey, XChatError, thrift, wrap};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/xchat-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

fn hex(v: &Value, path: &str) -> Vec<u8> {
    hex::decode(s(v, path)).unwrap()
}

fn b64(v: &Value, path: &str) -> Vec<u8> {
    let text = s(v, path);
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .unwrap()
}

fn participant(v: &Value, who: &str) -> ChatKeys {
    ChatKeys::from_blob(&b64(v, &format!("participants.{who}.key_blob_b64"))).unwrap()
}

fn key32(bytes: Vec<u8>) -> ConversationKey {
    ConversationKey::from_bytes(bytes.try_into().unwrap())
}

#[test]
fn the_sdks_key_blob_imports_and_exports_to_the_same_bytes_and_public_keys() {
    let v = vectors();
    let alice = participant(&v, "alice");
    assert_eq!(
        *alice.to_blob(),
        b64(&v, "participants.alice.key_blob_b64"),
        "export is the SDK's import"
    );
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    assert_eq!(
        alice.identity_public().to_encoded_point(false).as_bytes(),
        b64(&v, "participants.alice.identity_public_sec1_b64")
    );
    assert_eq!(
        public_key_der(&alice.signing_public()),
        b64(&v, "participants.alice.signing_public_spki_b64")
    );
    assert_eq!(
        parse_public_key(&b64(&v, "participants.alice.identity_public_spki_b64")).unwrap(),
        alice.identity_public()
    );
    assert!(
        !format!("{alice:?}").contains(s(&v, "participants.alice.identity_private_scalar_hex"))
    );
    for bad in [&[0u8; 32][..], &[0u8; 64][..], &[1u8; 65][..]] {
        assert!(matches!(
            ChatKeys::from_blob(bad),
            Err(XChatError::KeyBlob(_))
        ));
    }
    // The registration's key binding: the identity public key (DER) signed by the signing key,
    // byte for byte as X's SDK signs it, and checked the way a participant's keys are trusted.
    let binding = signatures::sign_key_binding(&alice);
    assert_eq!(
        binding,
        s(&v, "participants.alice.identity_public_key_signature_b64")
    );
    let bob = participant(&v, "bob");
    let bob_der = b64(&v, "participants.bob.identity_public_spki_b64");
    let bob_binding = s(&v, "participants.bob.identity_public_key_signature_b64");
    signatures::verify_key_binding(&bob.signing_public(), &bob_der, bob_binding).unwrap();
    assert_eq!(
        signatures::verify_key_binding(&alice.signing_public(), &bob_der, bob_binding),
        Err(XChatError::Signature)
    );
}

#[test]
fn a_conversation_key_wraps_byte_for_byte_and_the_sdks_wraps_open() {
    let v = vectors();
    let bob = participant(&v, "bob");
    let key = key32(hex(&v, "deterministic.conversation_key_hex"));
    // Deterministic: a fixed ephemeral key gives the SDK-accepted bytes.
    let ephemeral = p256::SecretKey::from_slice(&hex(
        &v,
        "deterministic.ecies_for_bob.ephemeral_private_scalar_hex",
    ))
    .unwrap();
    let wrapped = wrap::wrap_with(&key, &bob.identity_public(), &ephemeral);
    assert_eq!(
        wrapped,
        b64(&v, "deterministic.ecies_for_bob.wrapped_key_b64")
    );
    assert_eq!(wrapped.len(), wrap::WRAPPED_LEN);
    assert_eq!(wrap::unwrap(&bob, &wrapped).unwrap(), key);
    // A fresh wrap opens for its recipient only.
    let fresh = wrap::wrap(&key, &bob.identity_public());
    assert_ne!(fresh, wrapped);
    assert_eq!(wrap::unwrap(&bob, &fresh).unwrap(), key);
    assert_eq!(
        wrap::unwrap(&participant(&v, "alice"), &fresh),
        Err(XChatError::Unwrap)
    );
    let mut tampered = fresh.clone();
    tampered[100] ^= 1;
    assert_eq!(wrap::unwrap(&bob, &tampered), Err(XChatError::Unwrap));

    // What X's SDK wrapped for bob (its own random ephemeral key) opens here.
    let sdk_wrapped =
        &v["conversation"]["add_conversation_keys_request"]["conversation_participant_keys"];
    let for_bob = sdk_wrapped
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == "2222222222222222222")
        .unwrap();
    let bytes = STANDARD
        .decode(for_bob["encrypted_conversation_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        wrap::unwrap(&bob, &bytes).unwrap(),
        key32(hex(&v, "conversation.conversation_key_hex"))
    );
}

#[test]
fn a_text_message_seals_signs_and_frames_as_the_sdk_does() {
    let v = vectors();
    let alice = participant(&v, "alice");
    let d = &v["deterministic"];
    let key = key32(hex(&v, "deterministic.conversation_key_hex"));
    let plaintext = thrift::text_message(s(d, "message.text"));
    assert_eq!(plaintext, hex(d, "message.plaintext_thrift_hex"));
    assert_eq!(
        thrift::message_text(&plaintext).unwrap().as_deref(),
        Some(s(d, "message.text"))
    );
    let nonce: [u8; 24] = hex(d, "message.xsalsa20_nonce_hex").try_into().unwrap();
    let sealed = key.seal_with_nonce(&plaintext, nonce);
    assert_eq!(sealed, hex(d, "message.contents_hex"));
    assert_eq!(key.open(&sealed).unwrap(), plaintext);

    let version = s(d, "conversation_key_version");
    let payload = signatures::message_payload(
        s(d, "message.message_id"),
        "1111111111111111111",
        s(d, "conversation_id"),
        version,
        &sealed,
    )
    .unwrap();
    assert_eq!(payload, s(d, "message.signed_payload"));
    let signature = signatures::sign(&alice, &payload);
    assert_eq!(
        signature,
        s(d, "message.signature_b64_no_pad"),
        "RFC 6979, as X's SDK"
    );
    signatures::verify(&alice.signing_public(), &payload, &signature).unwrap();

    // The send-message request X's SDK builds, byte for byte.
    let request = &d["message"]["send_message_request"];
    let event = thrift::message_create_event(&sealed, version, true);
    assert_eq!(
        STANDARD.encode(&event),
        request["encoded_message_create_event"]
    );
    let framed = thrift::message_event_signature(
        &signature,
        s(&v, "participants.alice.public_key_version"),
        SIGNATURE_VERSION,
    );
    assert_eq!(
        STANDARD.encode(&framed),
        request["encoded_message_event_signature"]
    );
}

#[test]
fn what_the_sdk_sealed_and_signed_opens_and_verifies_and_nothing_altered_does() {
    let v = vectors();
    let alice = participant(&v, "alice");
    let m = &v["message"];
    let key = key32(hex(&v, "conversation.conversation_key_hex"));
    let contents = hex(m, "contents_hex");
    let plaintext = key.open(&contents).unwrap();
    assert_eq!(
        thrift::message_text(&plaintext).unwrap().as_deref(),
        Some(s(m, "text"))
    );
    let signature = s(m, "send_payload.encoded_event_signature");
    let framed = thrift::read_struct(&STANDARD.decode(signature).unwrap()).unwrap();
    let raw = framed.field(1).and_then(thrift::Value::as_str).unwrap();
    signatures::verify(&alice.signing_public(), s(m, "signed_payload"), raw).unwrap();
    assert_eq!(framed.field(3).and_then(thrift::Value::as_str), Some("7"));

    // Another sender, another payload, another contents: refused.
    let bob = participant(&v, "bob");
    assert_eq!(
        signatures::verify(&bob.signing_public(), s(m, "signed_payload"), raw),
        Err(XChatError::Signature)
    );
    let altered = s(m, "signed_payload").replacen("MessageCreateEvent,", "MessageCreateEvent,x", 1);
    assert_eq!(
        signatures::verify(&alice.signing_public(), &altered, raw),
        Err(XChatError::Signature)
    );
    let mut tampered = contents.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(key.open(&tampered), Err(XChatError::Open));
    assert_eq!(key.open(&contents[..30]), Err(XChatError::Open));

    // The key change X's SDK signed verifies too (its payload carries the key: never logged).
    let c = &v["conversation"];
    let key_change = signatures::key_change_payload(
        s(c, "signed_payload").split(',').nth(1).unwrap(),
        "1111111111111111111",
        s(c, "conversation_id"),
        s(c, "conversation_key_version"),
        &key,
    )
    .unwrap();
    assert_eq!(key_change, s(c, "signed_payload"));
    assert!(signatures::message_payload("a,b", "1", "1:2", "1", b"x").is_err());
}

#[test]
fn the_server_event_is_read_and_bad_thrift_is_refused() {
    let v = vectors();
    let event = thrift::read_struct(&b64(&v, "deterministic.message.server_event_b64")).unwrap();
    assert_eq!(
        event.field(2).and_then(thrift::Value::as_str),
        Some(s(&v, "deterministic.message.message_id"))
    );
    assert_eq!(
        event.field(4).and_then(thrift::Value::as_str),
        Some(s(&v, "deterministic.conversation_id"))
    );
    for bad in [
        &[0x0b, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff][..], // a 2 GiB string in 4 bytes
        &[0x0c, 0x00, 0x01][..],                         // truncated
        &[0x99, 0x00, 0x01, 0x00][..],                   // unknown type
        &[0x00, 0x00][..],                               // bytes after the struct
    ] {
        assert!(
            matches!(thrift::read_struct(bad), Err(XChatError::Thrift(_))),
            "{bad:?}"
        );
    }
    let deep: Vec<u8> = std::iter::repeat_n([0x0c, 0x00, 0x01], 100)
        .flatten()
        .collect();
    assert!(thrift::read_struct(&deep).is_err());
}

#[test]
fn delivered_events_are_verified_then_opened() {
    use xdm_xchat::events::{self, Detail};
    let v = vectors();
    let alice = participant(&v, "alice");
    let bob = participant(&v, "bob");
    let bob_version = s(&v, "participants.bob.public_key_version");

    // X's SDK's key change, as X delivers it to bob: unwrapped and checked against alice.
    let change = events::parse_event(s(&v, "conversation.key_change_server_event_b64")).unwrap();
    assert_eq!(change.sender_id, "1111111111111111111");
    let (version, key) = change
        .open_key_change(
            &bob,
            "2222222222222222222",
            Some(bob_version),
            &alice.signing_public(),
        )
        .unwrap();
    assert_eq!(version, s(&v, "conversation.conversation_key_version"));
    assert_eq!(key, key32(hex(&v, "conversation.conversation_key_hex")));
    // Signed by someone else: refused, though it unwraps.
    assert_eq!(
        change
            .open_key_change(&bob, "2222222222222222222", None, &bob.signing_public())
            .map(|_| ()),
        Err(XChatError::Signature)
    );
    // Wrapped for another version of bob's key: nothing to unwrap.
    assert_eq!(
        change
            .open_key_change(
                &bob,
                "2222222222222222222",
                Some("1"),
                &alice.signing_public()
            )
            .map(|_| ()),
        Err(XChatError::Unwrap)
    );

    // X's SDK's message, as delivered: verified, then opened with the key of its version.
    let message = events::parse_event(s(&v, "message.server_event_b64")).unwrap();
    assert!(matches!(message.detail, Detail::Message { .. }));
    let plaintext = message
        .open_message(&alice.signing_public(), |ver| {
            (ver == version).then(|| key.clone())
        })
        .unwrap();
    assert_eq!(
        thrift::message_text(&plaintext).unwrap().as_deref(),
        Some(s(&v, "message.text"))
    );
    // The envelope changed (another sender claimed): refused before anything is decrypted.
    let mut forged = message.clone();
    forged.sender_id = "3333333333333333333".into();
    let mut asked_for_key = false;
    assert_eq!(
        forged.open_message(&alice.signing_public(), |_| {
            asked_for_key = true;
            Some(key.clone())
        }),
        Err(XChatError::Signature)
    );
    assert!(
        !asked_for_key,
        "no key is looked up for an event that does not verify"
    );
    // An unknown key version: verified, but nothing to open it with.
    assert_eq!(
        message.open_message(&alice.signing_public(), |_| None),
        Err(XChatError::Unwrap)
    );
}

#[test]
fn a_sent_text_message_is_the_request_x_sdk_builds() {
    use xdm_xchat::events::{Sender, text_message_with};
    let v = vectors();
    let alice = participant(&v, "alice");
    let d = &v["deterministic"];
    let sent = text_message_with(
        Sender {
            keys: &alice,
            user_id: "1111111111111111111",
            public_key_version: s(&v, "participants.alice.public_key_version"),
        },
        s(d, "conversation_id"),
        s(d, "conversation_key_version"),
        &key32(hex(&v, "deterministic.conversation_key_hex")),
        s(d, "message.message_id"),
        s(d, "message.text"),
        hex(d, "message.xsalsa20_nonce_hex").try_into().unwrap(),
    )
    .unwrap();
    let request = &d["message"]["send_message_request"];
    assert_eq!(sent.message_id, request["message_id"]);
    assert_eq!(
        sent.encoded_message_create_event,
        request["encoded_message_create_event"]
    );
    assert_eq!(
        sent.encoded_message_event_signature,
        request["encoded_message_event_signature"]
    );
}

#[test]
fn the_registration_is_the_one_x_sdk_builds_for_the_same_keys() {
    let v = vectors();
    for who in ["alice", "bob"] {
        let keys = participant(&v, who);
        let reg = xdm_xchat::registration::registration(&keys);
        let want = format!("participants.{who}.registration_request.public_key");
        assert_eq!(reg.public_key, s(&v, &format!("{want}.public_key")));
        assert_eq!(
            reg.signing_public_key,
            s(&v, &format!("{want}.signing_public_key"))
        );
        assert_eq!(
            reg.identity_public_key_signature,
            s(&v, &format!("{want}.identity_public_key_signature"))
        );
        assert_eq!(
            reg.signing_public_key_signature,
            s(&v, &format!("{want}.signing_public_key_signature"))
        );
        assert_eq!(
            reg.public_key_fingerprint,
            s(&v, &format!("{want}.public_key_fingerprint"))
        );
        assert_eq!(
            reg.registration_method,
            s(&v, &format!("{want}.registration_method"))
        );
    }
}

#[test]
fn files_the_sdk_and_libsodium_sealed_open_and_ours_have_their_layout() {
    use xdm_xchat::media::{MediaOpener, MediaSealer, sealed_len};
    let v = vectors();
    let key = key32(hex(&v, "media.conversation_key_hex"));
    let plaintext: Vec<u8> = (0..2500usize).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    for which in [
        "chatxdk_encrypt_stream_b64",
        "independent_libsodium_stream_b64",
    ] {
        let sealed = b64(&v, &format!("media.{which}"));
        assert_eq!(sealed.len() as u64, sealed_len(2500), "{which}");
        for piece in [1usize, 333, 1041, 4096] {
            let mut opener = MediaOpener::new(&key);
            let mut out = Vec::new();
            for p in sealed.chunks(piece) {
                out.extend(opener.push(p).unwrap());
            }
            out.extend(opener.finish().unwrap());
            assert_eq!(out, plaintext, "{which} in pieces of {piece}");
        }
        // Cut after the second frame: refused (X's SDK refuses it too).
        let mut opener = MediaOpener::new(&key);
        let _ = opener.push(&sealed[..24 + 2 * 1041]).unwrap();
        assert!(opener.finish().is_err());
    }
    // What we seal has the same layout and opens with the opener checked against libsodium above
    // (X's SDK opening it is the sandbox tests' part).
    let (mut sealer, header) = MediaSealer::new(&key);
    let mut sealed = header.to_vec();
    sealed.extend(sealer.push(&plaintext).unwrap());
    sealed.extend(sealer.finish().unwrap());
    assert_eq!(sealed.len() as u64, sealed_len(2500));
    let mut opener = MediaOpener::new(&key);
    let mut out = opener.push(&sealed).unwrap();
    out.extend(opener.finish().unwrap());
    assert_eq!(out, plaintext);
}

#[test]
fn an_attachment_message_is_written_and_read_as_the_sdk_does() {
    use xdm_xchat::thrift::{MediaAttachment, MediaType, attachment_message, message_attachments};
    let v = vectors();
    let file = MediaAttachment {
        media_hash_key: "abc123DEF456".into(),
        width: Some(640),
        height: Some(480),
        kind: MediaType::Image,
        filesize: Some(2500),
        filename: Some("photo.jpg".into()),
    };
    let plaintext = attachment_message("", &file);
    assert_eq!(
        plaintext,
        hex(&v, "media.attachment_message_plaintext_thrift_hex")
    );
    assert_eq!(message_attachments(&plaintext).unwrap(), vec![file]);
    assert_eq!(
        thrift::message_text(&plaintext).unwrap().as_deref(),
        Some("")
    );
    assert!(
        message_attachments(&thrift::text_message("hi"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_key_change_is_the_one_the_sdk_accepted_byte_for_byte() {
    use xdm_xchat::events::{Sender, key_change_with};
    use xdm_xchat::thrift::WrappedKey;
    let v = vectors();
    let alice = participant(&v, "alice");
    let key = key32(hex(&v, "deterministic.conversation_key_hex"));
    let participants = vec![
        WrappedKey {
            user_id: "1111111111111111111".into(),
            wrapped_b64: s(&v, "deterministic.ecies_for_alice.wrapped_key_b64").into(),
            public_key_version: s(&v, "participants.alice.public_key_version").into(),
        },
        WrappedKey {
            user_id: "2222222222222222222".into(),
            wrapped_b64: s(&v, "deterministic.ecies_for_bob.wrapped_key_b64").into(),
            public_key_version: s(&v, "participants.bob.public_key_version").into(),
        },
    ];
    let request = key_change_with(
        Sender {
            keys: &alice,
            user_id: "1111111111111111111",
            public_key_version: s(&v, "participants.alice.public_key_version"),
        },
        s(&v, "deterministic.conversation_id"),
        s(&v, "deterministic.conversation_key_version"),
        &key,
        s(&v, "deterministic.key_change.message_id"),
        participants,
    )
    .unwrap();
    assert_eq!(
        request.encoded_message_event_detail,
        s(
            &v,
            "deterministic.key_change.encoded_message_event_detail_b64"
        )
    );
    assert_eq!(
        request.signature,
        s(&v, "deterministic.key_change.signature_b64_no_pad")
    );
}

#[test]
fn a_signature_and_its_high_s_twin_both_verify_as_in_x_sdk() {
    use p256::ecdsa::Signature;
    let v = vectors();
    let alice = participant(&v, "alice");
    let payload = s(&v, "deterministic.key_change.signed_payload");
    let signature = signatures::sign(&alice, payload);
    let raw = STANDARD_NO_PAD.decode(&signature).unwrap();
    let parsed = Signature::from_slice(&raw).unwrap();
    let (r, s_) = parsed.split_scalars();
    let twin = Signature::from_scalars(r.to_bytes(), (-*s_).to_bytes()).unwrap();
    let twin_b64 = STANDARD_NO_PAD.encode(twin.to_bytes());
    assert_ne!(twin_b64, signature);
    let signer = alice.signing_public();
    signatures::verify(&signer, payload, &signature).unwrap();
    signatures::verify(&signer, payload, &twin_b64).unwrap();
    // …and nothing else does.
    assert!(signatures::verify(&signer, &format!("{payload}x"), &signature).is_err());
    assert!(signatures::verify(&alice.identity_public(), payload, &signature).is_err());
    assert!(signatures::verify(&signer, payload, &signature[..40]).is_err());
}

/// Every truncation and every single-byte change of the two events X's SDK made (a key change
/// and a message, as X delivers them) goes through the whole read — base64, Thrift, the key
/// change's unwrapping, the message's signature check and decryption — without a panic; and
/// whatever a change still lets through is the sender's own: the same signed fields (message id,
/// sender, conversation, key version, sealed contents) and the same plaintext or key. Only the
/// fields X's server adds after the sender signed (sequence id, timestamps, the notify flag,
/// unknown fields) may differ — X's webhook signature is what vouches for those.
#[test]
fn changed_or_cut_events_are_refused_and_never_panic() {
    use xdm_xchat::events::{self, Detail, MessageEvent};
    let v = vectors();
    let alice = participant(&v, "alice");
    let bob = participant(&v, "bob");
    let key = key32(hex(&v, "conversation.conversation_key_hex"));
    let version = s(&v, "conversation.conversation_key_version").to_owned();
    let message = b64(&v, "message.server_event_b64");
    let change = b64(&v, "conversation.key_change_server_event_b64");

    let variants = |bytes: &[u8]| -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut changed = bytes.to_vec();
                changed[at] ^= mask;
                out.push(changed);
            }
        }
        out
    };
    let signed = |e: &MessageEvent| {
        let (version, contents) = match &e.detail {
            Detail::Message {
                key_version,
                contents,
                ..
            } => (key_version.clone(), contents.clone()),
            Detail::KeyChange { key_version, .. } => (key_version.clone(), Vec::new()),
            other => panic!("not a message or a key change: {other:?}"),
        };
        (
            e.message_id.clone(),
            e.sender_id.clone(),
            e.conversation_id.clone(),
            version,
            contents,
        )
    };

    let original = events::parse_event(&STANDARD.encode(&message)).unwrap();
    let open = |e: &MessageEvent| {
        e.open_message(&alice.signing_public(), |ver| {
            (ver == version).then(|| key.clone())
        })
    };
    let plaintext = open(&original).unwrap();
    let (mut read, mut opened) = (0, 0);
    for changed in variants(&message) {
        let Ok(event) = events::parse_event(&STANDARD.encode(&changed)) else {
            continue;
        };
        read += 1;
        if let Ok(opened_text) = open(&event) {
            assert_eq!(
                signed(&event),
                signed(&original),
                "a changed message opened"
            );
            assert_eq!(opened_text, plaintext);
            opened += 1;
        }
    }
    // Most changes do not even read; of those that do, only server-side fields may differ.
    assert!(read > 0 && opened < read, "read {read}, opened {opened}");

    let original_change = events::parse_event(&STANDARD.encode(&change)).unwrap();
    let unwrap = |e: &MessageEvent| {
        e.open_key_change(&bob, "2222222222222222222", None, &alice.signing_public())
    };
    let unwrapped = unwrap(&original_change).unwrap();
    for changed in variants(&change) {
        if let Ok(event) = events::parse_event(&STANDARD.encode(&changed))
            && let Ok(got) = unwrap(&event)
        {
            assert_eq!(
                signed(&event),
                signed(&original_change),
                "a changed key change was accepted"
            );
            assert_eq!(got, unwrapped);
        }
    }
    for garbage in ["", "!!!", "AAAA", "////", "DAABAAAA"] {
        assert!(events::parse_event(garbage).is_err(), "{garbage}");
    }
}
