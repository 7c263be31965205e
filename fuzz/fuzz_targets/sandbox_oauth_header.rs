//! The sandbox's OAuth 1.0a checker (crates/sandbox/src/x/oauth_verify.rs): `parse_authorization`
//! (the `Authorization: OAuth …` parser) and `verify`, on arbitrary input.
//!
//! Input: 8 bytes (a little-endian i64 `oauth_timestamp`), then
//! `<Authorization value>\n<query>\n<form body>\n<path>` (later lines optional). Checked:
//! * `parse_authorization` on the first line, and `verify` of the RFC 5849 §1.2 request
//!   (`GET http://photos.example.net/photos`, its credentials and clock) carrying that header, the
//!   fuzzed query, form body and path: never a panic;
//! * round trip: a header made by `authorization_header` with the first line as nonce and the
//!   fuzzed timestamp, for a URL with the fuzzed query and the fuzzed form body, verifies and
//!   yields that nonce and timestamp when the timestamp is within the allowed clock skew, and is
//!   refused for clock skew otherwise.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdm_sandbox::x::oauth_verify::{
    Credentials, OAuthError, ReceivedRequest, VerifiedOAuth, authorization_header, form_decode,
    parse_authorization, verify,
};

/// RFC 5849 §1.2 (docs/protocols.md A7 test vector 2).
const RFC: Credentials<'static> = Credentials {
    consumer_key: "dpf43f3p2l4k3l03",
    consumer_secret: "kd94hf93k423kf44",
    token: "nnch734d00sl2jdk",
    token_secret: "pfkkdhi9sl3r4s00",
};
const RFC_NOW: i64 = 137_131_202;
/// The server clock for the round trip, and the skew it allows.
const NOW: i64 = 1_700_000_100;
const MAX_SKEW: u64 = 300;

fuzz_target!(|data: &[u8]| {
    let Some((timestamp, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let timestamp = i64::from_le_bytes(*timestamp);
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = input.splitn(4, '\n');
    let header = lines.next().unwrap_or("");
    let query = lines.next();
    let form_body = lines.next();
    let path = lines.next().unwrap_or("/photos");

    let _ = parse_authorization(header);
    let request = ReceivedRequest {
        method: "GET",
        scheme: "http",
        host: "photos.example.net",
        path,
        query,
        form_body,
        authorization: Some(header),
    };
    let _ = verify(&request, RFC, RFC_NOW, 300);

    let Ok(url) = url::Url::parse(&format!(
        "http://127.0.0.1:8080/2/users/12?{}",
        query.unwrap_or("")
    )) else {
        return;
    };
    let body_params = form_decode(form_body.unwrap_or(""));
    let built = authorization_header("POST", &url, &body_params, RFC, header, timestamp);
    let signed = ReceivedRequest {
        method: "POST",
        scheme: "http",
        host: "127.0.0.1:8080",
        path: url.path(),
        query: url.query(),
        form_body,
        authorization: Some(&built),
    };
    let verdict = verify(&signed, RFC, NOW, MAX_SKEW);
    if (i128::from(NOW) - i128::from(timestamp)).unsigned_abs() <= u128::from(MAX_SKEW) {
        assert_eq!(
            verdict,
            Ok(VerifiedOAuth {
                nonce: header.to_owned(),
                timestamp,
            }),
            "a header built by authorization_header does not verify: {built}"
        );
    } else {
        assert!(
            matches!(verdict, Err(OAuthError::ClockSkew { .. })),
            "timestamp {timestamp} accepted or refused for another reason: {verdict:?}"
        );
    }
});
