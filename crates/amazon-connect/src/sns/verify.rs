//! SNS signature verification (docs/protocols.md B4): topic check, certificate-URL check, certificate
//! cache, RSA PKCS#1 v1.5 with SHA1 (`SignatureVersion` "1") or SHA256 ("2").

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, RsaParameters,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x509_cert::Certificate;

use super::envelope::SnsMessage;
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

/// A small bounded cache of certificate public keys, by exact URL.
struct CertCache {
    capacity: usize,
    keys: HashMap<String, Arc<[u8]>>,
    order: VecDeque<String>,
}

impl CertCache {
    fn get(&self, url: &str) -> Option<Arc<[u8]>> {
        self.keys.get(url).cloned()
    }

    fn insert(&mut self, url: String, key: Arc<[u8]>) {
        if self.keys.insert(url.clone(), key).is_some() {
            return;
        }
        self.order.push_back(url);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }
}

/// Verifies SNS messages for one topic. Build once, share (`Arc`) across requests.
pub struct SnsVerifier {
    topic_arn: String,
    trusted_cert_urls: HashSet<String>,
    http: reqwest::Client,
    cache: Mutex<CertCache>,
}

impl fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("topic_arn", &self.topic_arn)
            .field("trusted_cert_urls", &self.trusted_cert_urls)
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
            cache: Mutex::new(CertCache {
                capacity: DEFAULT_CERT_CACHE_CAPACITY,
                keys: HashMap::new(),
                order: VecDeque::new(),
            }),
        })
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
            cache.capacity = capacity.max(1);
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
        self.cache_insert(url, key.into());
        Ok(())
    }

    fn cache_get(&self, url: &str) -> Option<Arc<[u8]>> {
        self.cache.lock().ok().and_then(|c| c.get(url))
    }

    fn cache_insert(&self, url: &str, key: Arc<[u8]>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(url.to_owned(), key);
        }
    }

    async fn public_key(&self, url: &str) -> Result<Arc<[u8]>, VerifyError> {
        if let Some(key) = self.cache_get(url) {
            return Ok(key);
        }
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
        let key: Arc<[u8]> = rsa_public_key_from_pem(&pem)
            .map_err(|reason| VerifyError::BadCertificate {
                url: url.to_owned(),
                reason,
            })?
            .into();
        self.cache_insert(url, key.clone());
        tracing::info!(url, "cached SNS signing certificate");
        Ok(key)
    }

    /// Verifies that `msg` comes from the configured topic and carries a valid SNS signature.
    pub async fn verify(&self, msg: &SnsMessage) -> Result<(), VerifyError> {
        if msg.topic_arn != self.topic_arn {
            return Err(VerifyError::ForeignTopic {
                topic_arn: msg.topic_arn.clone(),
            });
        }
        let algorithm: &'static RsaParameters = match msg.signature_version.as_str() {
            "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &RSA_PKCS1_2048_8192_SHA256,
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
        UnparsedPublicKey::new(algorithm, &key[..])
            .verify(string_to_sign(msg).as_bytes(), &signature)
            .map_err(|_| VerifyError::BadSignature)
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

    #[test]
    fn cache_is_bounded() {
        let mut c = CertCache {
            capacity: 2,
            keys: HashMap::new(),
            order: VecDeque::new(),
        };
        for u in ["a", "b", "c"] {
            c.insert(u.into(), Arc::from(&b"k"[..]));
        }
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
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

    #[test]
    fn seeding_rejects_garbage() {
        let v = SnsVerifier::new("arn:aws:sns:us-east-1:1:t", Vec::new()).unwrap();
        assert!(matches!(
            v.seed_certificate("https://sns.us-east-1.amazonaws.com/c.pem", b"nope"),
            Err(VerifyError::BadCertificate { .. })
        ));
    }
}
