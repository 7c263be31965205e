//! PKCE (RFC 7636): a code verifier drawn from the OS CSPRNG and its S256 challenge, and the
//! opaque `state` of an authorization request.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Length of a generated code verifier (RFC 7636 allows 43 to 128).
const VERIFIER_LEN: usize = 64;
/// RFC 7636 §4.1 unreserved characters.
const UNRESERVED: &[u8; 66] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// `len` characters of the unreserved set, uniformly from the OS CSPRNG (uuid v4 draws its 122
/// random bits from it; the 4 version/variant bits of each are skipped, and bytes are
/// rejection-sampled so every character is equally likely).
fn random_unreserved(len: usize) -> String {
    // 198 = 3 × 66: bytes below it map uniformly onto the 66 characters.
    const LIMIT: u8 = 198;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        for (i, b) in bytes.into_iter().enumerate() {
            // Byte 6 holds the version nibble, byte 8 the variant bits.
            if i == 6 || i == 8 || b >= LIMIT || out.len() == len {
                continue;
            }
            out.push(char::from(UNRESERVED[usize::from(b % 66)]));
        }
    }
    out
}

/// An opaque `state` for the authorization request (32 unreserved characters).
pub fn random_state() -> String {
    random_unreserved(32)
}

/// A PKCE code verifier and its S256 challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl Pkce {
    /// A fresh verifier: 64 characters of the unreserved set from a CSPRNG.
    pub fn generate() -> Self {
        Self::from_verifier(random_unreserved(VERIFIER_LEN))
    }

    /// The challenge of a given verifier: base64url-no-pad(SHA-256(verifier)).
    pub fn from_verifier(verifier: impl Into<String>) -> Self {
        let verifier = verifier.into();
        let digest = Sha256::digest(verifier.as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        Self {
            verifier,
            challenge,
        }
    }

    /// The verifier itself: only for the token request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Always `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(p.method(), "S256");
        assert!(!format!("{p:?}").contains("dBjft"));
    }

    #[test]
    fn generated_verifiers_are_long_unreserved_and_distinct() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier().len(), VERIFIER_LEN);
        assert!(a.verifier().bytes().all(|c| UNRESERVED.contains(&c)));
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.challenge().len(), 43);
        assert_eq!(random_state().len(), 32);
        // Every character can occur (uniform mapping): over 100 verifiers all 66 show up.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.extend(Pkce::generate().verifier().bytes());
        }
        assert_eq!(seen.len(), 66);
    }
}
