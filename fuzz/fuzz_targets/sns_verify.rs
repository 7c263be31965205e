//! SNS signature verification, offline: `SnsVerifier::verify` with the docs/protocols.md B4 test
//! certificate seeded into its cache (`seed_certificate`), on envelopes read from arbitrary bytes
//! (HTTP body or Lambda event).
//!
//! Each message is verified as delivered when that cannot trigger a certificate download (its
//! `SigningCertURL` is the seeded one, or one the verifier refuses before fetching), and once more
//! steered past the topic and URL checks (topic set to a configured one, URL to the seeded one) so
//! that base64 decoding and the RSA check run on fuzzed signatures and strings to sign.
//!
//! Asserted: never a panic, never an attempt to fetch, and a message verifies only if its string
//! to sign is one of the three AWS-signed test vectors (no forgery).

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use xdm_amazon_connect::sns::{SnsMessage, SnsVerifier, VerifyError, string_to_sign};

const CERT_PEM: &[u8] = include_bytes!("../../crates/amazon-connect/tests/data/sns-vector-cert.pem");
const CERT_URL: &str = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";
const TOPICS: [&str; 3] = [
    "arn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362",
    "arn:aws:sns:us-east-2:295079676684:publish-and-verify-62674b1d-4295-426b-88e7-5fb75652a04e",
    "arn:aws:sns:us-east-2:295079676684:publish-and-verify-530b26da-0687-4fe4-9f71-780bad3181e2",
];
/// The strings AWS signed in the three vectors (the only ones that can verify).
const SIGNED: [&str; 3] = [
    "Message\nHello world\nMessageId\n792cda85-518f-5dd3-9163-81d851212f3a\nTimestamp\n2022-07-28T21:23:58.317Z\nTopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362\nType\nNotification\n",
    "Message\nHello world\nMessageId\n17dea24b-55c2-540b-8362-f916557af765\nTimestamp\n2022-07-28T21:24:08.324Z\nTopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-62674b1d-4295-426b-88e7-5fb75652a04e\nType\nNotification\n",
    "Message\nHello world\nMessageId\n4504e649-d933-5aa9-8199-bd14ccf05f0b\nSubject\nHello world\nTimestamp\n2022-07-28T22:53:55.086Z\nTopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-530b26da-0687-4fe4-9f71-780bad3181e2\nType\nNotification\n",
];

/// Just after the newest vector was published (2022-07-28T22:53:55Z): messages are verified as
/// of then, and the age bound is long enough for all three vectors (the age check itself has
/// unit tests; here it must not hide the signature check).
const VERIFIED_AT: Duration = Duration::from_secs(1_659_048_900);
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

static VERIFIERS: LazyLock<Vec<SnsVerifier>> = LazyLock::new(|| {
    TOPICS
        .iter()
        .map(|topic| {
            let v = SnsVerifier::new(*topic, Vec::new())
                .expect("valid topic")
                .with_max_age(MAX_AGE);
            v.seed_certificate(CERT_URL, CERT_PEM)
                .expect("the B4 certificate is usable");
            v
        })
        .collect()
});

/// Runs `verify` to completion without a runtime: with the certificate cached it never waits;
/// waiting would mean it tried to download a certificate.
fn verify_now(verifier: &SnsVerifier, msg: &SnsMessage) -> Result<(), VerifyError> {
    let mut fut = pin!(verifier.verify_at(msg, SystemTime::UNIX_EPOCH + VERIFIED_AT));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(verdict) => verdict,
        Poll::Pending => panic!("verify waited: it tried to fetch {}", msg.signing_cert_url),
    }
}

fn check(verifier: &SnsVerifier, msg: &SnsMessage) {
    let verdict = verify_now(verifier, msg);
    assert!(
        !matches!(
            verdict,
            Err(VerifyError::CertFetch { .. } | VerifyError::BadCertificate { .. })
        ),
        "{verdict:?}"
    );
    if verdict.is_ok() {
        let signed = string_to_sign(msg);
        assert!(
            SIGNED.contains(&signed.as_str()),
            "a message AWS never signed verified: {signed:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let messages = match SnsMessage::from_http_body(data) {
        Ok(msg) => vec![msg],
        Err(_) => SnsMessage::from_lambda_event(data).unwrap_or_default(),
    };
    for mut msg in messages {
        let verifier = VERIFIERS
            .iter()
            .find(|v| v.topic_arn() == msg.topic_arn)
            .unwrap_or(&VERIFIERS[0]);
        // As delivered, unless that would mean downloading a certificate.
        if msg.signing_cert_url == CERT_URL || !verifier.is_allowed_cert_url(&msg.signing_cert_url)
        {
            check(verifier, &msg);
        }
        // Steered to the signature check.
        msg.topic_arn = verifier.topic_arn().to_owned();
        msg.signing_cert_url = CERT_URL.to_owned();
        check(verifier, &msg);
    }
});
