use std::future::Future;
use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinSet;
use xdm_core::jobs::{Backlog, FinalState, Job, JobQueue, JobState, NewJob};
use xdm_core::ports::Store;

use crate::backends::Fresh;
use crate::fixtures::{job_in, k, keys, l, new_job, stored};

const IN: JobQueue = JobQueue::Inbound;
const OUT: JobQueue = JobQueue::Outbound;

async fn job<S: Store>(store: &S, queue: JobQueue, key: impl AsRef<str>) -> Job {
    let key = &k(key.as_ref());
    match store.job(queue, key).await {
        Ok(Some(job)) => job,
        other => panic!("job {key}: {other:?}"),
    }
}

async fn enqueue_all<S: Store>(store: &S, jobs: &[NewJob]) {
    assert_eq!(store.enqueue(jobs).await, Ok(vec![true; jobs.len()]));
}

async fn heads<S: Store>(store: &S, queue: JobQueue, now_ms: i64, limit: usize) -> Vec<Job> {
    store
        .lane_heads(queue, now_ms, limit)
        .await
        .unwrap_or_else(|e| panic!("lane_heads: {e}"))
}

async fn claim<S: Store>(
    store: &S,
    queue: JobQueue,
    key: impl AsRef<str>,
    now_ms: i64,
    lease: i64,
) -> bool {
    let key = &k(key.as_ref());
    store
        .claim(queue, key, lease, now_ms)
        .await
        .unwrap_or_else(|e| panic!("claim {key}: {e}"))
}

/// The job after `claim` at `now_ms` with a lease until `lease_until_ms` (the first claim's
/// time is kept by later claims).
fn claimed(mut job: Job, now_ms: i64, lease_until_ms: i64) -> Job {
    job.state = JobState::Processing;
    job.attempts += 1;
    job.lease_until_ms = lease_until_ms;
    job.updated_at_ms = now_ms;
    job.first_claimed_at_ms.get_or_insert(now_ms);
    job
}

pub async fn jobs_enqueue_dedup<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let a = new_job(IN, "a", "lane-1", 1, 100, 100);
    let b = new_job(IN, "b", "lane-1", 2, 100, 100);
    let a_again = NewJob {
        payload: "a different payload".into(),
        order_key: 0,
        ..a.clone()
    };
    // Within one call, and across calls: the first (queue, key) wins, the rest are dropped.
    assert_eq!(
        store
            .enqueue(&[a.clone(), b.clone(), a_again.clone()])
            .await,
        Ok(vec![true, true, false])
    );
    assert_eq!(
        store.enqueue(std::slice::from_ref(&a_again)).await,
        Ok(vec![false])
    );
    assert_eq!(store.job(IN, &k("a")).await, Ok(Some(stored(&a))));
    assert_eq!(store.job(IN, &k("b")).await, Ok(Some(stored(&b))));
    assert_eq!(store.job(IN, &k("nope")).await, Ok(None));
    assert_eq!(store.enqueue(&[]).await, Ok(vec![]));

    // The same key in the other queue is another job.
    let a_out = new_job(OUT, "a", "chat-1", 1, 150, 150);
    assert_eq!(
        store.enqueue(std::slice::from_ref(&a_out)).await,
        Ok(vec![true])
    );
    assert_eq!(store.job(OUT, &k("a")).await, Ok(Some(stored(&a_out))));
    assert_eq!(store.job(IN, &k("a")).await, Ok(Some(stored(&a))));

    // Still a duplicate once done or failed.
    assert!(claim(&*store, IN, "a", 200, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("a"), 1, FinalState::Done, None, 300)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "b", 300, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("b"), 1, FinalState::Failed, Some("no"), 400)
            .await,
        Ok(true)
    );
    assert_eq!(
        store.enqueue(&[a.clone(), b.clone()]).await,
        Ok(vec![false, false])
    );
    assert_eq!(job(&*store, IN, "a").await.state, JobState::Done);
    assert_eq!(job(&*store, IN, "b").await.state, JobState::Failed);

    // A batch with a duplicate inside still stores its new jobs.
    let c = new_job(IN, "c", "lane-2", 1, 500, 500);
    assert_eq!(
        store.enqueue(&[a.clone(), c.clone()]).await,
        Ok(vec![false, true])
    );
    assert_eq!(store.job(IN, &k("c")).await, Ok(Some(stored(&c))));
}

