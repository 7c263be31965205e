//! OAuth 1.0a (RFC 5849, HMAC-SHA1) as X uses it: the signature base string, the signature, parsing
//! of the `Authorization: OAuth …` header and verification of a received request.
//!
//! Written from docs/protocols.md A7 and RFC 5849 §3.4, independently of the bridge's signer, so that the
//! sandbox checks the bridge rather than mirroring it. The signing helpers are public so that tests
//! and tools can produce requests the sandbox accepts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX` (upper-case hex).
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes per RFC 5849 §3.6 (UTF-8 bytes, space = `%20`).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH_ENCODE).to_string()
}

/// Decodes an `application/x-www-form-urlencoded` string (`+` = space), as RFC 5849 §3.4.1.3.1
/// prescribes for both the query and a form body.
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The base string URI: `scheme://host[:port]/path`, lower-case scheme and host, default port
/// omitted, no query or fragment (RFC 5849 §3.4.1.2).
pub fn base_string_uri(scheme: &str, host: &str, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    let host = match default_port {
        Some(port) => host.strip_suffix(port).unwrap_or(&host).to_owned(),
        None => host,
    };
    let path = if path.is_empty() { "/" } else { path };
    format!("{scheme}://{host}{path}")
}

/// `METHOD&pct(base_uri)&pct(normalised params)`; `params` are decoded name/value pairs
/// (query + form body + `oauth_*` without `oauth_signature`).
pub fn signature_base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    encoded.sort();
    let normalised = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(base_uri),
        percent_encode(&normalised)
    )
}

/// `base64(HMAC-SHA1(pct(consumer_secret) & pct(token_secret), base_string))`.
pub fn hmac_sha1_signature(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(base_string.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The credential set a request must be signed with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: &'a str,
    pub token_secret: &'a str,
}

/// Builds an `Authorization: OAuth …` header value for a request to `url` (its query is signed)
/// with extra form `body_params` (pass none for JSON bodies). For tests and tools.
pub fn authorization_header(
    method: &str,
    url: &url::Url,
    body_params: &[(String, String)],
    creds: Credentials<'_>,
    nonce: &str,
    timestamp: i64,
) -> String {
    let oauth: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), creds.consumer_key.into()),
        ("oauth_nonce".into(), nonce.into()),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), timestamp.to_string()),
        ("oauth_token".into(), creds.token.into()),
        ("oauth_version".into(), "1.0".into()),
    ];
    let mut params = form_decode(url.query().unwrap_or(""));
    params.extend(body_params.iter().cloned());
    params.extend(oauth.iter().cloned());
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let base_uri = base_string_uri(url.scheme(), &host, url.path());
    let base = signature_base_string(method, &base_uri, &params);
    let signature = hmac_sha1_signature(&base, creds.consumer_secret, creds.token_secret);
    let mut fields: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", percent_encode(v)))
        .collect();
    fields.push(format!(
        "oauth_signature=\"{}\"",
        percent_encode(&signature)
    ));
    fields.sort();
    format!("OAuth {}", fields.join(", "))
}

/// Why a request's OAuth 1.0a authorisation was refused (all answered with X's 401 problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("no Authorization header")]
    MissingHeader,
    #[error("the Authorization scheme is not OAuth")]
    NotOAuth,
    #[error("malformed OAuth header: {0}")]
    Malformed(String),
    #[error("missing {0}")]
    MissingParam(&'static str),
    #[error("duplicate {0}")]
    DuplicateParam(String),
    #[error("unknown oauth_consumer_key")]
    WrongConsumerKey,
    #[error("unknown oauth_token")]
    WrongToken,
    #[error("unsupported oauth_signature_method {0}")]
    UnsupportedSignatureMethod(String),
    #[error("unsupported oauth_version {0}")]
    UnsupportedVersion(String),
    #[error("oauth_timestamp is not a number")]
    BadTimestamp,
    #[error("oauth_timestamp is {skew} s away from the server clock")]
    ClockSkew { skew: i64 },
    #[error("oauth_nonce was already used")]
    NonceReplayed,
    #[error("signature mismatch; expected base string {expected_base_string}")]
    BadSignature { expected_base_string: String },
}

/// Parses `OAuth k="v", k2="v2"` into decoded pairs (`realm` included; callers skip it).
pub fn parse_authorization(header: &str) -> Result<Vec<(String, String)>, OAuthError> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return Err(OAuthError::NotOAuth);
    }
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| OAuthError::Malformed(format!("`{part}` has no `=`")))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| {
                OAuthError::Malformed(format!("value of `{}` is not quoted", name.trim()))
            })?;
        out.push((decode(name.trim())?, decode(value)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, OAuthError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::Malformed(format!("`{s}` is not UTF-8 once decoded")))
}

