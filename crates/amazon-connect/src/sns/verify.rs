//! SNS signature verification (docs/protocols.md B4): topic check, certificate-URL check, certificate
//! cache, RSA PKCS#1 v1.5 with SHA1 (`SignatureVersion` "1", refusable) or SHA256 ("2"), then
//! the message's age ([`super::freshness`]).
//!
//! Certificate fetches are made one at a time, and a failed one is remembered for a minute
//! ([`super::cert_cache`]): an unsigned message costs at most one fetch per URL and minute.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x509_cert::Certificate;

use super::cert_cache::{CertCache, FAILED_FETCH_TTL};
use super::envelope::SnsMessage;
use super::freshness::{DEFAULT_MAX_AGE, FreshnessError, check_freshness};
use crate::config::{ConfigError, settings, validate_topic_arn};

/// OID of `rsaEncryption` (the only key type SNS signs with).
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";
/// Largest certificate document fetched.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// Default number of cached certificates (SNS uses one per region, rotated rarely).
pub const DEFAULT_CERT_CACHE_CAPACITY: usize = 32;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a message was not accepted as coming from the configured SNS topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The message is from another topic than `XDM_CONNECT_TOPIC_ARN`.
    #[error("message from foreign SNS topic {topic_arn}")]
    ForeignTopic { topic_arn: String },
    /// The signing certificate URL is neither an AWS SNS certificate URL nor a trusted one.
    #[error("untrusted SNS signing certificate URL {url}")]
    UntrustedCertUrl { url: String },
    /// The certificate could not be fetched: retryable (answer 5xx so SNS retries).
    #[error("could not fetch the SNS signing certificate {url}: {reason}")]
    CertFetch { url: String, reason: String },
    /// The certificate document is not a usable RSA certificate.
    #[error("unusable SNS signing certificate {url}: {reason}")]
    BadCertificate { url: String, reason: String },
    /// The signature does not verify (or is not base64).
    #[error("bad SNS signature")]
    BadSignature,
    /// `SignatureVersion` other than "1" and "2".
    #[error("unsupported SNS SignatureVersion {0:?}")]
    UnsupportedVersion(String),
    /// `SignatureVersion` "1" (SHA1) while only "2" is accepted.
    #[error(
        "SNS SignatureVersion 1 (SHA1) is refused ({}): set the topic's SignatureVersion attribute to 2",
        settings::REQUIRE_SIGNATURE_V2
    )]
    SignatureVersionRefused,
    /// Correctly signed, but too old (a replay) or ahead of this machine's clock.
    #[error(transparent)]
    NotFresh(#[from] FreshnessError),
}

impl VerifyError {
    /// Worth retrying later (only a failed certificate fetch is).
    pub fn is_retryable(&self) -> bool {
        matches!(self, VerifyError::CertFetch { .. })
    }
}

/// The string SNS signs: `"<Key>\n<Value>\n"` for `Message, MessageId, Subject, SubscribeURL,
/// Timestamp, Token, TopicArn, Type`, in that order, each only if present.
pub fn string_to_sign(msg: &SnsMessage) -> String {
    let mut out = String::with_capacity(msg.message.len() + 512);
    let mut push = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    };
    push("Message", Some(&msg.message));
    push("MessageId", Some(&msg.message_id));
    push("Subject", msg.subject.as_deref());
    push("SubscribeURL", msg.subscribe_url.as_deref());
    push("Timestamp", Some(&msg.timestamp));
    push("Token", msg.token.as_deref());
    push("TopicArn", Some(&msg.topic_arn));
    push("Type", Some(msg.message_type.as_str()));
    out
}

/// `^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$` (the AWS SDKs' default host pattern).
pub fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let middle = rest
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| rest.strip_suffix(".amazonaws.com"));
    match middle {
        Some(m) => m.len() >= 3 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        None => false,
    }
}

/// The AWS rule for signing-certificate URLs: https, an SNS host, the default port, no user
/// info, a path ending in `.pem`.
pub fn is_aws_cert_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str().is_some_and(is_sns_host)
        && url.path().ends_with(".pem")
}

