//! X webhook authentication: `verify_signature_header` (POST signature) and `crc_response` (the
//! CRC challenge), against an independent HMAC-SHA256 computed here.
//!
//! Input: `<x-twitter-webhooks-signature value>\n<raw body>`; the whole input is also tried as a
//! `crc_token`. Asserted:
//! * the verifier accepts a header only if it is exactly `sha256=<base64 HMAC(secret, body)>`
//!   (modulo surrounding whitespace), and it always accepts that value; no secret ⇒ refused;
//! * a CRC answer is that same HMAC of the token, and only for tokens the crate calls acceptable;
//! * the CRC endpoint is not a signing oracle (docs/protocols.md A1.1): a token it answers for is never
//!   a webhook delivery the payload parser would read.

#![no_main]

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use xdm_x::{SignatureError, crc_response, verify_signature_header};

/// X's documentation sample consumer secret (docs/protocols.md A1.1).
const SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";

fn reference(message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(message);
    let digest = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let expected = reference(body);
    if let Ok(header) = std::str::from_utf8(header) {
        let verdict = verify_signature_header(SECRET, Some(header), body);
        if verdict.is_ok() {
            assert_eq!(
                header.trim(),
                expected,
                "accepted a signature that is not the HMAC"
            );
        }
        let _ = verify_signature_header("", Some(header), body);
    }
    assert_eq!(
        verify_signature_header(SECRET, Some(&expected), body),
        Ok(())
    );
    assert_eq!(
        verify_signature_header(SECRET, None, body),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_signature_header("", Some(&expected), body),
        Err(SignatureError::NoConsumerSecret)
    );

    if let Ok(token) = std::str::from_utf8(data) {
        match crc_response(SECRET, token) {
            Ok(answer) => {
                assert!(xdm_x::webhook::is_acceptable_crc_token(token));
                assert_eq!(answer.response_token, reference(token.as_bytes()));
                assert!(
                    xdm_x::parse_delivery(token.as_bytes()).is_err(),
                    "CRC answered for a token that is a readable webhook body: signing oracle"
                );
            }
            Err(_) => assert!(!xdm_x::webhook::is_acceptable_crc_token(token)),
        }
    }
});
