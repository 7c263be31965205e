//! SigV4 for the hand-signed calls (the Connect control plane here; SSM GetParameter in the app):
//! credentials from the `SdkConfig` provider, signed with the official `aws-sigv4` crate.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Upper bound on one credentials-provider call (IMDS, STS, SSO, …).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// A lazy cache in front of the `SdkConfig` credentials provider.
///
/// The SDK's own identity cache (`SdkConfig::identity_cache`) can only be driven by the smithy
/// orchestrator (it needs its runtime components), so the hand-signed path keeps this
/// equivalent: resolve on first use, reuse until 5 minutes before expiry, one refresh at a time.
/// Credentials live only here, never in the adapter's configuration, and their `Debug` is redacted.
pub struct CredentialsCache {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsCache").finish_non_exhaustive()
    }
}

impl CredentialsCache {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    fn is_fresh(creds: &Credentials, now: SystemTime) -> bool {
        match creds.expiry() {
            None => true,
            Some(expiry) => expiry > now + REFRESH_BEFORE_EXPIRY,
        }
    }

    /// Current credentials, from the cache or freshly resolved.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut slot = self.cached.lock().await;
        if let Some(creds) = slot.as_ref()
            && Self::is_fresh(creds, SystemTime::now())
        {
            return Ok(creds.clone());
        }
        let resolved = tokio::time::timeout(PROVIDER_TIMEOUT, self.provider.provide_credentials())
            .await
            .map_err(|_| CredentialsError::provider_timed_out(PROVIDER_TIMEOUT))??;
        tracing::debug!(
            expires = ?resolved.expiry(),
            "resolved AWS credentials for the Connect control plane"
        );
        *slot = Some(resolved.clone());
        Ok(resolved)
    }
}

/// Signs `request` in place (adds `x-amz-date`, `authorization` and, for temporary
/// credentials, `x-amz-security-token`). Every header already on the request is signed, plus
/// `host`, derived from the URI exactly as the HTTP client will send it.
pub fn sign_request(
    request: &mut http::Request<Vec<u8>>,
    credentials: Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity: Identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = request.uri().to_string();
    let mut headers = Vec::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII"))?;
        headers.push((name.as_str(), value));
    }
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::provider::future;

    use super::*;

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                Some("session".into()),
                self.expiry,
                "test",
            )))
        }
    }

    #[tokio::test]
    async fn caches_until_close_to_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cache = CredentialsCache::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            expiry: Some(SystemTime::now() + Duration::from_secs(3600)),
        }));
        cache.get().await.unwrap();
        cache.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = Arc::new(AtomicUsize::new(0));
        let cache = CredentialsCache::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            expiry: Some(SystemTime::now() + Duration::from_secs(60)),
        }));
        cache.get().await.unwrap();
        cache.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn signs_with_service_and_region_and_session_token() {
        let mut req = http::Request::builder()
            .method("PUT")
            .uri("http://127.0.0.1:8080/contact/chat")
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .unwrap();
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "t");
        sign_request(
            &mut req,
            creds,
            "us-east-1",
            "connect",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/connect/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date"),
            "{auth}"
        );
        assert_eq!(req.headers()["x-amz-security-token"], "tok");
        assert_eq!(req.headers()["x-amz-date"], "19700101T000000Z");
    }
}
