//! The CRC (challenge-response check) answer, docs/protocols.md A1.1.
//!
//! X sends `GET <webhook>?crc_token=T` and expects
//! `{"response_token":"sha256=<base64(HMAC-SHA256(key, T))>"}`, the key being the consumer secret
//! (older docs and tools) or the OAuth 2.0 client secret (the current webhooks quickstart): the
//! choice is [`super::CrcKey`].
//!
//! **Signing-oracle defence.** The CRC HMACs attacker-chosen input with the same key and the same
//! construction as the `x-twitter-webhooks-signature` of event deliveries. Answering any token would
//! let anyone obtain a valid signature for a forged JSON body (send the body as `crc_token`, replay
//! the answer as the signature). So only opaque tokens are answered: 1 to [`CRC_TOKEN_MAX_LEN`]
//! characters of the base64 / base64url alphabets (`A–Z a–z 0–9 + / - _`), optionally followed by
//! up to two `=` padding characters. X's real tokens are base64 of a UUID (48 characters). A JSON
//! body always starts with `{` or `[`, so no accepted token can ever be a delivery body.

use serde::Serialize;

use super::{keyed_mac, sha256_token};

/// The longest `crc_token` answered. X's tokens are 48 characters (base64 of a UUID); 256 leaves
/// room for a longer format without making the endpoint a free HMAC service for large inputs.
pub const CRC_TOKEN_MAX_LEN: usize = 256;

/// The JSON body of a successful CRC answer (serve it with `Content-Type: application/json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrcResponse {
    pub response_token: String,
}

/// Why no CRC answer is given. The HTTP layer answers 400 for the token errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrcError {
    #[error("crc_token is empty")]
    EmptyToken,
    #[error("crc_token is longer than {CRC_TOKEN_MAX_LEN} characters")]
    TokenTooLong,
    #[error("crc_token is not an opaque base64 or base64url token")]
    TokenNotOpaque,
    /// A configuration problem (the HTTP layer answers 503 and logs it).
    #[error("the X consumer secret (XDM_X_CONSUMER_SECRET) is not set")]
    NoConsumerSecret,
    /// A configuration problem: the CRC key is the client secret and it is not set.
    #[error("the X OAuth 2.0 client secret (XDM_X_CLIENT_SECRET) is not set")]
    NoClientSecret,
    /// A configuration problem: neither secret is set.
    #[error(
        "neither the X OAuth 2.0 client secret (XDM_X_CLIENT_SECRET) nor the consumer secret (XDM_X_CONSUMER_SECRET) is set"
    )]
    NoSecret,
}

impl CrcError {
    /// A configuration problem of this side (answer 503), not a bad challenge (400).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::NoConsumerSecret | Self::NoClientSecret | Self::NoSecret
        )
    }
}

/// Whether `token` is an opaque base64/base64url token this endpoint answers (see module doc).
pub fn is_acceptable_crc_token(token: &str) -> bool {
    check_token(token).is_ok()
}

fn check_token(token: &str) -> Result<(), CrcError> {
    if token.is_empty() {
        return Err(CrcError::EmptyToken);
    }
    if token.len() > CRC_TOKEN_MAX_LEN {
        return Err(CrcError::TokenTooLong);
    }
    let body = token.trim_end_matches('=');
    let padding = token.len() - body.len();
    let alphabet_only = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'));
    if body.is_empty() || padding > 2 || !alphabet_only {
        return Err(CrcError::TokenNotOpaque);
    }
    Ok(())
}

/// Answers X's CRC challenge. `crc_token` is the query parameter already percent-decoded; only
/// it is hashed (the `nonce` parameter X also sends is ignored).
pub fn crc_response(consumer_secret: &str, crc_token: &str) -> Result<CrcResponse, CrcError> {
    crc_response_keyed(consumer_secret, crc_token, CrcError::NoConsumerSecret)
}

/// [`crc_response`] with any key; `missing` is the error when the key is empty.
pub(super) fn crc_response_keyed(
    key: &str,
    crc_token: &str,
    missing: CrcError,
) -> Result<CrcResponse, CrcError> {
    check_token(crc_token)?;
    let mac = keyed_mac(key).ok_or(missing)?;
    Ok(CrcResponse {
        response_token: sha256_token(mac, crc_token.as_bytes()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";

    #[test]
    fn answers_the_published_vector() {
        let r = crc_response(SECRET, "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0").unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"response_token":"sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="}"#
        );
    }

    #[test]
    fn accepts_base64_and_base64url_tokens() {
        for t in [
            "a",
            "MTc2OTUxODI5MjkxNA",
            "ab+/cd==",
            "ab-_cd=",
            "Zm9v",
            &"A".repeat(CRC_TOKEN_MAX_LEN),
        ] {
            assert!(crc_response(SECRET, t).is_ok(), "{t}");
        }
    }

    #[test]
    fn refuses_anything_that_could_be_a_body() {
        let json = r#"{"for_user_id":"2244994945","direct_message_events":[]}"#;
        assert_eq!(crc_response(SECRET, json), Err(CrcError::TokenNotOpaque));
        for t in [
            "{", "ab cd", "ab\"cd", "ab%3D", "ab\ncd", "=", "==", "ab===", "a=b", "ab.cd", "é",
            "[1]",
        ] {
            assert_eq!(
                crc_response(SECRET, t),
                Err(CrcError::TokenNotOpaque),
                "{t:?}"
            );
        }
        assert_eq!(crc_response(SECRET, ""), Err(CrcError::EmptyToken));
        assert_eq!(
            crc_response(SECRET, &"A".repeat(CRC_TOKEN_MAX_LEN + 1)),
            Err(CrcError::TokenTooLong)
        );
    }

    #[test]
    fn refuses_to_sign_without_a_secret() {
        assert_eq!(crc_response("", "Zm9v"), Err(CrcError::NoConsumerSecret));
    }
}
