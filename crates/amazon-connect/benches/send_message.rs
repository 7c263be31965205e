//! What the client side of one SendMessage costs: the same call to the same loopback stand-in
//! (a fixed 200 `{"Id","AbsoluteTime"}`), once through `aws-sdk-connectparticipant` configured as
//! the bridge used to configure it (retries, stalled-stream protection, identity cache, SigV4),
//! once through the SDK configured as lean as it goes (no retries, no stalled-stream
//! protection, no identity cache, and the no-auth scheme: no signature), and once through the
//! bridge's reqwest client ([`ParticipantSendClient`]). The stand-in's cost is the same for all
//! three, so the differences are the clients' (docs/performance.md, "Micro-benchmarks").
//!
//! Two measures: criterion's wall time per call, and, before it, each client's own CPU per call
//! (`/proc/thread-self/schedstat` of the one thread that runs the client, in alternating rounds;
//! the stand-in runs on another thread). `XDM_BENCH_CPU_CALLS` sets the calls per round (default
//! 5,000; 0 skips the CPU rounds).
//!
//! `cargo bench -p xdm-amazon-connect --bench send_message`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_connectparticipant::config::retry::RetryConfig;
use aws_sdk_connectparticipant::config::{IdentityCache, StalledStreamProtectionConfig};
use aws_smithy_runtime_api::client::auth::AuthSchemeId;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use criterion::{Criterion, criterion_group, criterion_main};
use xdm_amazon_connect::ParticipantSendClient;
use xdm_core::ids::ConnectionToken;

const ANSWER: &str =
    r#"{"Id":"f4b5c8d2-6a1e-4c3b-9d7e-2a8f1b0c9e71","AbsoluteTime":"2026-12-05T10:00:00.000Z"}"#;
const CONTENT: &str = "Hello, I need help with my order #4711: it never arrived.";
const TOKEN: &str = "connection-token-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

/// Requests the stand-in saw, and how many carried a SigV4 `Authorization` header.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    signed: AtomicU64,
}

/// The loopback stand-in on its own thread and runtime; its base URL.
fn start_stand_in(seen: Arc<Seen>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().route(
                "/participant/message",
                axum::routing::post(|headers: HeaderMap, _body: axum::body::Bytes| async move {
                    seen.requests.fetch_add(1, Ordering::Relaxed);
                    if headers.contains_key("authorization") {
                        seen.signed.fetch_add(1, Ordering::Relaxed);
                    }
                    (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        ANSWER,
                    )
                        .into_response()
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    base
}

/// The `SdkConfig` as `serve` loads it (`aws_config::defaults(BehaviorVersion::latest())`), with
/// a region and static credentials instead of the environment's.
async fn production_sdk_config(base: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDBENCH",
            "bench/secret",
            None,
            None,
            "bench",
        ))
        .endpoint_url(base)
        .load()
        .await
}

/// The three clients under test.
struct Clients {
    sdk: aws_sdk_connectparticipant::Client,
    lean: aws_sdk_connectparticipant::Client,
    thin: ParticipantSendClient,
}

async fn clients(base: &str) -> Clients {
    let sdk_config = production_sdk_config(base).await;
    // As `ParticipantClient::new` builds it.
    let sdk = aws_sdk_connectparticipant::Client::from_conf(
        aws_sdk_connectparticipant::config::Builder::from(&sdk_config).build(),
    );
    // Every per-call feature the configuration can turn off.
    let lean = aws_sdk_connectparticipant::Client::from_conf(
        aws_sdk_connectparticipant::config::Builder::from(&sdk_config)
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .identity_cache(IdentityCache::no_cache())
            .allow_no_auth()
            .auth_scheme_preference([AuthSchemeId::new("noAuth")])
            .build(),
    );
    let thin =
        ParticipantSendClient::with_env(&sdk_config, Some(base), Duration::from_secs(20), |_| None)
            .unwrap();
    Clients { sdk, lean, thin }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Sdk,
    Lean,
    Thin,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Sdk, Variant::Lean, Variant::Thin];

    fn name(self) -> &'static str {
        match self {
            Variant::Sdk => "aws-sdk (as configured before)",
            Variant::Lean => "aws-sdk, lean configuration",
            Variant::Thin => "reqwest (ParticipantSendClient)",
        }
    }
}

