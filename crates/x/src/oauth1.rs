//! OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849 §3.4), as X uses it (docs/protocols.md A7).
//!
//! Hand-rolled on purpose (docs/architecture.md, Build cost): `oauth1-request` pulls hmac 0.12 / sha1 0.10 /
//! digest 0.10 — a second RustCrypto generation next to the hmac 0.13 / digest 0.11 that aws-sigv4
//! already brings — and `reqwest-oauth1` depends on reqwest 0.12, a second HTTP stack. The signer
//! is a hundred lines on hmac 0.13 + sha1 0.11 + percent-encoding + base64, pinned by the published
//! test vectors (X's docs and RFC 5849).
//!
//! What is signed: the query parameters, the body parameters of an
//! `application/x-www-form-urlencoded` body, and the `oauth_*` protocol parameters. JSON and
//! multipart bodies are not signed (RFC 5849 §3.4.1.3.1), so X v2 JSON endpoints sign only the
//! query and the protocol parameters.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use url::Url;

/// RFC 3986 §2.3: everything but the unreserved `A–Z a–z 0–9 - . _ ~` is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The app's credentials (X "API key" and "API key secret").
#[derive(Clone, PartialEq, Eq)]
pub struct Consumer {
    key: String,
    secret: String,
}

impl Consumer {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The secret itself: only for signing, never for logs.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Consumer(…)")
    }
}

/// A user's access token and token secret (the business account the app acts for).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: String,
    secret: String,
}

impl AccessToken {
    pub fn new(token: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            secret: secret.into(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The secret itself: only for signing, never for logs.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(…)")
    }
}

/// The parts of an HTTP request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// `GET`, `POST`, … (upper-cased for the base string).
    pub method: &'a str,
    /// The full request URL, query included.
    pub url: &'a Url,
    /// The body, only when it is `application/x-www-form-urlencoded`.
    pub form_body: Option<&'a [u8]>,
}

/// A computed signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// RFC 5849 §3.4.1 signature base string.
    pub base_string: String,
    /// base64 HMAC-SHA1 (not yet percent-encoded).
    pub signature: String,
    /// The `Authorization` header value (`OAuth oauth_consumer_key="…", …`).
    pub authorization: String,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signed(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuth1Error {
    /// Cannot happen with HMAC (it takes keys of any length); typed rather than unwrapped.
    #[error("the OAuth 1.0a signing key was refused by HMAC-SHA1")]
    Key,
}

/// RFC 3986 percent-encoding of UTF-8 bytes, uppercase hex, space as `%20`.
pub fn percent_encode(s: &str) -> String {
    encoded(s).into_owned()
}

/// [`percent_encode`], borrowing `s` when nothing in it needs encoding (most of what is signed:
/// ids, keys, hex nonces, timestamps).
fn encoded(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, RFC3986).into()
}

/// Appends `s` percent-encoded to `out`, without a string of its own.
fn push_encoded(out: &mut String, s: &str) {
    for chunk in utf8_percent_encode(s, RFC3986) {
        out.push_str(chunk);
    }
}