pub async fn jobs_lane_heads_follow_lane_order<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    // Lane L1 accepted out of order; k1 and k1b tie on order_key (the key breaks the tie).
    let k3 = new_job(IN, "k3", "L1", 3, 10, 100);
    let k1 = new_job(IN, "k1", "L1", 1, 11, 100);
    let k2 = new_job(IN, "k2", "L1", 2, 12, 100);
    let k1b = new_job(IN, "k1b", "L1", 1, 13, 100);
    let m = new_job(IN, "m", "L2", 5, 14, 50);
    enqueue_all(
        &*store,
        &[k3.clone(), k1.clone(), k2.clone(), k1b.clone(), m.clone()],
    )
    .await;

    assert_eq!(
        heads(&*store, IN, 1_000, 10).await,
        vec![stored(&m), stored(&k1)]
    );
    assert_eq!(heads(&*store, OUT, 1_000, 10).await, vec![]);
    // Only heads can be claimed.
    for later in ["k1b", "k2", "k3"] {
        assert!(!claim(&*store, IN, later, 1_000, 2_000).await, "{later}");
    }

    // Done: the next job of the lane becomes head.
    assert!(claim(&*store, IN, "k1", 1_000, 2_000).await);
    assert_eq!(
        store
            .finish(IN, &k("k1"), 1, FinalState::Done, None, 1_100)
            .await,
        Ok(true)
    );
    assert_eq!(
        heads(&*store, IN, 1_100, 10).await,
        vec![stored(&m), stored(&k1b)]
    );

    // Failed does not block the lane either.
    assert!(claim(&*store, IN, "k1b", 1_100, 2_000).await);
    assert_eq!(
        store
            .finish(IN, &k("k1b"), 1, FinalState::Failed, Some("bad"), 1_200)
            .await,
        Ok(true)
    );
    assert_eq!(
        heads(&*store, IN, 1_200, 10).await,
        vec![stored(&m), stored(&k2)]
    );

    assert!(claim(&*store, IN, "k2", 1_200, 2_000).await);
    assert_eq!(
        store
            .finish(IN, &k("k2"), 1, FinalState::Done, None, 1_300)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "m", 1_300, 2_000).await);
    assert_eq!(
        store
            .finish(IN, &k("m"), 1, FinalState::Done, None, 1_300)
            .await,
        Ok(true)
    );
    assert_eq!(heads(&*store, IN, 1_300, 10).await, vec![stored(&k3)]);
    assert!(claim(&*store, IN, "k3", 1_300, 2_000).await);
    assert_eq!(
        store
            .finish(IN, &k("k3"), 1, FinalState::Done, None, 1_400)
            .await,
        Ok(true)
    );
    assert_eq!(heads(&*store, IN, 1_400, 10).await, vec![]);
}

pub async fn jobs_not_before_is_respected<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let x = new_job(IN, "x", "L", 1, 100, 500);
    enqueue_all(&*store, std::slice::from_ref(&x)).await;

    // Heads due later are listed (so the caller knows when to wake up)…
    assert_eq!(heads(&*store, IN, 100, 10).await, vec![stored(&x)]);
    assert_eq!(heads(&*store, IN, 100, 10).await[0].due_at_ms(), 500);
    // …but cannot be claimed before they are due.
    assert!(!claim(&*store, IN, "x", 499, 1_000).await);
    assert_eq!(store.job(IN, &k("x")).await, Ok(Some(stored(&x))));
    assert!(claim(&*store, IN, "x", 500, 1_000).await);
    assert_eq!(
        store.job(IN, &k("x")).await,
        Ok(Some(claimed(stored(&x), 500, 1_000)))
    );
}