/// Parses `XDM_SNS_TRUSTED_CERT_URLS` (comma-separated exact URLs, http or https).
pub fn parse_trusted_cert_urls(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(check_trusted_cert_url)
        .collect()
}

fn check_trusted_cert_url(s: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(s).map_err(|e| ConfigError::Invalid {
        setting: settings::TRUSTED_CERT_URLS,
        reason: format!("{s:?}: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::Invalid {
            setting: settings::TRUSTED_CERT_URLS,
            reason: format!("{s:?}: must be an http or https URL"),
        });
    }
    Ok(s.to_owned())
}

/// Extracts the RSA public key (PKCS#1 `RSAPublicKey` DER) of the first certificate in `pem`.
/// Validity dates are deliberately not checked (SNS certificates are pinned by URL; the
/// published test vector's certificate expired in 2022).
pub fn rsa_public_key_from_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    let chain =
        Certificate::load_pem_chain(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = chain.first().ok_or("no certificate in the PEM document")?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION_OID {
        return Err(format!("not an RSA key (algorithm {})", spki.algorithm.oid));
    }
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "malformed public key bit string".to_owned())
}

/// Removes the fetch gate of `url` when dropped: after the fetch's result is in the cache, or
/// when the request that fetched is dropped.
struct GateRemoval<'a> {
    gates: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    url: &'a str,
}

impl Drop for GateRemoval<'_> {
    fn drop(&mut self) {
        if let Ok(mut gates) = self.gates.lock() {
            gates.remove(self.url);
        }
    }
}

/// A signing certificate's RSA public key, parsed once for each signature version. Parsing the
/// key and setting up its modular arithmetic again for every message was a sixth of what
/// checking one cost (docs/performance.md, "Micro-benchmarks").
struct SigningKey {
    /// `None`: the key does not suit that version (not RSA of 2048 to 8192 bits); every
    /// signature of that version is then bad, as it would be with the key parsed per message.
    sha1: Option<ParsedPublicKey>,
    sha256: Option<ParsedPublicKey>,
}

impl SigningKey {
    /// `der`: the certificate's key (PKCS#1 `RSAPublicKey`).
    fn new(der: &[u8]) -> Self {
        Self {
            sha1: ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, der).ok(),
            sha256: ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).ok(),
        }
    }
}

/// Verifies SNS messages for one topic. Build once, share (`Arc`) across requests.
pub struct SnsVerifier {
    topic_arn: String,
    trusted_cert_urls: HashSet<String>,
    http: reqwest::Client,
    cache: Mutex<CertCache<SigningKey, VerifyError>>,
    /// One gate per certificate URL being fetched: messages naming the same URL wait for its one
    /// fetch; fetches of different URLs do not wait for each other.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    max_age: Duration,
    require_signature_v2: bool,
}

impl fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("topic_arn", &self.topic_arn)
            .field("trusted_cert_urls", &self.trusted_cert_urls)
            .field("max_age", &self.max_age)
            .field("require_signature_v2", &self.require_signature_v2)
            .finish_non_exhaustive()
    }
}

impl SnsVerifier {
    /// `topic_arn`: the only topic accepted (`XDM_CONNECT_TOPIC_ARN`); `trusted_cert_urls`:
    /// extra certificate URLs trusted verbatim (`XDM_SNS_TRUSTED_CERT_URLS`, sandboxes only).
    pub fn new(
        topic_arn: impl Into<String>,
        trusted_cert_urls: impl IntoIterator<Item = String>,
    ) -> Result<Self, ConfigError> {
        let topic_arn = topic_arn.into();
        validate_topic_arn(&topic_arn)?;
        let trusted = trusted_cert_urls
            .into_iter()
            .map(|u| check_trusted_cert_url(u.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            topic_arn,
            trusted_cert_urls: trusted.into_iter().collect(),
            http,
            cache: Mutex::new(CertCache::new(
                DEFAULT_CERT_CACHE_CAPACITY,
                FAILED_FETCH_TTL,
            )),
            fetching: Mutex::default(),
            max_age: DEFAULT_MAX_AGE,
            require_signature_v2: false,
        })
    }

