//! The only cryptography the X Chat backend does (docs/xchat.md §1.1, §1.3, §3.5): reading P-256
//! public keys (SPKI or SEC1), verifying ECDSA-P256-SHA256 raw `r‖s` signatures — high-S ones
//! included, as X's SDK makes them about half the time — and public key fingerprints. The emulator
//! never holds a private or conversation key.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use base64::Engine as _;
use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

/// The 26-byte DER prefix of every P-256 SubjectPublicKeyInfo (X's stored form).
pub(crate) const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SPKI length: the prefix and an uncompressed SEC1 point.
const SPKI_LEN: usize = 91;
/// Uncompressed SEC1 point length.
const SEC1_LEN: usize = 65;
/// Raw `r‖s`.
const SIGNATURE_LEN: usize = 64;

/// Standard base64 with or without padding (X Chat mixes both: §1.3).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD_ALPHABET,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard base64, padded or not.
pub(crate) fn decode_b64(text: &str) -> Result<Vec<u8>, String> {
    LENIENT
        .decode(text)
        .map_err(|e| format!("is not standard base64: {e}"))
}

/// Standard base64 without padding (the signed strings' encoding of binary components).
pub(crate) fn b64_no_pad(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// X Chat's fingerprint of a public key: base64url without padding of SHA-256 of its bytes as
/// registered (43 characters).
pub(crate) fn fingerprint(key_bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key_bytes))
}

/// A P-256 public key, checked to be a point on the curve.
#[derive(Clone)]
pub(crate) struct PublicKey {
    key: ParsedPublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(P-256)")
    }
}

impl PublicKey {
    /// `bytes` as X serves them (91-byte SPKI with the fixed prefix) or as the SDK holds them
    /// (65-byte uncompressed SEC1).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let sec1 = match bytes.len() {
            SPKI_LEN if bytes.starts_with(&SPKI_PREFIX) => &bytes[SPKI_PREFIX.len()..],
            SPKI_LEN => return Err("is 91 bytes but not a P-256 SubjectPublicKeyInfo".into()),
            SEC1_LEN => bytes,
            n => {
                return Err(format!(
                    "is {n} bytes: expected a 91-byte P-256 SubjectPublicKeyInfo or a 65-byte uncompressed SEC1 point"
                ));
            }
        };
        if sec1.first() != Some(&0x04) {
            return Err("is not an uncompressed SEC1 point".into());
        }
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, sec1)
            .map_err(|_| "is not a point on P-256".to_owned())?;
        Ok(Self { key })
    }

    /// A base64 key (either encoding).
    pub(crate) fn from_b64(text: &str) -> Result<Self, String> {
        Self::from_bytes(&decode_b64(text)?)
    }

    /// Whether `signature` (raw `r‖s`, 64 bytes) is this key's ECDSA-P256-SHA256 signature of
    /// `message`. High-S signatures verify (no low-S rule).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        signature.len() == SIGNATURE_LEN && self.key.verify_sig(message, signature).is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::Value;

    use super::*;

    /// P-256 group order.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    /// `n - s`, big-endian.
    fn negate(s: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        out
    }

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../../../testdata/xchat-vectors.json")).unwrap()
    }

    #[test]
    fn the_vectors_registration_verifies_both_ways() {
        let v = vectors();
        for who in ["alice", "bob"] {
            let p = &v["participants"][who];
            let reg = &p["registration_request"]["public_key"];
            let identity_bytes = decode_b64(reg["public_key"].as_str().unwrap()).unwrap();
            let signing_bytes = decode_b64(reg["signing_public_key"].as_str().unwrap()).unwrap();
            let identity = PublicKey::from_bytes(&identity_bytes).unwrap();
            let signing = PublicKey::from_bytes(&signing_bytes).unwrap();
            let binding =
                decode_b64(reg["identity_public_key_signature"].as_str().unwrap()).unwrap();
            let reverse =
                decode_b64(reg["signing_public_key_signature"].as_str().unwrap()).unwrap();
            assert!(signing.verifies(&identity_bytes, &binding));
            assert!(identity.verifies(&signing_bytes, &reverse));
            assert!(!identity.verifies(&identity_bytes, &binding));
            assert_eq!(fingerprint(&identity_bytes), reg["public_key_fingerprint"]);
            // The raw SEC1 form is the same key.
            let sec1 = PublicKey::from_b64(p["signing_public_sec1_b64"].as_str().unwrap()).unwrap();
            assert!(sec1.verifies(&identity_bytes, &binding));
        }
        // The message signature (no padding) over the signed string.
        let msg = &v["message"];
        let signing = PublicKey::from_b64(
            v["participants"]["alice"]["signing_public_spki_b64"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let sig = decode_b64(msg["send_payload"]["signature"].as_str().unwrap()).unwrap();
        assert!(signing.verifies(msg["signed_payload"].as_str().unwrap().as_bytes(), &sig));
    }

    #[test]
    fn high_s_signatures_verify_like_low_s_ones() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let key = PublicKey::from_bytes(pair.public_key().as_ref()).unwrap();
        let sig = pair.sign(&rng, b"payload").unwrap();
        let sig = sig.as_ref();
        let mut twin = sig[..32].to_vec();
        twin.extend(negate(&sig[32..]));
        assert!(key.verifies(b"payload", sig));
        assert!(
            key.verifies(b"payload", &twin),
            "the (r, n-s) twin verifies"
        );
        assert!(!key.verifies(b"other", &twin));
        assert!(!key.verifies(b"payload", &sig[..63]));
    }

    #[test]
    fn keys_that_are_not_p256_points_are_refused() {
        let mut spki = SPKI_PREFIX.to_vec();
        spki.push(0x04);
        spki.extend([7u8; 64]);
        assert!(
            PublicKey::from_bytes(&spki)
                .unwrap_err()
                .contains("not a point")
        );
        assert!(PublicKey::from_bytes(&[4u8; 33]).is_err());
        let mut wrong_prefix = spki.clone();
        wrong_prefix[3] = 0;
        assert!(
            PublicKey::from_bytes(&wrong_prefix)
                .unwrap_err()
                .contains("not a P-256")
        );
        assert!(PublicKey::from_b64("not base64!").is_err());
    }
}
