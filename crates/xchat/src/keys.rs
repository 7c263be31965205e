//! A participant's key material (docs/xchat.md §1): an identity key pair (P-256, ECDH only:
//! conversation keys are wrapped to it) and a signing key pair (P-256, ECDSA-P256-SHA256).
//!
//! The **key blob** is what X's Chat SDK `export_keys` returns and `import_keys` takes: the
//! identity private scalar then the signing private scalar, 32 big-endian bytes each, no header
//! (32 bytes alone — identity only — is accepted by the SDK but useless to a sender, so refused
//! here). Public keys are registered as DER SubjectPublicKeyInfo (91 bytes).

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePublicKey;
use p256::{PublicKey, SecretKey};
pub use zeroize::Zeroizing;

use crate::errors::XChatError;

/// Length of a key blob: two P-256 scalars.
pub const KEY_BLOB_LEN: usize = 64;

/// The business account's X Chat keys. `Debug` shows the public halves only.
#[derive(Clone)]
pub struct ChatKeys {
    identity: SecretKey,
    signing: SigningKey,
}

impl std::fmt::Debug for ChatKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatKeys")
            .field("identity_public", &sec1_hex(&self.identity_public()))
            .field("signing_public", &sec1_hex(&self.signing_public()))
            .finish_non_exhaustive()
    }
}

fn sec1_hex(key: &PublicKey) -> String {
    key.to_encoded_point(false)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ChatKeys {
    /// Fresh key pairs from the operating system's random source.
    pub fn generate() -> Self {
        Self {
            identity: SecretKey::random(&mut rand_core::OsRng),
            signing: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Imports a key blob (X's `export_keys` output, raw bytes).
    pub fn from_blob(blob: &[u8]) -> Result<Self, XChatError> {
        if blob.len() != KEY_BLOB_LEN {
            return Err(XChatError::KeyBlob(format!(
                "{} bytes, not {KEY_BLOB_LEN}",
                blob.len()
            )));
        }
        let (identity, signing) = blob.split_at(32);
        let identity = SecretKey::from_slice(identity)
            .map_err(|_| XChatError::KeyBlob("the identity scalar is not a P-256 key".into()))?;
        let signing = SigningKey::from_slice(signing)
            .map_err(|_| XChatError::KeyBlob("the signing scalar is not a P-256 key".into()))?;
        Ok(Self { identity, signing })
    }

    /// The key blob X's SDK imports (secret: keep it as a secret, never log it).
    pub fn to_blob(&self) -> Zeroizing<Vec<u8>> {
        let mut blob = Zeroizing::new(Vec::with_capacity(KEY_BLOB_LEN));
        blob.extend_from_slice(&self.identity.to_bytes());
        blob.extend_from_slice(&self.signing.to_bytes());
        blob
    }

    pub(crate) fn identity_secret(&self) -> &SecretKey {
        &self.identity
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The identity public key (conversation keys are wrapped to it).
    pub fn identity_public(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The signing public key (X checks the events this account signs with it).
    pub fn signing_public(&self) -> PublicKey {
        PublicKey::from(self.signing.verifying_key())
    }
}

/// A public key as X Chat registers and serves it: DER SubjectPublicKeyInfo (91 bytes).
pub fn public_key_der(key: &PublicKey) -> Vec<u8> {
    // Encoding a valid point as SPKI cannot fail; an empty answer would be refused by X.
    key.to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default()
}

/// A public key from X's forms: DER SubjectPublicKeyInfo or uncompressed SEC1 (65 bytes).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, XChatError> {
    use p256::pkcs8::DecodePublicKey;
    if let Ok(key) = PublicKey::from_public_key_der(bytes) {
        return Ok(key);
    }
    PublicKey::from_sec1_bytes(bytes)
        .map_err(|_| XChatError::PublicKey(format!("{} bytes, neither SPKI nor SEC1", bytes.len())))
}
