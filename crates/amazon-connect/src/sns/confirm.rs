//! Confirming an HTTP(S) subscription: GET the `SubscribeURL` of a verified
//! `SubscriptionConfirmation` for the configured topic.
//!
//! The URL comes from the request body, so it is checked before anything is fetched (no SSRF):
//! https on an SNS host (`sns.<region>.amazonaws.com[.cn]`, default port), or the same scheme,
//! host and port as one of the trusted certificate URLs (a sandbox's own SNS emulator).

use super::envelope::{SnsMessage, SnsMessageType};
use super::verify::{SnsVerifier, VerifyError, is_sns_host};

/// Largest confirmation response read (the XML `ConfirmSubscriptionResponse` is tiny).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a subscription was not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("not a SubscriptionConfirmation but a {0}")]
    NotAConfirmation(SnsMessageType),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("the SubscriptionConfirmation has no SubscribeURL")]
    MissingSubscribeUrl,
    #[error("refusing to visit SubscribeURL {url}: not an SNS URL")]
    UntrustedSubscribeUrl { url: String },
    /// Network failure or 5xx: retryable.
    #[error("confirming the subscription failed: {reason}")]
    Request { reason: String },
    /// SNS refused the confirmation (4xx: expired or already used token).
    #[error("SNS refused the subscription confirmation: HTTP {status}")]
    Refused { status: u16 },
}

impl ConfirmError {
    /// Worth retrying later (answer 5xx so SNS redelivers the confirmation).
    pub fn is_retryable(&self) -> bool {
        match self {
            ConfirmError::Verify(e) => e.is_retryable(),
            ConfirmError::Request { .. } => true,
            _ => false,
        }
    }
}

/// Whether `subscribe_url` may be visited: https on an SNS host with the default port and no
/// user info, or the exact origin (scheme, host, port) of a trusted certificate URL.
pub fn is_allowed_subscribe_url<'a>(
    subscribe_url: &str,
    trusted_cert_urls: impl IntoIterator<Item = &'a str>,
) -> bool {
    let Ok(url) = url::Url::parse(subscribe_url) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    if url.scheme() == "https" && url.port().is_none() && url.host_str().is_some_and(is_sns_host) {
        return true;
    }
    let origin = url.origin();
    origin.is_tuple()
        && trusted_cert_urls
            .into_iter()
            .filter_map(|t| url::Url::parse(t).ok())
            .any(|t| t.origin() == origin)
}

impl SnsVerifier {
    /// Confirms a `SubscriptionConfirmation`: verified first (topic, certificate, signature),
    /// then the checked `SubscribeURL` is fetched with GET. Redirects are not followed.
    pub async fn confirm_subscription(&self, msg: &SnsMessage) -> Result<(), ConfirmError> {
        if msg.message_type != SnsMessageType::SubscriptionConfirmation {
            return Err(ConfirmError::NotAConfirmation(msg.message_type));
        }
        self.verify(msg).await?;
        let url = msg
            .subscribe_url
            .as_deref()
            .ok_or(ConfirmError::MissingSubscribeUrl)?;
        if !is_allowed_subscribe_url(url, self.trusted_cert_urls()) {
            return Err(ConfirmError::UntrustedSubscribeUrl {
                url: url.to_owned(),
            });
        }
        let mut response =
            self.http()
                .get(url)
                .send()
                .await
                .map_err(|e| ConfirmError::Request {
                    reason: e.without_url().to_string(),
                })?;
        let status = response.status();
        // Drain (bounded) so the connection can be reused; the body is not needed.
        let mut read = 0usize;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                break;
            }
        }
        if status.is_success() {
            tracing::info!(topic_arn = %msg.topic_arn, "SNS subscription confirmed");
            Ok(())
        } else if status.is_server_error() {
            Err(ConfirmError::Request {
                reason: format!("HTTP {status}"),
            })
        } else {
            Err(ConfirmError::Refused {
                status: status.as_u16(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_url_rule() {
        let none: [&str; 0] = [];
        assert!(is_allowed_subscribe_url(
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:1:t&Token=x",
            none
        ));
        for bad in [
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com.evil.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com:444/?Action=ConfirmSubscription",
            "https://a@sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "garbage",
        ] {
            assert!(!is_allowed_subscribe_url(bad, none), "{bad}");
        }
        let trusted = ["http://127.0.0.1:4566/sns/cert.pem"];
        assert!(is_allowed_subscribe_url(
            "http://127.0.0.1:4566/sns/confirm?Token=x",
            trusted
        ));
        assert!(!is_allowed_subscribe_url(
            "http://127.0.0.1:4567/confirm",
            trusted
        ));
        assert!(!is_allowed_subscribe_url(
            "https://127.0.0.1:4566/confirm",
            trusted
        ));
        assert!(!is_allowed_subscribe_url(
            "http://localhost:4566/confirm",
            trusted
        ));
    }
}
