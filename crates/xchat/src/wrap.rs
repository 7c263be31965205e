//! Conversation keys wrapped for one participant (docs/xchat.md §2.3), byte for byte as X's
//! Chat SDK does it: an ephemeral P-256 key `E`; `Z` = the x-coordinate of ECDH(e, P); the ANSI
//! X9.63 KDF with SHA-256 gives `T = SHA-256(Z ‖ 00000001 ‖ E)`; AES-128-GCM with key `T[..16]`,
//! the 16-byte IV `T[16..]` and no AAD seals the 32-byte key. Wrapped form:
//! `E (65, uncompressed SEC1) ‖ ciphertext (32) ‖ tag (16)` = 113 bytes.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, Nonce};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2_10::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::errors::XChatError;
use crate::keys::ChatKeys;
use crate::seal::ConversationKey;

/// AES-128-GCM with X's 16-byte IV.
type Aes128Gcm16 = AesGcm<Aes128, U16>;

/// Length of an uncompressed SEC1 P-256 point.
const POINT_LEN: usize = 65;
/// Length of a wrapped conversation key.
pub const WRAPPED_LEN: usize = POINT_LEN + 32 + 16;

/// `(AES key, IV)` from the shared secret and the ephemeral public key.
fn derive(shared_x: &[u8], ephemeral: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hash = Sha256::new();
    hash.update(shared_x);
    hash.update(1u32.to_be_bytes());
    hash.update(ephemeral);
    Zeroizing::new(hash.finalize().into())
}

fn cipher(t: &[u8; 32]) -> Result<Aes128Gcm16, XChatError> {
    Aes128Gcm16::new_from_slice(&t[..16]).map_err(|_| XChatError::Unwrap)
}

/// Wraps `key` for the participant whose identity public key is `recipient`.
pub fn wrap(key: &ConversationKey, recipient: &PublicKey) -> Vec<u8> {
    wrap_with(key, recipient, &SecretKey::random(&mut rand_core::OsRng))
}

/// [`wrap`] with a given ephemeral key (tests pin it).
pub fn wrap_with(key: &ConversationKey, recipient: &PublicKey, ephemeral: &SecretKey) -> Vec<u8> {
    let e = ephemeral.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), recipient.as_affine());
    let t = derive(shared.raw_secret_bytes(), e.as_bytes());
    let sealed = cipher(&t)
        .and_then(|c| {
            c.encrypt(
                Nonce::<U16>::from_slice(&t[16..]),
                key.as_bytes().as_slice(),
            )
            .map_err(|_| XChatError::Unwrap)
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(e.as_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// Opens a conversation key wrapped for `keys`' identity key.
pub fn unwrap(keys: &ChatKeys, wrapped: &[u8]) -> Result<ConversationKey, XChatError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(XChatError::Unwrap);
    }
    let (e, sealed) = wrapped.split_at(POINT_LEN);
    let ephemeral = PublicKey::from_sec1_bytes(e).map_err(|_| XChatError::Unwrap)?;
    let shared = p256::ecdh::diffie_hellman(
        keys.identity_secret().to_nonzero_scalar(),
        ephemeral.as_affine(),
    );
    let t = derive(shared.raw_secret_bytes(), e);
    let plain = Zeroizing::new(
        cipher(&t)?
            .decrypt(Nonce::<U16>::from_slice(&t[16..]), sealed)
            .map_err(|_| XChatError::Unwrap)?,
    );
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| XChatError::Unwrap)?;
    Ok(ConversationKey::from_bytes(bytes))
}