pub async fn jobs_lane_heads_soonest_due_first_and_limit<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    // x-b and w-e tie on due time: the key breaks the tie, whatever the lane names or the
    // acceptance order say.
    let jobs = [
        new_job(IN, "a-1", "a", 1, 0, 300),
        new_job(IN, "x-b", "b", 1, 1, 100),
        new_job(IN, "c-1", "c", 1, 0, 500),
        new_job(IN, "d-1", "d", 1, 0, 200),
        new_job(IN, "w-e", "e", 1, 5, 100),
        new_job(IN, "w-e2", "e", 2, 0, 0),
    ];
    enqueue_all(&*store, &jobs).await;

    let all = heads(&*store, IN, 0, 10).await;
    assert_eq!(keys(&all), ["w-e", "x-b", "d-1", "a-1", "c-1"]);
    assert_eq!(all[1], stored(&jobs[1]));
    assert_eq!(keys(&heads(&*store, IN, 0, 2).await), ["w-e", "x-b"]);
    assert_eq!(keys(&heads(&*store, IN, 0, 5).await).len(), 5);
    assert_eq!(heads(&*store, IN, 0, 0).await, vec![]);

    // A processing head whose lease ran out is due at its lease end.
    assert!(claim(&*store, IN, "x-b", 100, 250).await);
    let later = heads(&*store, IN, 260, 10).await;
    assert_eq!(keys(&later), ["w-e", "d-1", "x-b", "a-1", "c-1"]);
    assert_eq!(later[2], claimed(stored(&jobs[1]), 100, 250));
    assert_eq!(later[2].due_at_ms(), 250);
}

pub async fn jobs_lease_blocks_the_lane<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let j1 = job_in("j1", "L", 1);
    let j2 = job_in("j2", "L", 2);
    let m1 = job_in("m1", "M", 1);
    enqueue_all(&*store, &[j1.clone(), j2.clone(), m1.clone()]).await;

    assert!(claim(&*store, IN, "j1", 1_000, 5_000).await);
    // While leased, the lane has no head at all: neither j1 nor the job behind it.
    assert_eq!(heads(&*store, IN, 4_999, 10).await, vec![stored(&m1)]);
    assert!(!claim(&*store, IN, "j2", 4_999, 9_000).await);
    assert!(!claim(&*store, IN, "j1", 4_999, 9_000).await);

    // Once the lease expires (at lease_until_ms), the job is a head again and claimable.
    let expired = claimed(stored(&j1), 1_000, 5_000);
    assert_eq!(
        heads(&*store, IN, 5_000, 10).await,
        vec![stored(&m1), expired.clone()]
    );
    assert!(claim(&*store, IN, "j1", 5_000, 9_000).await);
    let again = claimed(expired, 5_000, 9_000);
    assert_eq!(again.attempts, 2);
    assert_eq!(store.job(IN, &k("j1")).await, Ok(Some(again)));
    // An expired lease frees the job, not the lane: j2 still waits for j1.
    assert!(!claim(&*store, IN, "j2", 9_000, 9_500).await);
}

/// 10 workers claim the same job at once: exactly one gets it.
/// `workers` tasks claim inbound job `x` (lease until 1,000) at the same instant (100), every
/// other one with `claim_deferred` if `mixed`; returns how many won.
async fn race_claims<S: Store>(store: &Fresh<S>, workers: usize, mixed: bool) -> usize {
    let barrier = Arc::new(Barrier::new(workers));
    let mut tasks = JoinSet::new();
    for n in 0..workers {
        let store = store.shared();
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            if mixed && n % 2 == 0 {
                store.claim_deferred(IN, &k("x"), 1_000, 100).await
            } else {
                store.claim(IN, &k("x"), 1_000, 100).await
            }
        });
    }
    let mut won = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap_or_else(|e| panic!("worker panicked: {e}")) {
            Ok(true) => won += 1,
            Ok(false) => {}
            Err(e) => panic!("claim failed: {e}"),
        }
    }
    won
}

pub async fn jobs_claim_is_compare_and_set<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    const WORKERS: usize = 10;
    let store = fresh().await;
    let x = job_in("x", "L", 1);
    enqueue_all(&*store, std::slice::from_ref(&x)).await;

    assert_eq!(race_claims(&store, WORKERS, false).await, 1);
    assert_eq!(
        store.job(IN, &k("x")).await,
        Ok(Some(claimed(stored(&x), 100, 1_000)))
    );
}

