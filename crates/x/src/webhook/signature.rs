//! Verification of `x-twitter-webhooks-signature: sha256=<base64>` on event deliveries,
//! docs/protocols.md A1.2: HMAC-SHA256(consumer_secret, raw body bytes), compared in constant time.
//! The OAuth 2.0 variant (`x-twitter-webhooks-signature-oauth2`, keyed by the client secret) and
//! the choice between the two are in [`super::secrets`].

use base64::Engine as _;
use hmac::Mac as _;

use super::keyed_mac;

/// The header carrying the signature (header names are case-insensitive on the wire).
pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";

/// An HMAC-SHA256 digest is 32 bytes.
const DIGEST_LEN: usize = 32;

/// Why a delivery is not authentic. The HTTP layer answers 401 for all but the configuration
/// problems ([`SignatureError::is_configuration`]: 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the x-twitter-webhooks-signature header is missing")]
    Missing,
    #[error("the x-twitter-webhooks-signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the x-twitter-webhooks-signature does not match the body")]
    Mismatch,
    /// A configuration problem, not the sender's fault.
    #[error("the X consumer secret (XDM_X_CONSUMER_SECRET) is not set")]
    NoConsumerSecret,
    /// Only the OAuth 2.0 client secret is configured and the delivery has no OAuth 2.0 signature.
    #[error("the x-twitter-webhooks-signature-oauth2 header is missing")]
    MissingOAuth2,
    /// Both secrets are configured and the delivery carries neither signature header.
    #[error(
        "neither the x-twitter-webhooks-signature-oauth2 nor the x-twitter-webhooks-signature header is present"
    )]
    MissingBoth,
    #[error("the x-twitter-webhooks-signature-oauth2 header is malformed: {0}")]
    OAuth2Malformed(&'static str),
    #[error("the x-twitter-webhooks-signature-oauth2 does not match the body")]
    OAuth2Mismatch,
    /// A configuration problem: neither the client secret nor the consumer secret is set.
    #[error(
        "neither the X OAuth 2.0 client secret (XDM_X_CLIENT_SECRET) nor the consumer secret (XDM_X_CONSUMER_SECRET) is set"
    )]
    NoSecret,
}

impl SignatureError {
    /// A configuration problem of this side (answer 503), not a bad delivery (401).
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::NoConsumerSecret | Self::NoSecret)
    }
}

/// What is wrong with one `sha256=<base64>` value, before it is attributed to its header.
pub(super) enum Fault {
    Malformed(&'static str),
    Mismatch,
    NoKey,
}

/// Checks one `sha256=<base64>` header value against HMAC-SHA256(`secret`, `raw_body`).
pub(super) fn check_value(secret: &str, header: &str, raw_body: &[u8]) -> Result<(), Fault> {
    let encoded = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Fault::Malformed("expected the sha256= prefix"))?;
    let claimed = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| Fault::Malformed("the digest is not base64"))?;
    if claimed.len() != DIGEST_LEN {
        return Err(Fault::Malformed("the digest is not 32 bytes"));
    }
    let mut mac = keyed_mac(secret).ok_or(Fault::NoKey)?;
    mac.update(raw_body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&claimed).map_err(|_| Fault::Mismatch)
}

/// Verifies a delivery given its headers and its exact raw body bytes.
pub fn verify_signature(
    consumer_secret: &str,
    headers: &http::HeaderMap,
    raw_body: &[u8],
) -> Result<(), SignatureError> {
    let value = match headers.get(SIGNATURE_HEADER) {
        None => return Err(SignatureError::Missing),
        Some(v) => v
            .to_str()
            .map_err(|_| SignatureError::Malformed("not visible ASCII"))?,
    };
    verify_signature_header(consumer_secret, Some(value), raw_body)
}

/// Verifies a delivery given the header's value (`None` when absent) and the exact raw body bytes.
pub fn verify_signature_header(
    consumer_secret: &str,
    header: Option<&str>,
    raw_body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    check_value(consumer_secret, header, raw_body).map_err(|fault| match fault {
        Fault::Malformed(why) => SignatureError::Malformed(why),
        Fault::Mismatch => SignatureError::Mismatch,
        Fault::NoKey => SignatureError::NoConsumerSecret,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const SMALL_BODY: &str = r#"{"for_user_id":"2244994945","direct_message_events":[]}"#;
    const SMALL_SIG: &str = "sha256=U7PvFnq32kDoO+q6JA5eD3pbWDKp3OSyqEav+2NVku4=";
    const REAL_SIG: &str = "sha256=kUYYH+AYCEI4dWirsu4qSGy/k/ZkAah79MxUr9rXkCQ=";

    fn real_body() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/apigw-x-webhook-text-dm.json"
        );
        let event: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        event["body"].as_str().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn accepts_the_published_vectors() {
        assert_eq!(
            verify_signature_header(SECRET, Some(SMALL_SIG), SMALL_BODY.as_bytes()),
            Ok(())
        );
        let body = real_body();
        assert_eq!(body.len(), 1570);
        assert_eq!(
            verify_signature_header(SECRET, Some(REAL_SIG), &body),
            Ok(())
        );
    }

    #[test]
    fn reads_the_header_case_insensitively() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::HeaderName::from_static("x-twitter-webhooks-signature"),
            http::HeaderValue::from_static(REAL_SIG),
        );
        assert_eq!(verify_signature(SECRET, &headers, &real_body()), Ok(()));
        assert_eq!(
            verify_signature(SECRET, &http::HeaderMap::new(), &real_body()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn rejects_a_body_altered_by_one_byte() {
        let mut body = real_body();
        // "Hola2" -> "Hola3"
        let at = body.windows(5).position(|w| w == b"Hola2").unwrap() + 4;
        body[at] = b'3';
        assert_eq!(
            verify_signature_header(SECRET, Some(REAL_SIG), &body),
            Err(SignatureError::Mismatch)
        );
        let mut small = SMALL_BODY.as_bytes().to_vec();
        small.push(b' ');
        assert_eq!(
            verify_signature_header(SECRET, Some(SMALL_SIG), &small),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_the_wrong_secret() {
        assert_eq!(
            verify_signature_header("another-secret", Some(SMALL_SIG), SMALL_BODY.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature_header("", Some(SMALL_SIG), SMALL_BODY.as_bytes()),
            Err(SignatureError::NoConsumerSecret)
        );
    }

    #[test]
    fn distinguishes_missing_and_malformed_headers() {
        let body = SMALL_BODY.as_bytes();
        assert_eq!(
            verify_signature_header(SECRET, None, body),
            Err(SignatureError::Missing)
        );
        let no_prefix = SMALL_SIG.trim_start_matches("sha256=");
        assert!(matches!(
            verify_signature_header(SECRET, Some(no_prefix), body),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_signature_header(
                SECRET,
                Some("sha1=U7PvFnq32kDoO+q6JA5eD3pbWDKp3OSyqEav+2NVku4="),
                body
            ),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_signature_header(SECRET, Some("sha256=not base64!"), body),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_signature_header(SECRET, Some("sha256=Zm9v"), body),
            Err(SignatureError::Malformed(_))
        ));
    }
}
