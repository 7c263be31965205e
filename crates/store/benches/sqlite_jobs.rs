//! The SQLite store's calls on the delivery path, one at a time, each a round trip to the store
//! thread and a committed transaction where it writes (docs/performance.md, "Store calls"):
//! `lane_head` (read, the planner's statement), `enqueue` of one job, and the claim → finish
//! cycle of one job with each write committed, with the finish deferred and with both deferred.
//!
//! `cargo bench -p xdm-store --bench sqlite_jobs`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use xdm_core::ids::{XEventId, XUserId};
use xdm_core::jobs::{FinalState, JobKey, JobQueue, Lane, NewJob};
use xdm_core::ports::Store;
use xdm_store::{SqliteOptions, SqliteStore};

/// Customers with work waiting, as in a busy contact center: the lane-head query picks one lane
/// among many.
const LANES: u64 = 200;
const JOBS_PER_LANE: u64 = 5;

fn job(customer: u64, event: u64) -> NewJob {
    let business = XUserId::parse("1111111111").unwrap();
    let customer = XUserId::parse(format!("{}", 2_000_000 + customer)).unwrap();
    let event_id = XEventId::parse(format!("{}", 9_000_000_000 + event)).unwrap();
    NewJob {
        queue: JobQueue::Inbound,
        key: JobKey::inbound_dm(&business, &event_id),
        lane: Lane::customer(&business, &customer),
        order_key: event as i64,
        payload: r#"{"text":"Hello, I need help with my order"}"#.to_owned(),
        accepted_at_ms: 1_000,
        not_before_ms: 1_000,
    }
}

fn store_calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqliteStore::open(dir.path().join("bench.db")))
        .unwrap();
    let mut event = 0;
    let mut backlog = Vec::new();
    for lane in 0..LANES {
        for _ in 0..JOBS_PER_LANE {
            backlog.push(job(lane, event));
            event += 1;
        }
    }
    rt.block_on(store.enqueue(&backlog)).unwrap();
    let next_event = AtomicU64::new(event);
    let busy_lane = backlog[0].lane.clone();

    c.bench_function("lane_head", |b| {
        b.iter(|| {
            rt.block_on(store.lane_head(JobQueue::Inbound, &busy_lane, 10_000))
                .unwrap()
                .expect("a job")
        })
    });
    c.bench_function("enqueue one job", |b| {
        b.iter(|| {
            let event = next_event.fetch_add(1, Ordering::Relaxed);
            let job = job(LANES + event % 50, event);
            rt.block_on(store.enqueue(std::slice::from_ref(&job)))
                .unwrap()
        })
    });
    // The claim → finish cycle three ways: each write committed on its own (deferral off, as
    // before it existed), the finish deferred (an outbound job), both deferred (an inbound job).
    // Each cycle's set-up enqueues the next job, a commit that carries the deferred writes before
    // it, as the next webhook does in production.
    let eager = rt
        .block_on(SqliteStore::open_with(
            dir.path().join("eager.db"),
            SqliteOptions {
                deferred_commit_within: Duration::ZERO,
                ..SqliteOptions::default()
            },
        ))
        .unwrap();
    let cycles: [(&str, &SqliteStore, bool); 3] = [
        ("claim then finish one job, each committed", &eager, false),
        (
            "claim then finish one job, the finish deferred",
            &store,
            false,
        ),
        ("claim then finish one job, both deferred", &store, true),
    ];
    for (name, store, deferred_claim) in cycles {
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let event = next_event.fetch_add(1, Ordering::Relaxed);
                    let job = job(LANES + 100 + event % 50, event);
                    rt.block_on(store.enqueue(std::slice::from_ref(&job)))
                        .unwrap();
                    job.key
                },
                |key| {
                    rt.block_on(async {
                        let claimed = if deferred_claim {
                            store
                                .claim_deferred(JobQueue::Inbound, &key, 60_000, 10_000)
                                .await
                        } else {
                            store.claim(JobQueue::Inbound, &key, 60_000, 10_000).await
                        };
                        assert!(claimed.unwrap());
                        assert!(
                            store
                                .finish(JobQueue::Inbound, &key, 1, FinalState::Done, None, 10_001)
                                .await
                                .unwrap()
                        );
                    })
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, store_calls);
criterion_main!(benches);
