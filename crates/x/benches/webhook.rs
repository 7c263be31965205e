//! What `POST /webhooks/x` costs before the store: the signature check and the parse of a real
//! delivery (the captured Account Activity delivery of `testdata/`, signed with the published
//! vector secret — docs/protocols.md A1.2). docs/performance.md, "Micro-benchmarks".
//!
//! Also what signing a DM send with OAuth 1.0a costs (every agent reply sent as a business
//! account that authorised the app with OAuth 1.0a).
//!
//! `cargo bench -p xdm-x --bench webhook`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use url::Url;
use xdm_x::oauth1::{self, AccessToken, Consumer, SignableRequest};
use xdm_x::parse_delivery;
use xdm_x::webhook::verify_signature_header;

const SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
const SIGNATURE: &str = "sha256=kUYYH+AYCEI4dWirsu4qSGy/k/ZkAah79MxUr9rXkCQ=";

fn captured_body() -> Vec<u8> {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/apigw-x-webhook-text-dm.json"
    ))
    .unwrap();
    let event: serde_json::Value = serde_json::from_str(&raw).unwrap();
    event["body"].as_str().unwrap().as_bytes().to_vec()
}

fn webhook(c: &mut Criterion) {
    let body = captured_body();
    verify_signature_header(SECRET, Some(SIGNATURE), &body).expect("the vector signature");
    let mut group = c.benchmark_group("x webhook");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify signature", |b| {
        b.iter(|| verify_signature_header(SECRET, Some(SIGNATURE), &body).unwrap())
    });
    group.bench_function("parse delivery", |b| {
        b.iter(|| parse_delivery(&body).unwrap())
    });
    group.bench_function("verify + parse", |b| {
        b.iter(|| {
            verify_signature_header(SECRET, Some(SIGNATURE), &body).unwrap();
            parse_delivery(&body).unwrap()
        })
    });
    group.finish();
}

/// X's documented example credentials (docs/protocols.md A7), signing a DM send.
fn oauth1_signature(c: &mut Criterion) {
    let consumer = Consumer::new(
        "xvz1evFS4wEEPTGEFPHBog",
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
    );
    let token = AccessToken::new(
        "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    );
    let url = Url::parse("https://api.x.com/2/dm_conversations/with/3100000000/messages").unwrap();
    let request = SignableRequest {
        method: "POST",
        url: &url,
        form_body: None,
    };
    c.bench_function("oauth1 sign a DM send", |b| {
        b.iter(|| oauth1::sign(&request, &consumer, Some(&token)).unwrap())
    });
    c.bench_function("oauth1 nonce", |b| b.iter(oauth1::new_nonce));
}

criterion_group!(benches, webhook, oauth1_signature);
criterion_main!(benches);
