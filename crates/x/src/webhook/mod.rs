//! Authenticating X's webhook traffic: the CRC challenge (`GET`) and the signature of every
//! event delivery (`POST`). Both use HMAC-SHA256 keyed with an app secret (docs/protocols.md A1.1,
//! A1.2): the consumer secret (`x-twitter-webhooks-signature`) or the OAuth 2.0 client secret
//! (`x-twitter-webhooks-signature-oauth2`). [`verify_delivery`] and [`crc_answer`] choose between
//! them from [`WebhookSecrets`]; [`verify_signature`] and [`crc_response`] are the consumer-secret
//! forms.

mod crc;
mod secrets;
mod signature;

pub use crc::{CRC_TOKEN_MAX_LEN, CrcError, CrcResponse, crc_response, is_acceptable_crc_token};
pub use secrets::{CrcKey, OAUTH2_SIGNATURE_HEADER, WebhookSecrets, crc_answer, verify_delivery};
pub use signature::{SIGNATURE_HEADER, SignatureError, verify_signature, verify_signature_header};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// HMAC-SHA256 keyed with an app secret, ready to take the message.
///
/// `None` when the secret is empty: an empty key would make every signature forgeable by anyone
/// who guesses the configuration is missing, so it is refused rather than used.
fn keyed_mac(secret: &str) -> Option<Hmac<Sha256>> {
    if secret.is_empty() {
        return None;
    }
    // HMAC accepts keys of any length; the error branch cannot happen with hmac 0.13.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()
}

/// `sha256=<base64(HMAC-SHA256(secret, message))>`.
fn sha256_token(mac: Hmac<Sha256>, message: &[u8]) -> String {
    use base64::Engine as _;
    let mut mac = mac;
    mac.update(message);
    let digest = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}
