//! SNS, the outbound direction (Connect → X): envelopes in both delivery shapes, signature
//! verification, subscription confirmation and chat-item decoding; and doctor's check of the
//! topic itself ([`TopicCheck`]: exists, standard, Connect may publish, endpoint subscribed).
//!
//! Typical HTTP handler: [`SnsMessage::from_http_body`] → [`SnsVerifier::verify`] (or
//! [`SnsVerifier::confirm_subscription`] for a `SubscriptionConfirmation`) →
//! [`chat_item_from_notification`]. A [`VerifyError::is_retryable`] failure should be answered
//! with a 5xx so SNS redelivers; any other with a 4xx (a retry could not succeed), a replayed
//! message ([`VerifyError::NotFresh`]) included.

mod cert_cache;
pub mod chat_item;
pub mod confirm;
pub mod envelope;
pub mod filter_policy;
pub mod freshness;
pub mod topic_check;
pub mod verify;

pub use cert_cache::FAILED_FETCH_TTL;
pub use chat_item::{ChatItemError, chat_item_from_notification, parse_chat_item};
pub use confirm::{ConfirmError, is_allowed_subscribe_url};
pub use envelope::{EnvelopeError, MessageAttribute, SnsMessage, SnsMessageType};
pub use filter_policy::{ECHO_FILTER_POLICY, ECHO_FILTER_POLICY_SCOPE, is_echo_filter_policy};
pub use freshness::{CLOCK_SKEW, DEFAULT_MAX_AGE, FreshnessError, check_freshness};
pub use topic_check::{
    CONNECT_SERVICE_PRINCIPAL, PolicyError, SubscriptionFilter, SubscriptionState, TopicCheck,
    TopicCheckError, TopicReport, connect_may_publish,
};
pub use verify::{
    DEFAULT_CERT_CACHE_CAPACITY, SnsVerifier, VerifyError, is_aws_cert_url, is_sns_host,
    parse_trusted_cert_urls, rsa_public_key_from_pem, string_to_sign,
};
