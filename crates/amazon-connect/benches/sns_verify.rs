//! What checking one SNS notification costs (every agent reply reaches the bridge as one): the
//! topic, the certificate URL, the RSA signature with the cached certificate's key, the age. On the
//! published SignatureVersion 2 vector and its certificate (`tests/data`), as the integration
//! tests use them (docs/performance.md, "Micro-benchmarks").
//!
//! `cargo bench -p xdm-amazon-connect --bench sns_verify`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use xdm_amazon_connect::iso8601_to_ms;
use xdm_amazon_connect::sns::{SnsMessage, SnsVerifier};

const CERT_PEM: &[u8] = include_bytes!("../tests/data/sns-vector-cert.pem");
const CERT_URL: &str = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";
const TOPIC_ARN: &str =
    "arn:aws:sns:us-east-2:295079676684:publish-and-verify-62674b1d-4295-426b-88e7-5fb75652a04e";
const SIGNATURE: &str = "CXVqp9PfZAL+4JHS3Zxo1PFbQsvnOjvmYhtIf17TWpwc+iIVas8kZ8GopuzVzVMdatE7rCl/O4P91Zp05Dwz8lk8dLhfp8gSu3Njlzxlyrmzo9x3va3Jb7zFnedgS2GKnZWHGBdwTXho+TosNUE+3e10OMSlwN5XGDwX7+R3WL+rn+AXmFAqp3alg27sYa55h1dLE9cGszGPjScPdtF3BmZsUDMx9wSdNKsCk+vSvE8yBjnCmUl7laSFj3LzPVrlSwgNYCF3kYnNAkah7NplK4SFhJYLwS0HCVCQJKa8rVbQLf9cBTu60U402mrgy0bN8xWoyimzbYbrOMJjalqkUg==";

fn vector() -> SnsMessage {
    let body = serde_json::json!({
        "Type": "Notification",
        "MessageId": "17dea24b-55c2-540b-8362-f916557af765",
        "TopicArn": TOPIC_ARN,
        "Message": "Hello world",
        "Timestamp": "2022-07-28T21:24:08.324Z",
        "SignatureVersion": "2",
        "Signature": SIGNATURE,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": format!("https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:x"),
    });
    SnsMessage::from_http_body(&serde_json::to_vec(&body).unwrap()).unwrap()
}

fn sns_verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = SnsVerifier::new(TOPIC_ARN, Vec::new()).unwrap();
    verifier.seed_certificate(CERT_URL, CERT_PEM).unwrap();
    let msg = vector();
    let published = u64::try_from(iso8601_to_ms(&msg.timestamp).unwrap()).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(published + 1_000);
    runtime
        .block_on(verifier.verify_at(&msg, now))
        .expect("the vector verifies");
    c.bench_function("sns verify (SignatureVersion 2, cached certificate)", |b| {
        b.iter(|| runtime.block_on(verifier.verify_at(&msg, now)).unwrap())
    });
}

criterion_group!(benches, sns_verify);
criterion_main!(benches);