/// A received request, as far as OAuth 1.0a signs it.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    /// `http` (or `https` behind a TLS terminator that says so).
    pub scheme: &'a str,
    /// The `Host` header as sent.
    pub host: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The body when its Content-Type is `application/x-www-form-urlencoded`, else `None`.
    pub form_body: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

/// The parts of a verified authorisation the caller must still check against its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOAuth {
    pub nonce: String,
    pub timestamp: i64,
}

/// Verifies everything except nonce replay (which needs the caller's memory of used nonces).
pub fn verify(
    req: &ReceivedRequest<'_>,
    creds: Credentials<'_>,
    now_unix_secs: i64,
    max_skew_secs: u64,
) -> Result<VerifiedOAuth, OAuthError> {
    let header = req.authorization.ok_or(OAuthError::MissingHeader)?;
    let mut oauth: Vec<(String, String)> = Vec::new();
    let mut signature = None;
    for (name, value) in parse_authorization(header)? {
        if name == "realm" {
            continue;
        }
        if oauth.iter().any(|(n, _)| *n == name)
            || (name == "oauth_signature" && signature.is_some())
        {
            return Err(OAuthError::DuplicateParam(name));
        }
        if name == "oauth_signature" {
            signature = Some(value);
        } else {
            oauth.push((name, value));
        }
    }
    let get = |name: &'static str| {
        oauth
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or(OAuthError::MissingParam(name))
    };
    let signature = signature.ok_or(OAuthError::MissingParam("oauth_signature"))?;
    if get("oauth_consumer_key")? != creds.consumer_key {
        return Err(OAuthError::WrongConsumerKey);
    }
    if get("oauth_token")? != creds.token {
        return Err(OAuthError::WrongToken);
    }
    let method = get("oauth_signature_method")?;
    if method != "HMAC-SHA1" {
        return Err(OAuthError::UnsupportedSignatureMethod(method.to_owned()));
    }
    if let Ok(version) = get("oauth_version")
        && version != "1.0"
    {
        return Err(OAuthError::UnsupportedVersion(version.to_owned()));
    }
    let nonce = get("oauth_nonce")?.to_owned();
    let timestamp: i64 = get("oauth_timestamp")?
        .parse()
        .map_err(|_| OAuthError::BadTimestamp)?;
    // A hostile timestamp (e.g. i64::MIN) must not overflow: saturate, it is skewed anyway.
    let skew = now_unix_secs.saturating_sub(timestamp);
    if skew.unsigned_abs() > max_skew_secs {
        return Err(OAuthError::ClockSkew { skew });
    }

    let mut params = form_decode(req.query.unwrap_or(""));
    if let Some(body) = req.form_body {
        params.extend(form_decode(body));
    }
    params.extend(oauth.iter().cloned());
    let base_uri = base_string_uri(req.scheme, req.host, req.path);
    let base = signature_base_string(req.method, &base_uri, &params);
    let expected = hmac_sha1_signature(&base, creds.consumer_secret, creds.token_secret);
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(OAuthError::BadSignature {
            expected_base_string: base,
        });
    }
    Ok(VerifiedOAuth { nonce, timestamp })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// docs/protocols.md A7 test vector 1 (X docs "Creating a signature").
    const V1_BASE: &str = "POST&https%3A%2F%2Fapi.x.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521";

    fn vector1_params() -> Vec<(String, String)> {
        let mut params = form_decode("include_entities=true");
        params.extend(form_decode(
            "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
        ));
        params.extend(pairs(&[
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ]));
        params
    }

    #[test]
    fn vector1_x_docs_base_string_and_signature() {
        let uri = base_string_uri("https", "api.x.com", "/1.1/statuses/update.json");
        let base = signature_base_string("POST", &uri, &vector1_params());
        assert_eq!(base, V1_BASE);
        let sig = hmac_sha1_signature(
            &base,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        assert_eq!(sig, "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=");
    }

    #[test]
    fn vector1_old_host_gives_old_signature() {
        let uri = base_string_uri("https", "api.twitter.com", "/1.1/statuses/update.json");
        let base = signature_base_string("POST", &uri, &vector1_params());
        let sig = hmac_sha1_signature(
            &base,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        assert_eq!(sig, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    }

    /// docs/protocols.md A7 test vector 2 (RFC 5849 §1.2), verified through `verify` with the header as a
    /// client would send it (realm included, signature percent-encoded).
    #[test]
    fn vector2_rfc5849_request_verifies() {
        let header = r#"OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D""#;
        let req = ReceivedRequest {
            method: "GET",
            scheme: "http",
            host: "photos.example.net",
            path: "/photos",
            query: Some("file=vacation.jpg&size=original"),
            form_body: None,
            authorization: Some(header),
        };
        let creds = Credentials {
            consumer_key: "dpf43f3p2l4k3l03",
            consumer_secret: "kd94hf93k423kf44",
            token: "nnch734d00sl2jdk",
            token_secret: "pfkkdhi9sl3r4s00",
        };
        let verified = verify(&req, creds, 137_131_202, 300).unwrap();
        assert_eq!(verified.nonce, "chapoH");

        let mut params = form_decode("file=vacation.jpg&size=original");
        params.extend(pairs(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131202"),
            ("oauth_nonce", "chapoH"),
        ]));
        let base = signature_base_string(
            "GET",
            &base_string_uri("http", "photos.example.net:80", "/photos"),
            &params,
        );
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
        );
        assert_eq!(
            hmac_sha1_signature(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );

        // One flipped character in the query breaks it.
        let tampered = ReceivedRequest {
            query: Some("file=vacation.jpg&size=originaL"),
            ..req
        };
        assert!(matches!(
            verify(&tampered, creds, 137_131_202, 300),
            Err(OAuthError::BadSignature { .. })
        ));
        // And so does a clock 301 s away.
        assert!(matches!(
            verify(&req, creds, 137_131_503, 300),
            Err(OAuthError::ClockSkew { skew: 301 })
        ));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/sandbox_oauth_header.rs): an extreme timestamp is a
    /// clock-skew refusal, not an arithmetic overflow.
    #[test]
    fn extreme_timestamp_is_skew_not_overflow() {
        let header = r#"OAuth oauth_consumer_key="k", oauth_token="t", oauth_signature_method="HMAC-SHA1", oauth_timestamp="-9223372036854775808", oauth_nonce="n", oauth_signature="x""#;
        let req = ReceivedRequest {
            method: "GET",
            scheme: "https",
            host: "ton.twitter.com",
            path: "/i/ton/data/dm/1/2/a.jpg",
            query: None,
            form_body: None,
            authorization: Some(header),
        };
        let creds = Credentials {
            consumer_key: "k",
            consumer_secret: "cs",
            token: "t",
            token_secret: "ts",
        };
        assert!(matches!(
            verify(&req, creds, 1_700_000_000, 300),
            Err(OAuthError::ClockSkew { .. })
        ));
    }

    /// docs/protocols.md A7 test vector 3 (RFC 5849 §3.4.1.1 normalisation: duplicate keys, empty values,
    /// `+` in form bodies).
    #[test]
    fn vector3_rfc5849_normalisation() {
        let mut params = form_decode("b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        params.extend(form_decode("c2&a3=2+q"));
        params.extend(pairs(&[
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ]));
        let base = signature_base_string(
            "POST",
            &base_string_uri("http", "example.com", "/request"),
            &params,
        );
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn percent_encoding_table() {
        assert_eq!(
            percent_encode("Ladies + Gentlemen"),
            "Ladies%20%2B%20Gentlemen"
        );
        assert_eq!(
            percent_encode("Dogs, Cats & Mice"),
            "Dogs%2C%20Cats%20%26%20Mice"
        );
        assert_eq!(percent_encode("☃"), "%E2%98%83");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn header_built_by_authorization_header_verifies() {
        let creds = Credentials {
            consumer_key: "ck",
            consumer_secret: "cs",
            token: "tk",
            token_secret: "ts",
        };
        let url = url::Url::parse("http://127.0.0.1:8080/2/users/12?user.fields=a%2Cb").unwrap();
        let header = authorization_header("GET", &url, &[], creds, "n0nce", 1_700_000_000);
        let req = ReceivedRequest {
            method: "GET",
            scheme: "http",
            host: "127.0.0.1:8080",
            path: "/2/users/12",
            query: url.query(),
            form_body: None,
            authorization: Some(&header),
        };
        assert!(verify(&req, creds, 1_700_000_010, 300).is_ok());
        let other = Credentials {
            token: "someone-else",
            ..creds
        };
        assert_eq!(
            verify(&req, other, 1_700_000_010, 300),
            Err(OAuthError::WrongToken)
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        assert_eq!(parse_authorization("Bearer abc"), Err(OAuthError::NotOAuth));
        assert!(matches!(
            parse_authorization("OAuth oauth_nonce=abc"),
            Err(OAuthError::Malformed(_))
        ));
        assert!(matches!(
            parse_authorization("OAuth oauth_nonce"),
            Err(OAuthError::Malformed(_))
        ));
    }
}
