//! What `POST /webhooks/x` costs before the store: the signature check and the parse of a real
//! delivery (the captured Account Activity delivery of `testdata/`, signed with the published
//! vector secret — docs/protocols.md A1.2). docs/performance.md, "Micro-benchmarks".
//!
//! `cargo bench -p xdm-x --bench webhook`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, webhook);
criterion_main!(benches);
