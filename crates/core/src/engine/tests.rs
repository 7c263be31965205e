//! The engine on its own, with a handler that is not a pipeline: what a new kind of work gets
//! by implementing `JobHandler` and registering it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::jobs::{Job, JobKey, JobState};
use crate::memory_store::MemoryStore;
use crate::ports::SystemClock;

/// Records what it ran; answers `Retry` once for keys ending in `retry`, `Failed` for keys ending
/// in `fail`, else `Done`.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<(Lane, JobKey, u32)>>,
}

impl JobHandler for Recorder {
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a> {
        Box::pin(async move {
            self.runs
                .lock()
                .unwrap()
                .push((job.lane.clone(), job.key.clone(), job.attempts));
            let key = job.key.as_str();
            if key.ends_with("retry") && job.attempts == 1 {
                JobOutcome::Retry {
                    not_before_ms: Some(0),
                    reason: "once more".into(),
                }
            } else if key.ends_with("fail") {
                JobOutcome::Failed {
                    reason: "never".into(),
                }
            } else {
                JobOutcome::Done
            }
        })
    }
}

fn engine() -> Arc<JobEngine<MemoryStore, SystemClock>> {
    JobEngine::new(
        MemoryStore::new(),
        SystemClock,
        EngineConfig {
            lease_ms: 10_000,
            concurrency: 4,
            ..EngineConfig::default()
        },
    )
}

fn job(lane: &str, key: &str, order_key: i64, now: i64) -> NewJob {
    NewJob {
        queue: JobQueue::Outbound,
        key: JobKey::parse(key).unwrap(),
        lane: Lane::parse(lane).unwrap(),
        order_key,
        payload: "{}".into(),
        accepted_at_ms: now,
        not_before_ms: now,
    }
}

