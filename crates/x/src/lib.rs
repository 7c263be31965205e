//! xdm-x: the X (Twitter) adapter of xdm-connect.
//!
//! * [`webhook`] — the CRC answer and the `x-twitter-webhooks-signature` check.
//! * [`payload`] — Account Activity and X Activity API deliveries → [`xdm_core::inbound::InboundBatch`].
//! * [`oauth1`] — OAuth 1.0a HMAC-SHA1 request signing (RFC 5849, as X uses it).
//! * [`rate_limit`], [`problem`] — X's rate-limit headers and error bodies.
//! * [`client`] — [`XClient`], the REST client implementing [`xdm_core::ports::XApi`];
//!   [`dm_events`] — reading back the DMs a business account sent (before sending again).
//! * [`media_hosts`] — the media host allow-list (`XDM_X_MEDIA_HOSTS`);
//!   [`media_download`] and [`media_upload`] — DM media from X (TON / twimg) and to X (upload v2).
//!
//! Nothing here panics on outside input, and nothing logs secrets, tokens or message text.

mod lenient;
mod user;

pub mod client;
pub mod dm_events;
pub mod media_download;
pub mod media_hosts;
pub mod media_upload;
pub mod oauth1;
pub mod payload;
pub mod problem;
pub mod rate_limit;
pub mod webhook;

pub use client::{
    API_URL_SETTING, DEFAULT_API_URL, USER_FIELDS, XClient, XClientConfig, XConfigError,
    error_from_response,
};
pub use media_download::MAX_MEDIA_REDIRECTS;
pub use media_hosts::{
    DEFAULT_MEDIA_HOSTS, MEDIA_HOSTS_SETTING, MediaHost, MediaHosts, MediaHostsError,
};
pub use media_upload::MEDIA_CHUNK_BYTES;
pub use oauth1::{AccessToken, Consumer};
pub use payload::{DeliveryShape, ParsedDelivery, PayloadError, SkippedEvent, parse_delivery};
pub use problem::Problem;
pub use rate_limit::RateLimitHeaders;
pub use webhook::{
    CRC_TOKEN_MAX_LEN, CrcError, CrcResponse, SIGNATURE_HEADER, SignatureError, crc_response,
    verify_signature, verify_signature_header,
};