    /// Refuses messages published longer ago than `max_age` (plus the clock-skew allowance):
    /// `XDM_SNS_MAX_AGE_SECS`, default [`DEFAULT_MAX_AGE`] (SNS's longest HTTP/S retry time).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Refuses `SignatureVersion` 1 (SHA1) when `required` (`XDM_SNS_REQUIRE_SIGNATURE_V2`).
    pub fn with_signature_v2_required(mut self, required: bool) -> Self {
        self.require_signature_v2 = required;
        self
    }

    /// How long a failed certificate fetch is answered from memory (default
    /// [`FAILED_FETCH_TTL`]).
    pub fn with_failed_fetch_ttl(self, ttl: Duration) -> Self {
        if let Ok(mut cache) = self.cache.lock() {
            cache.set_failure_ttl(ttl);
        }
        self
    }

    /// Replaces the HTTP client used for certificate fetches and subscription confirmations
    /// (it should not follow redirects).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Bounds the certificate cache (at least 1).
    pub fn with_cache_capacity(self, capacity: usize) -> Self {
        if let Ok(mut cache) = self.cache.lock() {
            cache.set_capacity(capacity);
        }
        self
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn trusted_cert_urls(&self) -> impl Iterator<Item = &str> {
        self.trusted_cert_urls.iter().map(String::as_str)
    }

    /// Whether a certificate may be fetched from `url`: an exact trusted URL, or the AWS rule.
    pub fn is_allowed_cert_url(&self, url: &str) -> bool {
        self.trusted_cert_urls.contains(url) || is_aws_cert_url(url)
    }

    /// Puts a certificate in the cache so it is never fetched (tests, pinned deployments).
    /// The URL still has to pass [`SnsVerifier::is_allowed_cert_url`] when a message uses it.
    pub fn seed_certificate(&self, url: &str, pem: &[u8]) -> Result<(), VerifyError> {
        let key = rsa_public_key_from_pem(pem).map_err(|reason| VerifyError::BadCertificate {
            url: url.to_owned(),
            reason,
        })?;
        self.cache_insert(url, Arc::new(SigningKey::new(&key)));
        Ok(())
    }

    /// What the cache knows of `url`: its key, or the failure of a recent fetch.
    fn cached(&self, url: &str) -> Option<Result<Arc<SigningKey>, VerifyError>> {
        let cache = self.cache.lock().ok()?;
        match cache.get(url) {
            Some(key) => Some(Ok(key)),
            None => cache.failure(url, Instant::now()).map(Err),
        }
    }

    fn cache_insert(&self, url: &str, key: Arc<SigningKey>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(url.to_owned(), key);
        }
    }