/// `claim_deferred` is the same compare-and-set as `claim` (mixed, exactly one of many wins), and
/// what a backend defers is seen at once by the process's later calls: the claim, then the
/// holder's `finish`, which frees the lane for its next job.
pub async fn jobs_claim_deferred_is_a_claim<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    const WORKERS: usize = 10;
    let store = fresh().await;
    let (x, y) = (job_in("x", "L", 1), job_in("y", "L", 2));
    enqueue_all(&*store, &[x.clone(), y.clone()]).await;
    assert_eq!(
        store.claim_deferred(IN, &k("y"), 1_000, 100).await,
        Ok(false),
        "not the lane's head"
    );

    assert_eq!(race_claims(&store, WORKERS, true).await, 1);
    assert_eq!(job(&*store, IN, "x").await, claimed(stored(&x), 100, 1_000));
    assert!(
        heads(&*store, IN, 200, 10).await.is_empty(),
        "the lane is leased"
    );
    assert_eq!(
        store
            .finish(IN, &k("x"), 1, FinalState::Done, None, 300)
            .await,
        Ok(true)
    );
    assert_eq!(job(&*store, IN, "x").await.state, JobState::Done);
    assert_eq!(heads(&*store, IN, 400, 10).await, vec![stored(&y)]);
    assert_eq!(
        store.claim_deferred(IN, &k("y"), 2_000, 400).await,
        Ok(true)
    );
    assert_eq!(job(&*store, IN, "y").await, claimed(stored(&y), 400, 2_000));
}

pub async fn jobs_claim_refusals<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let x = job_in("x", "L", 1);
    let y = job_in("y", "M", 1);
    let z = job_in("z", "N", 1);
    enqueue_all(&*store, &[x.clone(), y.clone(), z.clone()]).await;

    assert!(!claim(&*store, IN, "unknown", 100, 1_000).await);
    assert!(!claim(&*store, OUT, "x", 100, 1_000).await);
    assert_eq!(store.job(IN, &k("x")).await, Ok(Some(stored(&x))));

    // Finished jobs are never claimed again.
    assert!(claim(&*store, IN, "y", 100, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("y"), 1, FinalState::Done, None, 200)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "z", 100, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("z"), 1, FinalState::Failed, None, 200)
            .await,
        Ok(true)
    );
    assert!(!claim(&*store, IN, "y", 5_000, 6_000).await);
    assert!(!claim(&*store, IN, "z", 5_000, 6_000).await);
    assert_eq!(job(&*store, IN, "y").await.attempts, 1);
    assert_eq!(job(&*store, IN, "z").await.attempts, 1);
}

pub async fn jobs_reschedule<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let x = job_in("x", "L", 1);
    let after = job_in("after", "L", 2);
    enqueue_all(&*store, &[x.clone(), after.clone()]).await;
    assert!(claim(&*store, IN, "x", 100, 1_000).await);

    assert_eq!(
        store.reschedule(IN, &k("x"), 1, 9_000, "boom", 150).await,
        Ok(true)
    );
    let rescheduled = Job {
        state: JobState::Pending,
        attempts: 1,
        not_before_ms: 9_000,
        lease_until_ms: 0,
        updated_at_ms: 150,
        last_error: Some("boom".into()),
        first_claimed_at_ms: Some(100),
        ..stored(&x)
    };
    assert_eq!(store.job(IN, &k("x")).await, Ok(Some(rescheduled.clone())));
    // A rescheduled job still holds its lane.
    assert_eq!(heads(&*store, IN, 150, 10).await, vec![rescheduled.clone()]);
    assert!(!claim(&*store, IN, "after", 150, 1_000).await);

    assert!(!claim(&*store, IN, "x", 8_999, 10_000).await);
    assert!(claim(&*store, IN, "x", 9_000, 10_000).await);
    assert_eq!(
        store.job(IN, &k("x")).await,
        Ok(Some(claimed(rescheduled, 9_000, 10_000)))
    );

    // Unknown job: nothing happens.
    assert_eq!(
        store.reschedule(IN, &k("nope"), 1, 1, "e", 1).await,
        Ok(false)
    );
    assert_eq!(store.job(IN, &k("nope")).await, Ok(None));
}

