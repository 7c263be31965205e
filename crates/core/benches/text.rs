//! The text work of an agent reply on its way to X: markdown rendered to X's plain text, and a
//! long reply split at X's DM length. docs/performance.md, "Micro-benchmarks".
//!
//! `cargo bench -p xdm-core --bench text`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use xdm_core::text::{X_DM_MAX_CHARS, render_for_x, split_message};

const REPLY: &str = "Sorry about that, **Jordan**! Your order *4411* left our warehouse on Monday.\n\n\
1. Track it here: [carrier](https://example.com/track/4411)\n\
2. If it has not arrived by Friday, reply to this message and we send a new one.\n\n\
> Tip: you can also write `status 4411` at any time.";

fn text(c: &mut Criterion) {
    let long: String = std::iter::repeat_n("Ünïcødé text with emoji 🎧 and words. ", 800).collect();
    c.bench_function("render markdown reply for X", |b| {
        b.iter(|| render_for_x("text/markdown", REPLY).unwrap())
    });
    c.bench_function("split a 30,000-character reply", |b| {
        b.iter(|| split_message(&long, X_DM_MAX_CHARS))
    });
}

criterion_group!(benches, text);
criterion_main!(benches);
