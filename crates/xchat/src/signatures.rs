//! What X Chat signs (docs/xchat.md §2.4, §3.5): comma-joined ASCII strings naming the event,
//! signed with ECDSA-P256-SHA256 by the sender's signing key; the signature is raw `r ‖ s`
//! (64 bytes) in standard base64 without padding. Signing is deterministic (RFC 6979), as in X's
//! SDK, so the same event signs to the same bytes. Verification accepts high-S signatures (X's
//! SDK does not normalise `s`).

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use p256::PublicKey;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::errors::XChatError;
use crate::keys::ChatKeys;
use crate::seal::ConversationKey;

/// The signature version X's SDK writes.
pub const SIGNATURE_VERSION: &str = "7";

fn joined(
    kind: &str,
    fields: [(&'static str, &str); 4],
    last: String,
) -> Result<String, XChatError> {
    let mut out = String::from(kind);
    for (name, value) in fields {
        if value.contains(',') {
            return Err(XChatError::Comma(name));
        }
        out.push(',');
        out.push_str(value);
    }
    out.push(',');
    out.push_str(&last);
    Ok(out)
}

/// `MessageCreateEvent,{message_id},{sender},{conversation},{key_version},{contents}` with the
/// sealed contents in base64 without padding.
pub fn message_payload(
    message_id: &str,
    sender_id: &str,
    conversation_id: &str,
    key_version: &str,
    sealed_contents: &[u8],
) -> Result<String, XChatError> {
    joined(
        "MessageCreateEvent",
        [
            ("message_id", message_id),
            ("sender_id", sender_id),
            ("conversation_id", conversation_id),
            ("conversation_key_version", key_version),
        ],
        STANDARD_NO_PAD.encode(sealed_contents),
    )
}

/// `ConversationKeyChangeEvent,{message_id},{sender},{conversation},{key_version},{key}` with the
/// plaintext conversation key in base64 without padding (secret: never log the payload).
pub fn key_change_payload(
    message_id: &str,
    sender_id: &str,
    conversation_id: &str,
    key_version: &str,
    key: &ConversationKey,
) -> Result<String, XChatError> {
    joined(
        "ConversationKeyChangeEvent",
        [
            ("message_id", message_id),
            ("sender_id", sender_id),
            ("conversation_id", conversation_id),
            ("conversation_key_version", key_version),
        ],
        STANDARD_NO_PAD.encode(key.as_bytes()),
    )
}

/// Signs `payload` with `keys`' signing key: raw `r ‖ s`, base64 without padding.
pub fn sign(keys: &ChatKeys, payload: &str) -> String {
    STANDARD_NO_PAD.encode(sign_bytes(keys, payload.as_bytes()))
}

fn sign_bytes(keys: &ChatKeys, message: &[u8]) -> [u8; 64] {
    let signature: Signature = keys.signing_key().sign(message);
    signature.to_bytes().into()
}

/// Checks `signature` (raw `r ‖ s`, base64 with or without padding) over `payload` against the
/// sender's signing public key.
pub fn verify(signer: &PublicKey, payload: &str, signature: &str) -> Result<(), XChatError> {
    verify_bytes(signer, payload.as_bytes(), signature)
}

fn verify_bytes(signer: &PublicKey, message: &[u8], signature: &str) -> Result<(), XChatError> {
    let raw = STANDARD_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| XChatError::Signature)?;
    if raw.len() != 64 {
        return Err(XChatError::Signature);
    }
    // aws-lc's ECDSA accepts high-S signatures, as X's SDK does (docs/xchat.md §1.1).
    let point = signer.to_encoded_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes())
        .verify(message, &raw)
        .map_err(|_| XChatError::Signature)
}

/// The key binding of a registration (docs/xchat.md §1.3, §1.5): the identity public key's DER
/// bytes signed by the signing key, base64 with padding.
pub fn sign_key_binding(keys: &ChatKeys) -> String {
    let der = crate::keys::public_key_der(&keys.identity_public());
    base64::engine::general_purpose::STANDARD.encode(sign_bytes(keys, &der))
}

/// Checks a participant's key binding: `signature` by `signer` over `identity_der`, exactly the
/// bytes X served. A participant whose binding fails is not trusted with a conversation key.
pub fn verify_key_binding(
    signer: &PublicKey,
    identity_der: &[u8],
    signature: &str,
) -> Result<(), XChatError> {
    verify_bytes(signer, identity_der, signature)
}
