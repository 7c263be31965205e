//! The public keys a business account registers with X (`POST /2/users/{id}/public_keys`,
//! docs/xchat.md §1.3–§1.4): both public keys as DER, each bound to the other by a signature,
//! and the identity key's fingerprint — what X's SDK `generate_keypairs` returns, byte for byte
//! for the same keys (signatures are deterministic).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2_10::{Digest, Sha256};

use crate::keys::{ChatKeys, public_key_der};

/// How the keys are recovered on a new device; a server keeps its key blob instead, and X's SDK
/// registers this value for keys it manages itself.
pub const REGISTRATION_METHOD: &str = "CustomPin";

/// The `public_key` object of the registration request (every field base64 as X expects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyRegistration {
    /// The identity public key, DER, base64 with padding.
    pub public_key: String,
    /// The signing public key, DER, base64 with padding.
    pub signing_public_key: String,
    /// The identity key's DER signed by the signing key (raw `r ‖ s`, base64 with padding).
    pub identity_public_key_signature: String,
    /// The signing key's DER signed by the identity key.
    pub signing_public_key_signature: String,
    /// [`fingerprint`] of the identity key.
    pub public_key_fingerprint: String,
    pub registration_method: &'static str,
}

/// What to register for `keys`.
pub fn registration(keys: &ChatKeys) -> PublicKeyRegistration {
    let identity_der = public_key_der(&keys.identity_public());
    let signing_der = public_key_der(&keys.signing_public());
    let by_identity = SigningKey::from(keys.identity_secret());
    let signing_signature: Signature = by_identity.sign(&signing_der);
    let signing_signature: [u8; 64] = signing_signature.to_bytes().into();
    PublicKeyRegistration {
        public_key: STANDARD.encode(&identity_der),
        signing_public_key: STANDARD.encode(&signing_der),
        identity_public_key_signature: crate::signatures::sign_key_binding(keys),
        signing_public_key_signature: STANDARD.encode(signing_signature),
        public_key_fingerprint: fingerprint(&identity_der),
        registration_method: REGISTRATION_METHOD,
    }
}

/// X Chat's fingerprint of a public key: SHA-256 of its DER bytes, base64url without padding
/// (43 characters). What `x chat-keys show` prints and what people compare.
pub fn fingerprint(identity_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(identity_der))
}
