//! Which app secret authenticates X's webhook traffic, and the checks that use it.
//!
//! * Deliveries: X signs each POST twice when it can, `x-twitter-webhooks-signature-oauth2`
//!   keyed by the OAuth 2.0 client secret and the legacy `x-twitter-webhooks-signature` keyed by
//!   the consumer secret. [`verify_delivery`] checks the OAuth 2.0 header when it is present and a
//!   client secret is configured, the legacy one otherwise; it never falls back from a failing
//!   OAuth 2.0 signature to the legacy one (a delivery is judged by the strongest check it offers).
//! * CRC: the key is the client secret in X's current webhooks quickstart and the consumer secret
//!   in older docs and tools ([`CrcKey`]: `Auto` prefers the client secret).
//! * Neither secret configured ⇒ `SignatureError::NoSecret` / `CrcError::NoSecret`: a
//!   configuration problem (the HTTP layer answers 503), never an open door.

use std::fmt;

use http::HeaderMap;

use super::crc::{CrcError, CrcResponse, crc_response_keyed};
use super::signature::{Fault, SIGNATURE_HEADER, SignatureError, check_value};

/// The header of the OAuth 2.0 signature (header names are case-insensitive on the wire).
pub const OAUTH2_SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature-oauth2";

/// Which secret answers the CRC challenge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrcKey {
    /// The client secret when configured, else the consumer secret.
    #[default]
    Auto,
    ClientSecret,
    ConsumerSecret,
}

/// The app secrets webhook traffic is checked with. Empty strings count as not configured.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookSecrets {
    /// The OAuth 1.0a consumer secret (X "API key secret").
    pub consumer_secret: Option<String>,
    /// The OAuth 2.0 client secret.
    pub client_secret: Option<String>,
    pub crc_key: CrcKey,
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("consumer_secret", &self.consumer().map(|_| "<redacted>"))
            .field("client_secret", &self.client().map(|_| "<redacted>"))
            .field("crc_key", &self.crc_key)
            .finish()
    }
}

impl WebhookSecrets {
    fn consumer(&self) -> Option<&str> {
        self.consumer_secret.as_deref().filter(|s| !s.is_empty())
    }

    fn client(&self) -> Option<&str> {
        self.client_secret.as_deref().filter(|s| !s.is_empty())
    }

    /// Whether any delivery can be verified (else the webhook endpoint answers 503).
    pub fn is_usable(&self) -> bool {
        self.consumer().is_some() || self.client().is_some()
    }
}

/// The value of header `name`: `Ok(None)` when absent, `Err` when not visible ASCII.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ()> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ()),
    }
}

/// Verifies a delivery given its headers and its exact raw body bytes (see the module doc for
/// which header is checked).
pub fn verify_delivery(
    secrets: &WebhookSecrets,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<(), SignatureError> {
    let (client, consumer) = (secrets.client(), secrets.consumer());
    if client.is_none() && consumer.is_none() {
        return Err(SignatureError::NoSecret);
    }
    if let Some(client) = client {
        match header(headers, OAUTH2_SIGNATURE_HEADER) {
            Err(()) => return Err(SignatureError::OAuth2Malformed("not visible ASCII")),
            Ok(Some(value)) => {
                return check_value(client, value, raw_body).map_err(|fault| match fault {
                    Fault::Malformed(why) => SignatureError::OAuth2Malformed(why),
                    Fault::Mismatch => SignatureError::OAuth2Mismatch,
                    Fault::NoKey => SignatureError::NoSecret,
                });
            }
            Ok(None) => {}
        }
    }
    let Some(consumer) = consumer else {
        return Err(SignatureError::MissingOAuth2);
    };
    let value = match header(headers, SIGNATURE_HEADER) {
        Err(()) => return Err(SignatureError::Malformed("not visible ASCII")),
        Ok(None) if client.is_some() => return Err(SignatureError::MissingBoth),
        Ok(None) => return Err(SignatureError::Missing),
        Ok(Some(value)) => value,
    };
    check_value(consumer, value, raw_body).map_err(|fault| match fault {
        Fault::Malformed(why) => SignatureError::Malformed(why),
        Fault::Mismatch => SignatureError::Mismatch,
        Fault::NoKey => SignatureError::NoConsumerSecret,
    })
}

/// Answers X's CRC challenge with the key [`WebhookSecrets::crc_key`] names. `crc_token` is the
/// query parameter already percent-decoded; only opaque tokens are answered (see [`super::crc`]).
pub fn crc_answer(secrets: &WebhookSecrets, crc_token: &str) -> Result<CrcResponse, CrcError> {
    let (key, missing) = match secrets.crc_key {
        CrcKey::ClientSecret => (secrets.client(), CrcError::NoClientSecret),
        CrcKey::ConsumerSecret => (secrets.consumer(), CrcError::NoConsumerSecret),
        CrcKey::Auto => (secrets.client().or(secrets.consumer()), CrcError::NoSecret),
    };
    crc_response_keyed(key.unwrap_or_default(), crc_token, missing)
}
