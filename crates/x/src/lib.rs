//! xdm-x: the X (Twitter) adapter of xdm-connect.
//!
//! * [`webhook`] — the CRC answer and the `x-twitter-webhooks-signature` check.
//! * [`payload`] — Account Activity and X Activity API deliveries → [`xdm_core::inbound::InboundBatch`].
//! * [`oauth1`] — OAuth 1.0a HMAC-SHA1 request signing (RFC 5849, as X uses it).
//! * [`rate_limit`], [`problem`] — X's rate-limit headers and error bodies.
//! * [`client`] — [`XClient`], the REST client implementing [`xdm_core::ports::XApi`].
//!
//! Nothing here panics on outside input, and nothing logs secrets, tokens or message text.

mod lenient;
mod user;

pub mod client;
pub mod oauth1;
pub mod payload;
pub mod problem;
pub mod rate_limit;
pub mod webhook;

pub use client::{
    API_URL_SETTING, DEFAULT_API_URL, USER_FIELDS, XClient, XClientConfig, XConfigError,
    error_from_response,
};
pub use oauth1::{AccessToken, Consumer};
pub use payload::{DeliveryShape, ParsedDelivery, PayloadError, SkippedEvent, parse_delivery};
pub use problem::Problem;
pub use rate_limit::RateLimitHeaders;
pub use webhook::{
    CRC_TOKEN_MAX_LEN, CrcError, CrcResponse, SIGNATURE_HEADER, SignatureError, crc_response,
    verify_signature, verify_signature_header,
};