async fn wait_until_closed(engine: &JobEngine<MemoryStore, SystemClock>, count: usize) {
    for _ in 0..500 {
        let jobs = engine
            .store()
            .jobs(JobQueue::Outbound, None, 100)
            .await
            .unwrap();
        if jobs.len() == count && jobs.iter().all(|j| !j.state.is_open()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the jobs did not all finish");
}

#[tokio::test]
async fn a_registered_handler_runs_every_job_once_in_lane_order() {
    let engine = engine();
    let recorder = Arc::new(Recorder::default());
    let mut handlers = Handlers::default();
    handlers.register(JobQueue::Outbound, recorder.clone());
    assert_eq!(handlers.queues().collect::<Vec<_>>(), [JobQueue::Outbound]);
    assert!(handlers.get(JobQueue::Inbound).is_none());

    let (tx, rx) = watch::channel(false);
    let handler = Arc::clone(handlers.get(JobQueue::Outbound).unwrap());
    let task = tokio::spawn(Arc::clone(&engine).run_dispatcher(JobQueue::Outbound, handler, rx));

    let now = engine.now_ms();
    // Accepted out of order: each lane runs by order key.
    let mut jobs = Vec::new();
    for lane in ["a", "b", "c"] {
        for n in (0..4).rev() {
            let suffix = if n == 1 { "-retry" } else { "" };
            jobs.push(job(lane, &format!("{lane}{n}{suffix}"), n, now));
        }
    }
    jobs.push(job("d", "d0-fail", 0, now));
    jobs.push(job("d", "d1", 1, now));
    let fresh = engine.enqueue(&jobs).await.unwrap();
    assert!(fresh.iter().all(|new| *new));
    // A second enqueue of the same keys is a duplicate.
    assert_eq!(engine.enqueue(&jobs[..1]).await.unwrap(), [false]);

    wait_until_closed(&engine, jobs.len()).await;
    tx.send(true).unwrap();
    task.await.unwrap();

    let runs = recorder.runs.lock().unwrap().clone();
    let mut by_lane: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    for (lane, key, attempt) in runs {
        by_lane
            .entry(lane.to_string())
            .or_default()
            .push((key.to_string(), attempt));
    }
    for lane in ["a", "b", "c"] {
        assert_eq!(
            by_lane[lane],
            [
                (format!("{lane}0"), 1),
                (format!("{lane}1-retry"), 1),
                (format!("{lane}1-retry"), 2),
                (format!("{lane}2"), 1),
                (format!("{lane}3"), 1),
            ],
            "lane {lane}"
        );
    }
    // A failed job is parked and does not block its lane.
    assert_eq!(
        by_lane["d"],
        [("d0-fail".to_owned(), 1), ("d1".to_owned(), 1)]
    );
    let failed = engine
        .store()
        .jobs(JobQueue::Outbound, Some(JobState::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key.as_str(), "d0-fail");
    assert_eq!(failed[0].last_error.as_deref(), Some("never"));
}

#[tokio::test]
async fn run_due_runs_one_lane_when_asked_and_every_lane_otherwise() {
    let engine = engine();
    let recorder = Arc::new(Recorder::default());
    let handler: Arc<dyn JobHandler> = recorder.clone();
    let now = engine.now_ms();
    engine
        .enqueue(&[job("a", "a0", 0, now), job("b", "b0", 0, now)])
        .await
        .unwrap();

    let deadline = now + 5_000;
    let a = Lane::parse("a").unwrap();
    let summary = engine
        .run_due(JobQueue::Outbound, &handler, Some(&a), deadline, 0)
        .await;
    assert_eq!(summary.ran, 1);
    assert_eq!(recorder.runs.lock().unwrap().len(), 1);
    assert_eq!(recorder.runs.lock().unwrap()[0].0, a);

    let summary = engine
        .run_due(JobQueue::Outbound, &handler, None, deadline, 0)
        .await;
    assert_eq!(summary.ran, 1);
    assert_eq!(
        recorder.runs.lock().unwrap()[1].1,
        JobKey::parse("b0").unwrap()
    );
    // Other queues are untouched by this handler's runs.
    assert!(
        engine
            .store()
            .jobs(JobQueue::Inbound, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_held_queue_starts_nothing_until_released() {
    let engine = engine();
    let recorder = Arc::new(Recorder::default());
    let handler: Arc<dyn JobHandler> = recorder.clone();
    let hold = engine.hold(JobQueue::Outbound);
    assert!(engine.is_held(JobQueue::Outbound));
    assert!(!engine.is_held(JobQueue::Inbound));
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&engine).run_dispatcher(JobQueue::Outbound, handler, rx));
    let now = engine.now_ms();
    engine.enqueue(&[job("a", "a0", 0, now)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(recorder.runs.lock().unwrap().is_empty());
    drop(hold);
    wait_until_closed(&engine, 1).await;
    tx.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(recorder.runs.lock().unwrap().len(), 1);
}

/// Many lanes waiting for their time (a reorder or buffering window) are not a reason to read
/// every lane's head again and again: the dispatcher reads them once, then waits.
#[tokio::test]
async fn lanes_due_later_are_read_once_not_on_every_turn() {
    let engine = engine(); // concurrency 4: one read returns 8 heads
    let now = engine.now_ms();
    let later: Vec<NewJob> = (0..50)
        .map(|i| NewJob {
            not_before_ms: now + 60_000,
            ..job(&format!("lane{i}"), &format!("k{i}"), 0, now)
        })
        .collect();
    engine.enqueue(&later).await.unwrap();
    let mut handlers = Handlers::default();
    handlers.register(JobQueue::Outbound, Arc::new(Recorder::default()));
    let handler = Arc::clone(handlers.get(JobQueue::Outbound).unwrap());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&engine).run_dispatcher(JobQueue::Outbound, handler, rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reads = engine.store().lane_heads_reads();
    assert!(reads <= 2, "every lane's head read {reads} times in 300 ms");
    tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn the_operator_retries_failed_jobs_by_key_or_all_and_leaves_the_others_alone() {
    let engine = engine();
    let handler: Arc<dyn JobHandler> = Arc::new(Recorder::default());
    let now = engine.now_ms();
    engine
        .enqueue(&[
            job("a", "a0-fail", 0, now),
            job("b", "b0-fail", 0, now),
            job("c", "c0", 0, now),
        ])
        .await
        .unwrap();
    engine
        .run_due(JobQueue::Outbound, &handler, None, now + 5_000, 0)
        .await;
    let key = |k: &str| JobKey::parse(k).unwrap();
    let state = |k: &'static str| {
        let engine = Arc::clone(&engine);
        async move {
            engine
                .store()
                .job(JobQueue::Outbound, &key(k))
                .await
                .unwrap()
                .unwrap()
                .state
        }
    };
    assert_eq!(state("a0-fail").await, JobState::Failed);

    // By key: the failed one goes back in line; the done one and an unknown one are left alone.
    let done = retry_failed_jobs(
        engine.store(),
        JobQueue::Outbound,
        FailedJobs::Keys(vec![key("a0-fail"), key("c0"), key("nope")]),
        now,
    )
    .await
    .unwrap();
    assert_eq!(done.retried, [key("a0-fail")]);
    assert_eq!(done.left_alone, [key("c0"), key("nope")]);
    assert_eq!(state("a0-fail").await, JobState::Pending);
    assert_eq!(state("b0-fail").await, JobState::Failed);
    assert_eq!(state("c0").await, JobState::Done);

    // All: every failed job of the queue, and none of the other queue's.
    let done = retry_failed_jobs(engine.store(), JobQueue::Outbound, FailedJobs::All, now)
        .await
        .unwrap();
    assert_eq!(done.retried, [key("b0-fail")]);
    assert!(done.left_alone.is_empty());
    assert_eq!(state("b0-fail").await, JobState::Pending);
    let none = retry_failed_jobs(engine.store(), JobQueue::Inbound, FailedJobs::All, now)
        .await
        .unwrap();
    assert_eq!(none, Retried::default());
}

#[tokio::test]
async fn the_recorded_claims_of_several_due_lanes_are_made_together() {
    // Three lanes due at once, and a claim goes through only once all three are being made: a
    // dispatcher that claimed each job before starting the next would wait forever on the first.
    let engine = JobEngine::new(
        MemoryStore::with_claim_gate(3),
        SystemClock,
        EngineConfig {
            lease_ms: 10_000,
            concurrency: 4,
            ..EngineConfig::default()
        },
    );
    let now = engine.now_ms();
    let jobs: Vec<NewJob> = ["a", "b", "c"]
        .into_iter()
        .map(|lane| job(lane, &format!("{lane}0"), 0, now))
        .collect();
    engine.enqueue(&jobs).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let handler: Arc<dyn JobHandler> = recorder.clone();
    assert!(handler.needs_recorded_claim());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(Arc::clone(&engine).run_dispatcher(JobQueue::Outbound, handler, rx));
    // Panics (the claims waited for each other) if they do not all finish.
    wait_until_closed(&engine, jobs.len()).await;
    tx.send(true).unwrap();
    task.await.unwrap();
    let mut ran: Vec<String> = recorder
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, key, attempt)| format!("{key}#{attempt}"))
        .collect();
    ran.sort();
    assert_eq!(ran, ["a0#1", "b0#1", "c0#1"]);
}
