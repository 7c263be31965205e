//! xdm-x: the X (Twitter) adapter of xdm-connect.
//!
//! * [`webhook`] — the CRC answer and the delivery signatures (`x-twitter-webhooks-signature`
//!   keyed by the consumer secret, `x-twitter-webhooks-signature-oauth2` by the OAuth 2.0 client
//!   secret: [`verify_delivery`], [`crc_answer`]).
//! * [`payload`] — Account Activity and X Activity API deliveries → [`xdm_core::inbound::InboundBatch`].
//! * [`auth`] — who a call is made as ([`UserAuth`]: OAuth 1.0a or OAuth 2.0 user context),
//!   where OAuth 2.0 tokens come from ([`UserTokenSource`]) and which a call uses.
//! * [`oauth1`] — OAuth 1.0a HMAC-SHA1 request signing (RFC 5849, as X uses it);
//!   [`oauth2`] — Authorization Code with PKCE, refresh ([`xdm_core::ports::TokenRefresher`]),
//!   revocation.
//! * [`rate_limit`], [`problem`] — X's rate-limit headers and error bodies; [`error`] — failures
//!   classified for the core ([`error_from_response`]).
//! * [`config`] — [`XClientConfig`]: how to reach X and as whom; [`client`] — [`XClient`], the
//!   REST client (`transport`: the HTTP plumbing all clients share); [`x_api`] — [`XClient`] as
//!   [`xdm_core::ports::XApi`], over [`dm_send`] (sending a DM), [`user_lookup`] (profiles) and
//!   [`dm_events`] (reading DMs back: what a business sent; a page of its recent DMs for the
//!   reconciler).
//! * [`manage`] — [`AppClient`] (app bearer: webhooks, replay, subscriptions) and the
//!   user-context subscription calls; [`stream`] — the X Activity API stream.
//! * [`chat`] — X Chat (end-to-end encrypted messages): the account's keys, public keys, a
//!   customer's message checked then opened, a reply sealed, signed and sent.
//! * [`media_hosts`] — the media host allow-list (`XDM_X_MEDIA_HOSTS`);
//!   [`media_download`] and [`media_upload`] — DM media from X (TON / v2 / twimg) and to X
//!   (upload v2).
//!
//! Nothing here panics on outside input, and nothing logs secrets, tokens or message text.

mod lenient;
mod transport;
mod user;

pub mod auth;
pub mod chat;
pub mod client;
pub mod config;
pub mod dm_events;
pub mod dm_send;
pub mod error;
pub mod manage;
pub mod media_download;
pub mod media_hosts;
pub mod media_upload;
pub mod oauth1;
pub mod oauth2;
pub mod payload;
pub mod problem;
pub mod rate_limit;
pub mod stream;
pub mod user_lookup;
pub mod webhook;
pub mod x_api;

pub use auth::{BearerToken, BoxFuture, UserAuth, UserTokenSource};
pub use client::XClient;
pub use config::{API_URL_SETTING, DEFAULT_API_URL, XClientConfig, XConfigError};
pub use dm_events::{DmEventsPage, HistoryDm};
pub use error::error_from_response;
pub use manage::{
    ActivitySubscription, AppClient, ManageError, ManageReason, NewSubscription, ReplayJob, Webhook,
};
pub use media_download::MAX_MEDIA_REDIRECTS;
pub use media_hosts::{
    DEFAULT_MEDIA_HOSTS, MEDIA_HOSTS_SETTING, MediaHost, MediaHosts, MediaHostsError,
};
pub use media_upload::MEDIA_CHUNK_BYTES;
pub use oauth1::{AccessToken, Consumer};
pub use oauth2::{OAuth2Client, OAuth2Error, Pkce, SCOPES, parse_redirect};
pub use payload::{DeliveryShape, ParsedDelivery, PayloadError, SkippedEvent, parse_delivery};
pub use problem::Problem;
pub use rate_limit::RateLimitHeaders;
pub use stream::{ActivityStream, ReconnectKind, StreamError, reconnect_delay};
pub use user::USER_FIELDS;
pub use webhook::{
    CRC_TOKEN_MAX_LEN, CrcError, CrcKey, CrcResponse, OAUTH2_SIGNATURE_HEADER, SIGNATURE_HEADER,
    SignatureError, WebhookSecrets, crc_answer, crc_response, verify_delivery, verify_signature,
    verify_signature_header,
};