async fn send(clients: &Clients, variant: Variant, n: u64) {
    let client_token = format!("bench-{n}");
    match variant {
        Variant::Sdk | Variant::Lean => {
            let client = if variant == Variant::Sdk {
                &clients.sdk
            } else {
                &clients.lean
            };
            let out = client
                .send_message()
                .connection_token(TOKEN)
                .content_type("text/plain")
                .content(CONTENT)
                .client_token(client_token)
                .send()
                .await
                .unwrap();
            assert!(out.id().is_some());
        }
        Variant::Thin => {
            let out = clients
                .thin
                .send_message(
                    &ConnectionToken::new(TOKEN),
                    "text/plain",
                    CONTENT,
                    &client_token,
                )
                .await
                .unwrap();
            assert!(out.id.is_some());
        }
    }
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Setup {
    rt: tokio::runtime::Runtime,
    clients: Clients,
    seen: Arc<Seen>,
}

fn setup() -> Setup {
    let seen = Arc::new(Seen::default());
    let base = start_stand_in(Arc::clone(&seen));
    // The client runs on this thread only (current-thread runtime), so its schedstat is the
    // client's CPU.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clients = rt.block_on(clients(&base));
    // Which variants sign: one call each.
    for variant in Variant::ALL {
        let before = seen.signed.load(Ordering::Relaxed);
        rt.block_on(send(&clients, variant, 0));
        let signed = seen.signed.load(Ordering::Relaxed) > before;
        eprintln!("{}: SigV4-signed = {signed}", variant.name());
    }
    Setup { rt, clients, seen }
}

/// Alternating rounds of `calls` calls per variant: each client's own CPU per call.
fn cpu_rounds(s: &Setup, calls: u64, rounds: u32) {
    if calls == 0 {
        return;
    }
    for variant in Variant::ALL {
        for n in 0..calls.min(1000) {
            s.rt.block_on(send(&s.clients, variant, n));
        }
    }
    let mut totals = [0u64; 3];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, variant) in Variant::ALL.into_iter().enumerate() {
            let start = thread_cpu_ns().unwrap_or(0);
            let wall = std::time::Instant::now();
            s.rt.block_on(async {
                for n in 0..calls {
                    send(&s.clients, variant, n).await;
                }
            });
            let cpu = thread_cpu_ns().unwrap_or(0).saturating_sub(start);
            totals[i] += cpu;
            line.push_str(&format!(
                "  {} {:.1} µs CPU, {:.1} µs wall;",
                variant.name(),
                cpu as f64 / calls as f64 / 1000.0,
                wall.elapsed().as_secs_f64() * 1e6 / calls as f64
            ));
        }
        eprintln!("{line}");
    }
    for (i, variant) in Variant::ALL.into_iter().enumerate() {
        eprintln!(
            "mean client CPU per call, {}: {:.1} µs",
            variant.name(),
            totals[i] as f64 / (calls * u64::from(rounds)) as f64 / 1000.0
        );
    }
}

fn send_message(c: &mut Criterion) {
    let s = setup();
    let calls = std::env::var("XDM_BENCH_CPU_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    cpu_rounds(&s, calls, 3);

    // The calls of a sample run in one `block_on`, as in a long-lived runtime: between two
    // `block_on`s nothing drives the connection tasks, and a client whose pooled connection is
    // not yet back would open a new one.
    let mut group = c.benchmark_group("participant SendMessage");
    for variant in Variant::ALL {
        group.bench_function(variant.name(), |b| {
            b.iter_custom(|iters| {
                s.rt.block_on(async {
                    let start = std::time::Instant::now();
                    for n in 0..iters {
                        send(&s.clients, variant, n).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    eprintln!(
        "stand-in: {} requests",
        s.seen.requests.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, send_message);
criterion_main!(benches);
