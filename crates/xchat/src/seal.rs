//! Message contents sealed with a conversation key (docs/xchat.md §3.3): NaCl secretbox
//! (XSalsa20-Poly1305), a random 24-byte nonce, no associated data; the sealed form is
//! `nonce(24) ‖ tag(16) ‖ ciphertext`.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::errors::XChatError;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A conversation key: 32 secret bytes, one per version of a conversation. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ConversationKey([u8; 32]);

impl std::fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConversationKey(…)")
    }
}

impl ConversationKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new(&self.0.into())
    }

    /// Seals `plaintext` with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        self.seal_with_nonce(plaintext, nonce)
    }

    /// A nonce for the message `message_id` with `plaintext`: SHA-256 of the key, a label, the
    /// id and the plaintext's SHA-256, cut to 24 bytes. A message sent again after an unknown
    /// outcome must be the same request byte for byte (X keeps one message per id), so the nonce
    /// cannot be random; it covers the plaintext too, so that two different contents never share
    /// a nonce under one key, even under one id (a file uploaded again names a new media key).
    pub fn nonce_for(&self, message_id: &str, plaintext: &[u8]) -> [u8; NONCE_LEN] {
        use sha2_10::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.0)
            .chain_update(b"xdm-connect message nonce\0")
            .chain_update(message_id.as_bytes())
            .chain_update(b"\0")
            .chain_update(Sha256::digest(plaintext))
            .finalize();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&digest[..NONCE_LEN]);
        nonce
    }

    /// Seals `plaintext` with `nonce` (tests pin it; use [`ConversationKey::seal`]).
    pub fn seal_with_nonce(&self, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        // `crypto_secretbox` writes `tag ‖ ciphertext`, as libsodium's `crypto_secretbox_easy`.
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens sealed contents; refuses anything altered or sealed with another key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, XChatError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(XChatError::Open);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), rest)
            .map_err(|_| XChatError::Open)
    }
}