pub async fn jobs_finish<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let x = job_in("x", "L", 1);
    let y = job_in("y", "M", 1);
    enqueue_all(&*store, &[x.clone(), y.clone()]).await;

    // Done without an error keeps the last error seen.
    assert!(claim(&*store, IN, "x", 100, 1_000).await);
    assert_eq!(
        store.reschedule(IN, &k("x"), 1, 200, "first", 120).await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "x", 200, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("x"), 2, FinalState::Done, None, 300)
            .await,
        Ok(true)
    );
    assert_eq!(
        store.job(IN, &k("x")).await,
        Ok(Some(Job {
            state: JobState::Done,
            attempts: 2,
            not_before_ms: 200,
            lease_until_ms: 0,
            updated_at_ms: 300,
            last_error: Some("first".into()),
            first_claimed_at_ms: Some(100),
            ..stored(&x)
        }))
    );

    // Failed with a reason records it.
    assert!(claim(&*store, IN, "y", 100, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("y"), 1, FinalState::Failed, Some("gave up"), 400)
            .await,
        Ok(true)
    );
    assert_eq!(
        store.job(IN, &k("y")).await,
        Ok(Some(Job {
            state: JobState::Failed,
            attempts: 1,
            lease_until_ms: 0,
            updated_at_ms: 400,
            last_error: Some("gave up".into()),
            first_claimed_at_ms: Some(100),
            ..stored(&y)
        }))
    );

    assert_eq!(
        store
            .finish(IN, &k("nope"), 1, FinalState::Done, None, 1)
            .await,
        Ok(false)
    );
    assert_eq!(store.job(IN, &k("nope")).await, Ok(None));
}

pub async fn jobs_retry_failed<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let failed = job_in("failed", "A", 1);
    let done = job_in("done", "B", 1);
    let pending = job_in("pending", "C", 1);
    enqueue_all(&*store, &[failed.clone(), done.clone(), pending.clone()]).await;
    assert!(claim(&*store, IN, "failed", 100, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("failed"), 1, FinalState::Failed, Some("403"), 200)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "done", 100, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("done"), 1, FinalState::Done, None, 200)
            .await,
        Ok(true)
    );

    assert_eq!(store.retry_failed(IN, &k("done"), 500).await, Ok(false));
    assert_eq!(store.retry_failed(IN, &k("pending"), 500).await, Ok(false));
    assert_eq!(store.retry_failed(IN, &k("unknown"), 500).await, Ok(false));
    assert_eq!(store.retry_failed(OUT, &k("failed"), 500).await, Ok(false));

    assert_eq!(store.retry_failed(IN, &k("failed"), 500).await, Ok(true));
    let retried = Job {
        state: JobState::Pending,
        attempts: 0,
        not_before_ms: 500,
        lease_until_ms: 0,
        updated_at_ms: 500,
        last_error: Some("403".into()),
        // Cleared: the re-driven job starts afresh.
        first_claimed_at_ms: None,
        ..stored(&failed)
    };
    assert_eq!(store.job(IN, &k("failed")).await, Ok(Some(retried.clone())));
    assert_eq!(store.retry_failed(IN, &k("failed"), 600).await, Ok(false));
    assert_eq!(
        store.job(IN, &k("done")).await.map(|j| j.map(|j| j.state)),
        Ok(Some(JobState::Done))
    );
    assert_eq!(
        store.job(IN, &k("pending")).await,
        Ok(Some(stored(&pending)))
    );

    assert!(claim(&*store, IN, "failed", 500, 1_500).await);
    assert_eq!(
        store.job(IN, &k("failed")).await,
        Ok(Some(claimed(retried, 500, 1_500)))
    );
}

pub async fn jobs_release_claims<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let p1 = job_in("p1", "A", 1);
    let p2 = job_in("p2", "B", 1);
    let p3 = job_in("p3", "C", 1);
    let o1 = new_job(OUT, "o1", "chat", 1, 0, 0);
    enqueue_all(&*store, &[p1.clone(), p2.clone(), p3.clone(), o1.clone()]).await;
    assert!(claim(&*store, IN, "p1", 100, 10_000).await);
    assert!(claim(&*store, IN, "p2", 100, 10_000).await);
    assert!(claim(&*store, OUT, "o1", 100, 10_000).await);

    assert_eq!(store.release_claims(IN, 700).await, Ok(2));
    for (key, new) in [("p1", &p1), ("p2", &p2)] {
        assert_eq!(
            store.job(IN, &k(key)).await,
            Ok(Some(Job {
                attempts: 1,
                not_before_ms: 700,
                updated_at_ms: 700,
                first_claimed_at_ms: Some(100),
                ..stored(new)
            }))
        );
    }
    assert_eq!(store.job(IN, &k("p3")).await, Ok(Some(stored(&p3))));
    assert_eq!(
        store.job(OUT, &k("o1")).await,
        Ok(Some(claimed(stored(&o1), 100, 10_000)))
    );
    assert_eq!(store.release_claims(IN, 800).await, Ok(0));

    // Released jobs are claimable at once, long before their old lease would have ended; the
    // first claim's time stays.
    assert!(claim(&*store, IN, "p1", 700, 2_000).await);
    let p1_claimed = job(&*store, IN, "p1").await;
    assert_eq!(p1_claimed.attempts, 2);
    assert_eq!(p1_claimed.first_claimed_at_ms, Some(100));
}