    /// The public key of the certificate at `url`: cached, else fetched — one fetch at a time
    /// per URL, and a failure is answered again from memory for a while.
    async fn public_key(&self, url: &str) -> Result<Arc<SigningKey>, VerifyError> {
        if let Some(known) = self.cached(url) {
            return known;
        }
        let gate = match self.fetching.lock() {
            Ok(mut gates) => Arc::clone(gates.entry(url.to_owned()).or_default()),
            Err(_) => Arc::default(),
        };
        let _fetching = gate.lock().await;
        // Whatever happens next (also a request dropped mid-fetch), the gate goes with it.
        let _gate_removal = GateRemoval {
            gates: &self.fetching,
            url,
        };
        // Whoever held the gate before fetched this very URL.
        if let Some(known) = self.cached(url) {
            return known;
        }
        let fetched = self.fetch_public_key(url).await;
        match &fetched {
            Ok(key) => {
                self.cache_insert(url, key.clone());
                tracing::info!(url, "cached SNS signing certificate");
            }
            Err(e) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remember_failure(url, e.clone(), Instant::now());
                }
            }
        }
        fetched
    }

    async fn fetch_public_key(&self, url: &str) -> Result<Arc<SigningKey>, VerifyError> {
        let fetch_err = |reason: String| VerifyError::CertFetch {
            url: url.to_owned(),
            reason,
        };
        tracing::debug!(url, "fetching SNS signing certificate");
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fetch_err(format!("HTTP {}", response.status())));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch_err(e.to_string()))?
        {
            if pem.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(fetch_err(format!("larger than {MAX_CERT_BYTES} bytes")));
            }
            pem.extend_from_slice(&chunk);
        }
        let key = rsa_public_key_from_pem(&pem).map_err(|reason| VerifyError::BadCertificate {
            url: url.to_owned(),
            reason,
        })?;
        Ok(Arc::new(SigningKey::new(&key)))
    }

    /// Verifies that `msg` comes from the configured topic, carries a valid SNS signature and
    /// was published recently (now, by this machine's clock).
    pub async fn verify(&self, msg: &SnsMessage) -> Result<(), VerifyError> {
        self.verify_at(msg, SystemTime::now()).await
    }

    /// As [`SnsVerifier::verify`], the message's age measured at `now` (tests, recorded
    /// messages).
    pub async fn verify_at(&self, msg: &SnsMessage, now: SystemTime) -> Result<(), VerifyError> {
        if msg.topic_arn != self.topic_arn {
            return Err(VerifyError::ForeignTopic {
                topic_arn: msg.topic_arn.clone(),
            });
        }
        let sha256 = match msg.signature_version.as_str() {
            "1" if self.require_signature_v2 => return Err(VerifyError::SignatureVersionRefused),
            "1" => false,
            "2" => true,
            other => return Err(VerifyError::UnsupportedVersion(other.to_owned())),
        };
        if !self.is_allowed_cert_url(&msg.signing_cert_url) {
            return Err(VerifyError::UntrustedCertUrl {
                url: msg.signing_cert_url.clone(),
            });
        }
        let signature = STANDARD
            .decode(msg.signature.trim())
            .map_err(|_| VerifyError::BadSignature)?;
        let key = self.public_key(&msg.signing_cert_url).await?;
        let parsed = if sha256 { &key.sha256 } else { &key.sha1 };
        parsed
            .as_ref()
            .ok_or(VerifyError::BadSignature)?
            .verify_sig(string_to_sign(msg).as_bytes(), &signature)
            .map_err(|_| VerifyError::BadSignature)?;
        // Only now is the Timestamp known to be SNS's.
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        check_freshness(&msg.timestamp, now_ms, self.max_age)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sns::envelope::SnsMessageType;

    #[test]
    fn sns_host_pattern() {
        for ok in [
            "sns.us-east-2.amazonaws.com",
            "sns.cn-north-1.amazonaws.com.cn",
            "sns.us-gov-west-1.amazonaws.com",
        ] {
            assert!(is_sns_host(ok), "{ok}");
        }
        for bad in [
            "sns.us-east-2.amazonaws.com.evil.com",
            "sns.amazonaws.com",
            "sns.ab.amazonaws.com",
            "evil.com",
            "sqs.us-east-1.amazonaws.com",
            "sns.us_east.amazonaws.com",
            "xsns.us-east-1.amazonaws.com",
            "sns.a.b.amazonaws.com",
        ] {
            assert!(!is_sns_host(bad), "{bad}");
        }
    }

    #[test]
    fn aws_cert_url_rule() {
        assert!(is_aws_cert_url(
            "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
        ));
        for bad in [
            "https://sns.us-east-2.amazonaws.com.evil.com/x.pem",
            "http://sns.us-east-2.amazonaws.com/x.pem",
            "https://evil.com/SimpleNotificationService-x.pem",
            "https://sns.us-east-2.amazonaws.com/x.pem.txt",
            "https://sns.us-east-2.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-2.amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(!is_aws_cert_url(bad), "{bad}");
        }
    }

    #[test]
    fn trusted_list_parsing() {
        assert_eq!(
            parse_trusted_cert_urls(" http://127.0.0.1:9/c.pem, ,https://x/y ").unwrap(),
            vec![
                "http://127.0.0.1:9/c.pem".to_owned(),
                "https://x/y".to_owned()
            ]
        );
        assert!(parse_trusted_cert_urls("").unwrap().is_empty());
        let err = parse_trusted_cert_urls("ftp://x/c.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("XDM_SNS_TRUSTED_CERT_URLS is invalid"),
            "{err}"
        );
    }

    fn msg() -> SnsMessage {
        SnsMessage {
            message_type: SnsMessageType::Notification,
            message_id: "id".into(),
            topic_arn: "arn:aws:sns:us-east-1:1:t".into(),
            subject: None,
            message: "line1\nline2".into(),
            timestamp: "ts".into(),
            signature_version: "1".into(),
            signature: "c2ln".into(),
            signing_cert_url: "https://sns.us-east-1.amazonaws.com/c.pem".into(),
            subscribe_url: None,
            unsubscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".into()),
            token: None,
            message_attributes: Default::default(),
        }
    }

    #[test]
    fn string_to_sign_keys_in_order_only_if_present() {
        assert_eq!(
            string_to_sign(&msg()),
            "Message\nline1\nline2\nMessageId\nid\nTimestamp\nts\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
        );
        let mut m = msg();
        m.subject = Some("S".into());
        assert!(string_to_sign(&m).contains("MessageId\nid\nSubject\nS\nTimestamp"));
        let mut m = msg();
        m.message_type = SnsMessageType::SubscriptionConfirmation;
        m.subscribe_url = Some("https://s/?a".into());
        m.token = Some("tok".into());
        assert_eq!(
            string_to_sign(&m),
            "Message\nline1\nline2\nMessageId\nid\nSubscribeURL\nhttps://s/?a\nTimestamp\nts\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nSubscriptionConfirmation\n"
        );
    }

    #[tokio::test]
    async fn rejections_before_any_fetch() {
        let v = SnsVerifier::new("arn:aws:sns:us-east-1:1:t", Vec::new()).unwrap();
        let mut m = msg();
        m.topic_arn = "arn:aws:sns:us-east-1:1:other".into();
        assert!(matches!(
            v.verify(&m).await,
            Err(VerifyError::ForeignTopic { .. })
        ));
        let mut m = msg();
        m.signature_version = "3".into();
        assert_eq!(
            v.verify(&m).await,
            Err(VerifyError::UnsupportedVersion("3".into()))
        );
        let mut m = msg();
        m.signing_cert_url = "https://evil.com/SimpleNotificationService-x.pem".into();
        assert!(matches!(
            v.verify(&m).await,
            Err(VerifyError::UntrustedCertUrl { .. })
        ));
        let mut m = msg();
        m.signature = "***".into();
        assert_eq!(v.verify(&m).await, Err(VerifyError::BadSignature));
    }

    #[tokio::test]
    async fn signature_version_1_is_refused_before_any_fetch_when_v2_is_required() {
        let v = SnsVerifier::new("arn:aws:sns:us-east-1:1:t", Vec::new())
            .unwrap()
            .with_signature_v2_required(true);
        assert_eq!(
            v.verify(&msg()).await,
            Err(VerifyError::SignatureVersionRefused)
        );
        let err = VerifyError::SignatureVersionRefused.to_string();
        assert!(err.contains("XDM_SNS_REQUIRE_SIGNATURE_V2"), "{err}");
        // Version 2 goes on to the signature (here: not base64).
        let mut m = msg();
        m.signature_version = "2".into();
        m.signature = "***".into();
        assert_eq!(v.verify(&m).await, Err(VerifyError::BadSignature));
    }

    #[test]
    fn seeding_rejects_garbage() {
        let v = SnsVerifier::new("arn:aws:sns:us-east-1:1:t", Vec::new()).unwrap();
        assert!(matches!(
            v.seed_certificate("https://sns.us-east-1.amazonaws.com/c.pem", b"nope"),
            Err(VerifyError::BadCertificate { .. })
        ));
    }
}
