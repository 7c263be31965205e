//! `xdm_webhook_requests_total`: what became of each request of the platforms (X's webhook and
//! CRC, the Connect chat stream through SNS, on `serve` or on Lambda) — by source, result and,
//! for a refusal, its reason. The reasons are a fixed set, so the label stays bounded.

use metrics::{Unit, describe_counter};
use xdm_amazon_connect::sns::{ConfirmError, VerifyError};

pub const WEBHOOK_REQUESTS: &str = "xdm_webhook_requests_total";

/// Who sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// X: `GET`/`POST /webhooks/x` (CRC, events).
    X,
    /// Amazon Connect's chat stream: `POST /webhooks/connect` (SNS), or an SNS record on Lambda.
    Connect,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::X => "x",
            Source::Connect => "connect",
        }
    }
}

/// A request that was answered with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// At least one new message was stored for delivery.
    Accepted,
    /// Everything in it was stored before (a platform's retry).
    Duplicate,
    /// Nothing in it needs delivery (typing, read, echoes, items not for the customer, SNS
    /// subscription notices, messages past the age bound).
    Ignored,
    /// X's challenge-response check was answered.
    Crc,
    /// An SNS subscription was confirmed.
    Confirmed,
}

impl Handled {
    fn as_str(self) -> &'static str {
        match self {
            Handled::Accepted => "accepted",
            Handled::Duplicate => "duplicate",
            Handled::Ignored => "ignored",
            Handled::Crc => "crc",
            Handled::Confirmed => "confirmed",
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The secret or the topic needed to check it is not configured (503).
    NotConfigured,
    /// The signature does not verify (401).
    BadSignature,
    /// An SNS message of another topic than the configured one (403).
    ForeignTopic,
    /// The body (or the CRC token) cannot be read (400).
    Malformed,
    /// The body is over `XDM_MAX_BODY_BYTES` (413).
    TooLarge,
    /// Older than the replay window (a replayed request).
    Stale,
    /// The SNS signing certificate, or the subscription confirmation, could not be fetched
    /// (502: SNS retries).
    Upstream,
    /// The store failed: nothing was kept, the platform delivers again (503).
    StoreUnavailable,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::NotConfigured => "not_configured",
            Refusal::BadSignature => "bad_signature",
            Refusal::ForeignTopic => "foreign_topic",
            Refusal::Malformed => "malformed",
            Refusal::TooLarge => "too_large",
            Refusal::Stale => "stale",
            Refusal::Upstream => "upstream",
            Refusal::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Counts a request answered with success.
pub fn handled(source: Source, result: Handled) {
    metrics::counter!(WEBHOOK_REQUESTS, "source" => source.as_str(), "result" => result.as_str())
        .increment(1);
}

/// Counts a refused request.
pub fn refused(source: Source, reason: Refusal) {
    metrics::counter!(WEBHOOK_REQUESTS, "source" => source.as_str(), "result" => "rejected",
        "reason" => reason.as_str())
    .increment(1);
}

/// The result of an X delivery by what became of its events.
pub fn x_delivery_result(report: &xdm_core::AcceptReport) -> Handled {
    if report.accepted > 0 {
        Handled::Accepted
    } else if report.duplicates > 0 {
        Handled::Duplicate
    } else {
        Handled::Ignored
    }
}

/// The result of a chat item by what the bridge did with it.
pub fn chat_item_result(outcome: xdm_core::ItemAcceptance) -> Handled {
    match outcome {
        xdm_core::ItemAcceptance::Accepted => Handled::Accepted,
        xdm_core::ItemAcceptance::Duplicate => Handled::Duplicate,
        xdm_core::ItemAcceptance::Filtered => Handled::Ignored,
    }
}

/// Why an SNS message was refused, by the verifier's error.
pub fn sns_refusal(e: &VerifyError) -> Refusal {
    match e {
        VerifyError::ForeignTopic { .. } => Refusal::ForeignTopic,
        VerifyError::CertFetch { .. } => Refusal::Upstream,
        VerifyError::NotFresh(_) => Refusal::Stale,
        _ => Refusal::BadSignature,
    }
}

/// Why an SNS subscription confirmation was refused.
pub fn confirmation_refusal(e: &ConfirmError) -> Refusal {
    match e {
        ConfirmError::Verify(e) => sns_refusal(e),
        ConfirmError::Request { .. } | ConfirmError::Refused { .. } => Refusal::Upstream,
        ConfirmError::NotAConfirmation(_)
        | ConfirmError::MissingSubscribeUrl
        | ConfirmError::UntrustedSubscribeUrl { .. } => Refusal::Malformed,
    }
}

pub(super) fn describe() {
    describe_counter!(
        WEBHOOK_REQUESTS,
        Unit::Count,
        "Requests of the platforms (source x: webhook events and CRC; connect: the SNS chat stream) by result (accepted, duplicate, ignored, crc, confirmed, rejected) and, when rejected, reason (not_configured, bad_signature, foreign_topic, malformed, too_large, stale, upstream, store_unavailable)."
    );
}