pub async fn jobs_list<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let a = new_job(IN, "a", "A", 1, 300, 0);
    let b = new_job(IN, "b", "B", 1, 100, 0);
    let c = new_job(IN, "c", "C", 1, 200, 0);
    let d = new_job(IN, "d", "D", 1, 100, 0);
    let e = new_job(IN, "e", "E", 1, 400, 0);
    let o = new_job(OUT, "o", "O", 1, 50, 0);
    enqueue_all(
        &*store,
        &[
            a.clone(),
            b.clone(),
            c.clone(),
            d.clone(),
            e.clone(),
            o.clone(),
        ],
    )
    .await;
    assert!(claim(&*store, IN, "c", 500, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("c"), 1, FinalState::Done, None, 600)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "d", 500, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("d"), 1, FinalState::Failed, Some("x"), 600)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "e", 500, 1_000).await);

    // Oldest accepted first, key breaking ties.
    let all = store
        .jobs(IN, None, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys(&all), ["b", "d", "c", "a", "e"]);
    assert_eq!(all[0], stored(&b));
    assert_eq!(all[3], stored(&a));
    let first_two = store
        .jobs(IN, None, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys(&first_two), ["b", "d"]);
    assert_eq!(store.jobs(IN, None, 0).await, Ok(vec![]));

    let by_state = |state| {
        let store = store.shared();
        async move {
            let jobs = store
                .jobs(IN, Some(state), 100)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            jobs.into_iter().map(|j| j.key).collect::<Vec<_>>()
        }
    };
    assert_eq!(by_state(JobState::Pending).await, ["b", "a"]);
    assert_eq!(by_state(JobState::Processing).await, ["e"]);
    assert_eq!(by_state(JobState::Done).await, ["c"]);
    assert_eq!(by_state(JobState::Failed).await, ["d"]);
    assert_eq!(
        store
            .jobs(IN, Some(JobState::Pending), 1)
            .await
            .map(|j| j.len()),
        Ok(1)
    );

    assert_eq!(store.jobs(OUT, None, 100).await, Ok(vec![stored(&o)]));
    assert_eq!(store.jobs(OUT, Some(JobState::Done), 100).await, Ok(vec![]));
}

/// The backlog: open and failed jobs per state (capped at the limit), the oldest open job's
/// acceptance; done jobs and the other queue do not count.
pub async fn jobs_backlog<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let backlog = |queue, limit| {
        let store = store.shared();
        async move {
            store
                .backlog(queue, limit)
                .await
                .unwrap_or_else(|e| panic!("backlog: {e}"))
        }
    };
    assert_eq!(backlog(IN, 100).await, Backlog::default());
    enqueue_all(
        &*store,
        &[
            new_job(IN, "a", "A", 1, 300, 0),
            new_job(IN, "b", "B", 1, 100, 0),
            new_job(IN, "c", "C", 1, 200, 0),
            new_job(IN, "d", "D", 1, 150, 0),
            new_job(IN, "e", "E", 1, 400, 0),
            new_job(IN, "f", "F", 1, 50, 0),
            new_job(OUT, "o", "O", 1, 10, 0),
        ],
    )
    .await;
    // f: done; d: failed; b: processing; a, c, e: pending.
    assert!(claim(&*store, IN, "f", 500, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("f"), 1, FinalState::Done, None, 600)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "d", 500, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("d"), 1, FinalState::Failed, Some("x"), 600)
            .await,
        Ok(true)
    );
    assert!(claim(&*store, IN, "b", 500, 1_000).await);
    assert_eq!(
        backlog(IN, 100).await,
        Backlog {
            pending: 3,
            processing: 1,
            failed: 1,
            oldest_open_accepted_ms: Some(100),
        }
    );
    // Capped counts; the oldest is still the oldest.
    assert_eq!(
        backlog(IN, 2).await,
        Backlog {
            pending: 2,
            processing: 1,
            failed: 1,
            oldest_open_accepted_ms: Some(100),
        }
    );
    // Once b is done, the oldest open job is c.
    assert_eq!(
        store
            .finish(IN, &k("b"), 1, FinalState::Done, None, 700)
            .await,
        Ok(true)
    );
    assert_eq!(backlog(IN, 100).await.oldest_open_accepted_ms, Some(200));
    assert_eq!(
        backlog(OUT, 100).await,
        Backlog {
            pending: 1,
            processing: 0,
            failed: 0,
            oldest_open_accepted_ms: Some(10),
        }
    );
}

