//! Webhook authentication with both app secrets: which signature header is checked
//! (`x-twitter-webhooks-signature-oauth2` keyed by the client secret, the legacy one by the
//! consumer secret), the errors that name the header, and the CRC key choice.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use xdm_x::webhook::{
    CrcError, CrcKey, OAUTH2_SIGNATURE_HEADER, SIGNATURE_HEADER, SignatureError, WebhookSecrets,
    crc_answer, crc_response, verify_delivery,
};

/// docs/protocols.md A1.1/A1.2: X's sample consumer secret, body and signature.
const CONSUMER: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
const SMALL_BODY: &str = r#"{"for_user_id":"2244994945","direct_message_events":[]}"#;
const SMALL_SIG: &str = "sha256=U7PvFnq32kDoO+q6JA5eD3pbWDKp3OSyqEav+2NVku4=";
const CLIENT: &str = "-RoKx3x58JA8Sm9JIt2fmAjq3q5GX-bqZ3vjJxSeGsdmGtXEbP";
const CRC_TOKEN: &str = "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0";

/// An independent HMAC-SHA256 in X's `sha256=<base64>` form.
fn sign(key: &str, message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn secrets(consumer: Option<&str>, client: Option<&str>, crc_key: CrcKey) -> WebhookSecrets {
    WebhookSecrets {
        consumer_secret: consumer.map(str::to_owned),
        client_secret: client.map(str::to_owned),
        crc_key,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, http::HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn the_legacy_header_with_the_published_vector() {
    assert_eq!(sign(CONSUMER, SMALL_BODY.as_bytes()), SMALL_SIG);
    let both = secrets(Some(CONSUMER), Some(CLIENT), CrcKey::Auto);
    let consumer_only = secrets(Some(CONSUMER), None, CrcKey::Auto);
    let legacy = headers(&[(SIGNATURE_HEADER, SMALL_SIG)]);
    let body = SMALL_BODY.as_bytes();
    // Without an OAuth 2.0 header the legacy one decides, whether or not a client secret is set.
    assert_eq!(verify_delivery(&consumer_only, &legacy, body), Ok(()));
    assert_eq!(verify_delivery(&both, &legacy, body), Ok(()));
    // Header names are case-insensitive.
    let mut upper = http::HeaderMap::new();
    upper.insert(
        http::HeaderName::from_bytes(b"X-Twitter-Webhooks-Signature").unwrap(),
        http::HeaderValue::from_static(SMALL_SIG),
    );
    assert_eq!(verify_delivery(&consumer_only, &upper, body), Ok(()));
    assert_eq!(
        verify_delivery(&consumer_only, &legacy, b"{}"),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_delivery(&consumer_only, &headers(&[]), body),
        Err(SignatureError::Missing)
    );
}

#[test]
fn the_oauth2_header_is_checked_with_the_client_secret_when_present() {
    let body = SMALL_BODY.as_bytes();
    let both = secrets(Some(CONSUMER), Some(CLIENT), CrcKey::Auto);
    let client_only = secrets(None, Some(CLIENT), CrcKey::Auto);
    let good = sign(CLIENT, body);
    let oauth2 = headers(&[(OAUTH2_SIGNATURE_HEADER, &good)]);
    assert_eq!(verify_delivery(&client_only, &oauth2, body), Ok(()));
    assert_eq!(verify_delivery(&both, &oauth2, body), Ok(()));
    // Both headers: the OAuth 2.0 one decides; a bad one is not rescued by a good legacy one.
    let wrong_key = sign(CONSUMER, body);
    let h = headers(&[
        (OAUTH2_SIGNATURE_HEADER, &wrong_key),
        (SIGNATURE_HEADER, SMALL_SIG),
    ]);
    let e = verify_delivery(&both, &h, body).unwrap_err();
    assert_eq!(e, SignatureError::OAuth2Mismatch);
    assert!(e.to_string().contains(OAUTH2_SIGNATURE_HEADER), "{e}");
    assert!(!e.is_configuration());
    let h = headers(&[
        (OAUTH2_SIGNATURE_HEADER, &good),
        (SIGNATURE_HEADER, "sha256=AAAA"),
    ]);
    assert_eq!(verify_delivery(&both, &h, body), Ok(()));
    // A malformed OAuth 2.0 header names it.
    let h = headers(&[(OAUTH2_SIGNATURE_HEADER, "sha1=abc")]);
    let e = verify_delivery(&client_only, &h, body).unwrap_err();
    assert!(matches!(e, SignatureError::OAuth2Malformed(_)), "{e:?}");
    assert!(e.to_string().contains(OAUTH2_SIGNATURE_HEADER), "{e}");
    // Altered body.
    assert_eq!(
        verify_delivery(&client_only, &oauth2, b"{\"for_user_id\":\"1\"}"),
        Err(SignatureError::OAuth2Mismatch)
    );
}

#[test]
fn without_a_client_secret_the_oauth2_header_is_ignored() {
    let body = SMALL_BODY.as_bytes();
    let consumer_only = secrets(Some(CONSUMER), Some(""), CrcKey::Auto);
    let h = headers(&[
        (OAUTH2_SIGNATURE_HEADER, "sha256=AAAA"),
        (SIGNATURE_HEADER, SMALL_SIG),
    ]);
    assert_eq!(verify_delivery(&consumer_only, &h, body), Ok(()));
    let h = headers(&[(OAUTH2_SIGNATURE_HEADER, &sign(CLIENT, body))]);
    assert_eq!(
        verify_delivery(&consumer_only, &h, body),
        Err(SignatureError::Missing)
    );
}

#[test]
fn missing_headers_and_missing_secrets_are_told_apart() {
    let body = SMALL_BODY.as_bytes();
    let none = headers(&[]);
    let e = verify_delivery(&secrets(None, Some(CLIENT), CrcKey::Auto), &none, body).unwrap_err();
    assert_eq!(e, SignatureError::MissingOAuth2);
    // Only the legacy header but only a client secret: still the OAuth 2.0 header is missing.
    let legacy = headers(&[(SIGNATURE_HEADER, SMALL_SIG)]);
    assert_eq!(
        verify_delivery(&secrets(None, Some(CLIENT), CrcKey::Auto), &legacy, body),
        Err(SignatureError::MissingOAuth2)
    );
    let e = verify_delivery(
        &secrets(Some(CONSUMER), Some(CLIENT), CrcKey::Auto),
        &none,
        body,
    )
    .unwrap_err();
    assert_eq!(e, SignatureError::MissingBoth);
    assert!(
        e.to_string().contains(OAUTH2_SIGNATURE_HEADER) && e.to_string().contains(SIGNATURE_HEADER)
    );
    for nothing in [
        secrets(None, None, CrcKey::Auto),
        secrets(Some(""), Some(""), CrcKey::ClientSecret),
    ] {
        let e = verify_delivery(&nothing, &legacy, body).unwrap_err();
        assert_eq!(e, SignatureError::NoSecret);
        assert!(e.is_configuration());
    }
    // The secrets never show in Debug.
    let debug = format!("{:?}", secrets(Some(CONSUMER), Some(CLIENT), CrcKey::Auto));
    assert!(
        !debug.contains(CONSUMER) && !debug.contains(CLIENT),
        "{debug}"
    );
}

#[test]
fn the_crc_key_is_chosen_as_configured() {
    let consumer_answer = crc_response(CONSUMER, CRC_TOKEN).unwrap();
    assert_eq!(
        consumer_answer.response_token,
        "sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="
    );
    let client_answer = sign(CLIENT, CRC_TOKEN.as_bytes());
    let both = |key| secrets(Some(CONSUMER), Some(CLIENT), key);
    assert_eq!(
        crc_answer(&both(CrcKey::Auto), CRC_TOKEN)
            .unwrap()
            .response_token,
        client_answer
    );
    assert_eq!(
        crc_answer(&both(CrcKey::ClientSecret), CRC_TOKEN)
            .unwrap()
            .response_token,
        client_answer
    );
    assert_eq!(
        crc_answer(&both(CrcKey::ConsumerSecret), CRC_TOKEN).unwrap(),
        consumer_answer
    );
    assert_eq!(
        crc_answer(&secrets(Some(CONSUMER), None, CrcKey::Auto), CRC_TOKEN).unwrap(),
        consumer_answer
    );
    // A key that is not configured.
    let e = crc_answer(
        &secrets(Some(CONSUMER), None, CrcKey::ClientSecret),
        CRC_TOKEN,
    )
    .unwrap_err();
    assert_eq!(e, CrcError::NoClientSecret);
    assert!(e.is_configuration());
    assert_eq!(
        crc_answer(
            &secrets(None, Some(CLIENT), CrcKey::ConsumerSecret),
            CRC_TOKEN
        ),
        Err(CrcError::NoConsumerSecret)
    );
    assert_eq!(
        crc_answer(&secrets(None, None, CrcKey::Auto), CRC_TOKEN),
        Err(CrcError::NoSecret)
    );
    // The opaque-token defence holds whatever the key: a JSON body is never signed.
    let e = crc_answer(&both(CrcKey::ClientSecret), SMALL_BODY).unwrap_err();
    assert_eq!(e, CrcError::TokenNotOpaque);
    assert!(!e.is_configuration());
}