/// The base string URI (RFC 5849 §3.4.1.2): scheme and host lower-cased, default port dropped,
/// no query or fragment.
pub fn base_string_uri(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    // `Url::port` is `None` for the scheme's default port.
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// The normalized request parameters (RFC 5849 §3.4.1.3.2): query, form body and `oauth`
/// parameters (minus any `oauth_signature`), encoded, sorted by name then value, joined by `&`.
pub fn normalized_parameters(
    url: &Url,
    form_body: Option<&[u8]>,
    oauth: &[(&str, &str)],
) -> String {
    let query = url.query().unwrap_or_default().as_bytes();
    let decoded: Vec<(Cow<'_, str>, Cow<'_, str>)> = url::form_urlencoded::parse(query)
        .chain(form_body.into_iter().flat_map(url::form_urlencoded::parse))
        .filter(|(k, _)| k != "oauth_signature")
        .collect();
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = decoded
        .iter()
        .map(|(k, v)| (encoded(k), encoded(v)))
        .chain(
            oauth
                .iter()
                .filter(|(k, _)| *k != "oauth_signature")
                .map(|(k, v)| (encoded(k), encoded(v))),
        )
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The signature base string (RFC 5849 §3.4.1).
pub fn signature_base_string(
    method: &str,
    url: &Url,
    form_body: Option<&[u8]>,
    oauth: &[(&str, &str)],
) -> String {
    let uri = base_string_uri(url);
    let parameters = normalized_parameters(url, form_body, oauth);
    // Encoding at most triples a string.
    let mut out = String::with_capacity(method.len() + 2 + 3 * (uri.len() + parameters.len()));
    out.extend(method.chars().map(|c| c.to_ascii_uppercase()));
    out.push('&');
    push_encoded(&mut out, &uri);
    out.push('&');
    push_encoded(&mut out, &parameters);
    out
}

/// base64(HMAC-SHA1(`pct(consumer_secret)&pct(token_secret)`, base string)) (RFC 5849 §3.4.2).
pub fn hmac_sha1_signature(
    base_string: &str,
    consumer_secret: &str,
    token_secret: &str,
) -> Result<String, OAuth1Error> {
    let mut key = String::with_capacity(consumer_secret.len() + token_secret.len() + 1);
    push_encoded(&mut key, consumer_secret);
    key.push('&');
    push_encoded(&mut key, token_secret);
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes()).map_err(|_| OAuth1Error::Key)?;
    mac.update(base_string.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// `OAuth k="v", …` with the protocol parameters and the signature, sorted, values encoded.
pub fn authorization_header(oauth: &[(&str, &str)], signature: &str) -> String {
    let mut params: Vec<(&str, &str)> = oauth
        .iter()
        .copied()
        .filter(|(k, _)| *k != "oauth_signature")
        .chain(std::iter::once(("oauth_signature", signature)))
        .collect();
    params.sort_unstable();
    let mut out = String::with_capacity(
        6 + params
            .iter()
            .map(|(k, v)| k.len() + 3 * v.len() + 5)
            .sum::<usize>(),
    );
    out.push_str("OAuth ");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_encoded(&mut out, k);
        out.push_str("=\"");
        push_encoded(&mut out, v);
        out.push('"');
    }
    out
}

/// Signs with a given nonce and timestamp (deterministic: for tests and verification).
/// The protocol parameters are X's: consumer key, nonce, `HMAC-SHA1`, timestamp, the token when
/// there is one, and `oauth_version="1.0"`.
pub fn sign_with(
    request: &SignableRequest<'_>,
    consumer: &Consumer,
    token: Option<&AccessToken>,
    nonce: &str,
    timestamp: u64,
) -> Result<Signed, OAuth1Error> {
    let timestamp = timestamp.to_string();
    let mut oauth: Vec<(&str, &str)> = vec![
        ("oauth_consumer_key", consumer.key()),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", &timestamp),
        ("oauth_version", "1.0"),
    ];
    if let Some(t) = token {
        oauth.push(("oauth_token", t.token()));
    }
    let base_string = signature_base_string(request.method, request.url, request.form_body, &oauth);
    let signature = hmac_sha1_signature(
        &base_string,
        consumer.expose_secret(),
        token.map(AccessToken::expose_secret).unwrap_or_default(),
    )?;
    let authorization = authorization_header(&oauth, &signature);
    Ok(Signed {
        base_string,
        signature,
        authorization,
    })
}

/// Signs with a fresh nonce (a random UUID v4 in hex) and the current Unix time.
pub fn sign(
    request: &SignableRequest<'_>,
    consumer: &Consumer,
    token: Option<&AccessToken>,
) -> Result<Signed, OAuth1Error> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    sign_with(request, consumer, token, &new_nonce(), timestamp)
}

/// A unique nonce: 32 hex characters from a random UUID v4.
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn percent_encodes_per_rfc3986() {
        assert_eq!(
            percent_encode("Ladies + Gentlemen"),
            "Ladies%20%2B%20Gentlemen"
        );
        assert_eq!(
            percent_encode("Dogs, Cats & Mice"),
            "Dogs%2C%20Cats%20%26%20Mice"
        );
        assert_eq!(percent_encode("☃"), "%E2%98%83");
        assert_eq!(
            percent_encode("An encoded string!"),
            "An%20encoded%20string%21"
        );
        assert_eq!(percent_encode("-._~azAZ09"), "-._~azAZ09");
        assert_eq!(percent_encode("/?=&%*"), "%2F%3F%3D%26%25%2A");
    }

    /// docs/protocols.md A7 vector 1 (X docs, "Creating a signature").
    #[test]
    fn vector_1_x_docs() {
        let consumer = Consumer::new(
            "xvz1evFS4wEEPTGEFPHBog",
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        );
        let token = AccessToken::new(
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        let body = b"status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21";
        let sign_for = |host: &str| {
            let u = url(&format!(
                "https://{host}/1.1/statuses/update.json?include_entities=true"
            ));
            let req = SignableRequest {
                method: "POST",
                url: &u,
                form_body: Some(body),
            };
            sign_with(
                &req,
                &consumer,
                Some(&token),
                "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
                1_318_622_958,
            )
            .unwrap()
        };
        let signed = sign_for("api.x.com");
        assert_eq!(
            signed.base_string,
            "POST&https%3A%2F%2Fapi.x.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(signed.signature, "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=");
        assert_eq!(
            signed.authorization,
            "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", \
             oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
             oauth_signature=\"Ls93hJiZbQ3akF3HF3x1Bz8%2FzU4%3D\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1318622958\", \
             oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", \
             oauth_version=\"1.0\""
        );
        // The pre-2025 host gives the old doc's signature.
        assert_eq!(
            sign_for("api.twitter.com").signature,
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    /// docs/protocols.md A7 vector 2 (RFC 5849 §1.2; no oauth_version, realm not signed).
    #[test]
    fn vector_2_rfc5849_protected_resource() {
        let u = url("http://photos.example.net/photos?file=vacation.jpg&size=original");
        let oauth = [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131202"),
            ("oauth_nonce", "chapoH"),
        ];
        let base = signature_base_string("GET", &u, None, &oauth);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
        );
        let sig = hmac_sha1_signature(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00").unwrap();
        assert_eq!(sig, "MdpQcU8iPSUjWoN/UDMsK2sui9I=");
        assert!(
            authorization_header(&oauth, &sig)
                .contains("oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"")
        );
    }

    /// docs/protocols.md A7 vector 3 (RFC 5849 §3.4.1.1): duplicate keys, empty values, `+` in a form body.
    #[test]
    fn vector_3_rfc5849_normalisation() {
        let u = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        let oauth = [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ];
        assert_eq!(
            signature_base_string("POST", &u, Some(b"c2&a3=2+q"), &oauth),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn base_uri_keeps_only_non_default_ports_and_lowercases() {
        assert_eq!(
            base_string_uri(&url("HTTPS://API.X.com:443/2/users/1?x=1#f")),
            "https://api.x.com/2/users/1"
        );
        assert_eq!(
            base_string_uri(&url("http://127.0.0.1:8080/2/users/1")),
            "http://127.0.0.1:8080/2/users/1"
        );
        assert_eq!(
            base_string_uri(&url("http://example.com:80/")),
            "http://example.com/"
        );
    }

    #[test]
    fn query_parameters_are_signed_and_the_signature_is_not() {
        let c = Consumer::new("ck", "cs");
        let u = url("https://api.x.com/2/users/1?user.fields=name,username");
        let req = SignableRequest {
            method: "get",
            url: &u,
            form_body: None,
        };
        let s = sign_with(&req, &c, None, "n", 1).unwrap();
        assert!(s.base_string.starts_with("GET&"));
        assert!(s.base_string.contains("user.fields%3Dname%252Cusername"));
        assert!(!s.authorization.contains("oauth_token"));
        let u2 = url("https://api.x.com/2/users/1?user.fields=name,username&oauth_signature=x");
        let req2 = SignableRequest { url: &u2, ..req };
        assert_eq!(sign_with(&req2, &c, None, "n", 1).unwrap(), s);
    }

    #[test]
    fn fresh_signatures_use_fresh_nonces() {
        let c = Consumer::new("ck", "cs");
        let t = AccessToken::new("at", "ts");
        let u = url("https://api.x.com/2/dm_conversations/with/1/messages");
        let req = SignableRequest {
            method: "POST",
            url: &u,
            form_body: None,
        };
        let a = sign(&req, &c, Some(&t)).unwrap();
        let b = sign(&req, &c, Some(&t)).unwrap();
        assert_ne!(a.authorization, b.authorization);
        assert_eq!(new_nonce().len(), 32);
        assert_eq!(
            format!("{c:?} {t:?} {a:?}"),
            "Consumer(…) AccessToken(…) Signed(…)"
        );
    }
}