/// `lane_head` answers for one lane what `lane_heads` answers for all of them.
pub async fn jobs_lane_head_is_the_lanes_head<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let l2 = new_job(IN, "l2", "L", 2, 0, 0);
    let l1 = new_job(IN, "l1", "L", 1, 1, 300);
    let m1 = job_in("m1", "M", 1);
    enqueue_all(&*store, &[l2.clone(), l1.clone(), m1.clone()]).await;

    let head = |lane: &'static str, now_ms: i64| {
        let store = store.shared();
        async move {
            store
                .lane_head(IN, &l(lane), now_ms)
                .await
                .unwrap_or_else(|e| panic!("lane_head {lane}: {e}"))
        }
    };
    // Due later or now, the head is the lane's first job.
    assert_eq!(head("L", 0).await, Some(stored(&l1)));
    assert_eq!(head("M", 0).await, Some(stored(&m1)));
    assert_eq!(head("nope", 0).await, None);
    assert_eq!(store.lane_head(OUT, &l("L"), 0).await, Ok(None));

    // Leased: no head until the lease ends.
    assert!(claim(&*store, IN, "l1", 300, 1_000).await);
    assert_eq!(head("L", 999).await, None);
    assert_eq!(
        head("L", 1_000).await,
        Some(claimed(stored(&l1), 300, 1_000))
    );
    // Finished: the next job of the lane; then none.
    assert_eq!(
        store
            .finish(IN, &k("l1"), 1, FinalState::Done, None, 400)
            .await,
        Ok(true)
    );
    assert_eq!(head("L", 400).await, Some(stored(&l2)));
    assert!(claim(&*store, IN, "l2", 400, 1_000).await);
    assert_eq!(
        store
            .finish(IN, &k("l2"), 1, FinalState::Failed, Some("x"), 500)
            .await,
        Ok(true)
    );
    assert_eq!(head("L", 500).await, None);
    assert_eq!(heads(&*store, IN, 500, 10).await, vec![stored(&m1)]);
}

/// `lane_jobs`: one lane's open jobs in running order (order key, then key), leased or not,
/// at most `limit`; finished ones leave it.
pub async fn jobs_lane_jobs_list_one_lane_in_order<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    enqueue_all(
        &*store,
        &[
            new_job(IN, "l3", "L", 3, 0, 0),
            new_job(IN, "l1b", "L", 1, 0, 0),
            new_job(IN, "l1a", "L", 1, 0, 0),
            new_job(IN, "l-neg", "L", -5, 0, 0),
            job_in("m1", "M", 1),
            new_job(OUT, "o1", "L", 0, 0, 0),
        ],
    )
    .await;
    let lane = |name: &'static str, limit: usize| {
        let store = store.shared();
        async move {
            store
                .lane_jobs(IN, &l(name), limit)
                .await
                .unwrap_or_else(|e| panic!("lane_jobs {name}: {e}"))
                .into_iter()
                .map(|e| (e.order_key, e.key.as_str().to_owned()))
                .collect::<Vec<_>>()
        }
    };
    let all = vec![
        (-5, "l-neg".to_owned()),
        (1, "l1a".to_owned()),
        (1, "l1b".to_owned()),
        (3, "l3".to_owned()),
    ];
    assert_eq!(lane("L", 10).await, all);
    assert_eq!(lane("L", 2).await, all[..2].to_vec());
    assert_eq!(lane("L", 0).await, Vec::new());
    assert_eq!(lane("nope", 10).await, Vec::new());
    // Claimed (leased) jobs are listed; finished ones are not.
    assert!(claim(&*store, IN, "l-neg", 10, 1_000).await);
    assert_eq!(lane("L", 10).await, all);
    assert_eq!(
        store
            .finish(IN, &k("l-neg"), 1, FinalState::Done, None, 20)
            .await,
        Ok(true)
    );
    assert_eq!(lane("L", 10).await, all[1..].to_vec());
}

/// `first_claimed_at_ms`: unset until the first claim, then the first claim's time through
/// reschedules, re-claims after a lease ran out, released claims and the finish; cleared by the
/// operator's retry, after which the next claim sets it anew.
pub async fn jobs_first_claim_time<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let o = new_job(OUT, "o", "chat", 1, 0, 0);
    let other = new_job(OUT, "other", "chat-2", 1, 0, 0);
    enqueue_all(&*store, &[o.clone(), other.clone()]).await;
    let first = |job: Job| job.first_claimed_at_ms;
    assert_eq!(first(job(&*store, OUT, "o").await), None);
    // A head as the dispatcher reads it before its first claim.
    assert_eq!(
        heads(&*store, OUT, 50, 10)
            .await
            .iter()
            .map(|j| j.first_claimed_at_ms)
            .collect::<Vec<_>>(),
        [None, None]
    );

    assert!(claim(&*store, OUT, "o", 100, 1_000).await);
    assert_eq!(first(job(&*store, OUT, "o").await), Some(100));
    // Only the claimed job.
    assert_eq!(first(job(&*store, OUT, "other").await), None);

    // Rescheduled, then claimed again: the first claim's time stays, and the head read before
    // that claim carries it.
    assert_eq!(
        store
            .reschedule(OUT, &k("o"), 1, 2_000, "timeout", 200)
            .await,
        Ok(true)
    );
    assert_eq!(first(job(&*store, OUT, "o").await), Some(100));
    let head = heads(&*store, OUT, 2_000, 10).await;
    assert_eq!(keys(&head), ["other", "o"]); // soonest due first
    assert_eq!(head[1].first_claimed_at_ms, Some(100));
    assert!(claim(&*store, OUT, "o", 2_000, 3_000).await);
    assert_eq!(first(job(&*store, OUT, "o").await), Some(100));

    // A lease that ran out, claimed by another worker: kept.
    assert!(claim(&*store, OUT, "o", 3_000, 4_000).await);
    assert_eq!(first(job(&*store, OUT, "o").await), Some(100));

    // Released at start-up, claimed again: kept.
    assert_eq!(store.release_claims(OUT, 3_500).await, Ok(1));
    assert_eq!(first(job(&*store, OUT, "o").await), Some(100));
    assert!(claim(&*store, OUT, "o", 3_600, 5_000).await);

    // Finished (failed): kept for inspection.
    assert_eq!(
        store
            .finish(OUT, &k("o"), 4, FinalState::Failed, Some("403"), 3_700)
            .await,
        Ok(true)
    );
    let failed = job(&*store, OUT, "o").await;
    assert_eq!(
        (failed.state, failed.first_claimed_at_ms),
        (JobState::Failed, Some(100))
    );

    // The operator's retry clears it; the next claim sets its own time.
    assert_eq!(store.retry_failed(OUT, &k("o"), 8_000).await, Ok(true));
    assert_eq!(first(job(&*store, OUT, "o").await), None);
    assert!(claim(&*store, OUT, "o", 9_000, 10_000).await);
    assert_eq!(first(job(&*store, OUT, "o").await), Some(9_000));
    assert!(claim(&*store, OUT, "other", 9_500, 10_000).await);
    assert_eq!(first(job(&*store, OUT, "other").await), Some(9_500));

    // A refused claim writes nothing.
    assert!(!claim(&*store, OUT, "o", 9_600, 11_000).await);
    assert_eq!(first(job(&*store, OUT, "o").await), Some(9_000));
}
