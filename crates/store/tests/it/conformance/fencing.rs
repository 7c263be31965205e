//! The claim fence: `renew_lease`, `reschedule` and `finish` apply only for the claim that holds
//! the job (state processing, `attempts` = the claim's number); anyone else is fenced out with
//! `Ok(false)`.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use xdm_core::jobs::{FinalState, Job, JobKey, JobQueue, JobState};
use xdm_core::ports::Store;

use crate::backends::Fresh;
use crate::fixtures::{job_in, k, l, stored};

const IN: JobQueue = JobQueue::Inbound;

async fn job<S: Store>(store: &S, key: impl AsRef<str>) -> Job {
    let key = &k(key.as_ref());
    match store.job(IN, key).await {
        Ok(Some(job)) => job,
        other => panic!("job {key}: {other:?}"),
    }
}

async fn claim<S: Store>(
    store: &S,
    key: impl AsRef<str>,
    now_ms: i64,
    lease_until_ms: i64,
) -> bool {
    let key = &k(key.as_ref());
    store
        .claim(IN, key, lease_until_ms, now_ms)
        .await
        .unwrap_or_else(|e| panic!("claim {key}: {e}"))
}

async fn finish<S: Store>(
    store: &S,
    key: impl AsRef<str>,
    attempt: u32,
    state: FinalState,
    at: i64,
) -> bool {
    let key = &k(key.as_ref());
    store
        .finish(IN, key, attempt, state, Some("outcome"), at)
        .await
        .unwrap_or_else(|e| panic!("finish {key} #{attempt}: {e}"))
}

async fn reschedule<S: Store>(
    store: &S,
    key: impl AsRef<str>,
    attempt: u32,
    not_before: i64,
    at: i64,
) -> bool {
    let key = &k(key.as_ref());
    store
        .reschedule(IN, key, attempt, not_before, "retry", at)
        .await
        .unwrap_or_else(|e| panic!("reschedule {key} #{attempt}: {e}"))
}

async fn renew<S: Store>(
    store: &S,
    key: impl AsRef<str>,
    attempt: u32,
    lease_until: i64,
    at: i64,
) -> bool {
    let key = &k(key.as_ref());
    store
        .renew_lease(IN, key, attempt, lease_until, at)
        .await
        .unwrap_or_else(|e| panic!("renew_lease {key} #{attempt}: {e}"))
}

/// The heads that are due at `now_ms`.
async fn due_heads<S: Store>(store: &S, now_ms: i64) -> Vec<Job> {
    store
        .lane_heads(IN, now_ms, 100)
        .await
        .unwrap_or_else(|e| panic!("lane_heads: {e}"))
        .into_iter()
        .filter(|j| j.due_at_ms() <= now_ms)
        .collect()
}

/// A worker whose lease ran out, after another worker claimed the job again, can neither finish
/// nor reschedule it: not while the new claim holds it, and not after the new holder recorded
/// its own outcome. The new holder's records apply (`true`), and so do a later holder's.
pub async fn jobs_fencing_stale_worker_is_fenced_out<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let x = job_in("x", "L", 1);
    let x_next = job_in("x-next", "L", 2);
    let y = job_in("y", "M", 1);
    assert_eq!(
        store.enqueue(&[x.clone(), x_next.clone(), y.clone()]).await,
        Ok(vec![true; 3])
    );

    // Order 1: the stale worker records while the new claim holds the job.
    assert!(claim(&*store, "x", 100, 1_000).await); // stale: #1
    assert!(claim(&*store, "x", 1_000, 2_000).await); // current: #2
    let held = job(&*store, "x").await;
    assert_eq!((held.state, held.attempts), (JobState::Processing, 2));
    assert!(!finish(&*store, "x", 1, FinalState::Done, 1_100).await);
    assert!(!finish(&*store, "x", 1, FinalState::Failed, 1_100).await);
    assert!(!reschedule(&*store, "x", 1, 1_100, 1_100).await);
    // Nothing changed: still held by #2, and the lane stays blocked behind it.
    assert_eq!(job(&*store, "x").await, held);
    assert!(
        due_heads(&*store, 1_500)
            .await
            .iter()
            .all(|j| j.lane != "L")
    );
    assert!(!claim(&*store, "x-next", 1_500, 3_000).await);
    // The holder's outcome applies.
    assert!(finish(&*store, "x", 2, FinalState::Done, 1_600).await);
    let done = job(&*store, "x").await;
    assert_eq!(
        (done.state, done.attempts, done.updated_at_ms),
        (JobState::Done, 2, 1_600)
    );
    // Too late for the stale worker as well: the job stays done, its lane moves on.
    assert!(!finish(&*store, "x", 1, FinalState::Failed, 1_700).await);
    assert!(!reschedule(&*store, "x", 1, 1_700, 1_700).await);
    assert_eq!(job(&*store, "x").await, done);
    assert_eq!(
        store.lane_head(IN, &l("L"), 1_700).await,
        Ok(Some(stored(&x_next)))
    );

    // Order 2: the new holder records first (a reschedule), then the stale worker tries.
    assert!(claim(&*store, "y", 100, 1_000).await); // stale: #1
    assert!(claim(&*store, "y", 1_000, 2_000).await); // #2
    assert!(reschedule(&*store, "y", 2, 5_000, 1_200).await);
    let pending = job(&*store, "y").await;
    assert_eq!(
        (pending.state, pending.attempts, pending.not_before_ms),
        (JobState::Pending, 2, 5_000)
    );
    // Neither a finish nor a reschedule of #1 applies to the pending job (a reschedule would
    // make it due earlier, a finish would drop #2's retry).
    assert!(!finish(&*store, "y", 1, FinalState::Done, 1_300).await);
    assert!(!reschedule(&*store, "y", 1, 1_300, 1_300).await);
    // Nor does #2 own it any more once it is back to pending.
    assert!(!finish(&*store, "y", 2, FinalState::Done, 1_300).await);
    assert_eq!(job(&*store, "y").await, pending);
    assert!(!claim(&*store, "y", 4_999, 9_000).await);
    // The retry is claimed as #3; #1 and #2 are both stale now, #3 finishes.
    assert!(claim(&*store, "y", 5_000, 9_000).await);
    assert!(!reschedule(&*store, "y", 2, 5_100, 5_100).await);
    assert!(!finish(&*store, "y", 1, FinalState::Done, 5_100).await);
    assert!(finish(&*store, "y", 3, FinalState::Failed, 5_200).await);
    let failed = job(&*store, "y").await;
    assert_eq!(
        (failed.state, failed.attempts, failed.last_error.as_deref()),
        (JobState::Failed, 3, Some("outcome"))
    );
}

/// A finished job cannot be rescheduled (reopened) or finished again by the claim that
/// finished it; the operator's `retry_failed` still reopens a failed one, and `release_claims`
/// fences out the holders it releases.
pub async fn jobs_fencing_finished_jobs_stay_finished<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let jobs = [
        job_in("d", "D", 1),
        job_in("d-next", "D", 2),
        job_in("f", "F", 1),
        job_in("r", "R", 1),
        job_in("p", "P", 1),
    ];
    assert_eq!(store.enqueue(&jobs).await, Ok(vec![true; jobs.len()]));

    // Happy path: the holder's record returns true.
    assert!(claim(&*store, "d", 100, 1_000).await);
    assert!(finish(&*store, "d", 1, FinalState::Done, 200).await);
    let done = job(&*store, "d").await;
    assert!(!reschedule(&*store, "d", 1, 300, 300).await);
    assert!(!finish(&*store, "d", 1, FinalState::Failed, 300).await);
    assert!(!finish(&*store, "d", 1, FinalState::Done, 300).await);
    assert_eq!(job(&*store, "d").await, done);
    assert!(!claim(&*store, "d", 5_000, 6_000).await);
    // Its lane moved on, and stays moved on.
    assert_eq!(
        store.lane_head(IN, &l("D"), 300).await,
        Ok(Some(stored(&jobs[1])))
    );

    assert!(claim(&*store, "f", 100, 1_000).await);
    assert!(finish(&*store, "f", 1, FinalState::Failed, 200).await);
    let failed = job(&*store, "f").await;
    assert!(!reschedule(&*store, "f", 1, 300, 300).await);
    assert!(!finish(&*store, "f", 1, FinalState::Done, 300).await);
    assert_eq!(job(&*store, "f").await, failed);
    // The operator's path is not fenced by a claim: it reopens the failed job (attempts reset).
    assert_eq!(store.retry_failed(IN, &k("f"), 400).await, Ok(true));
    assert_eq!(job(&*store, "f").await.state, JobState::Pending);
    assert!(!finish(&*store, "f", 0, FinalState::Done, 450).await);
    assert!(claim(&*store, "f", 500, 1_500).await);
    assert!(finish(&*store, "f", 1, FinalState::Done, 600).await);

    // A released claim is fenced out: the job is pending again, whatever its holder thinks.
    assert!(claim(&*store, "r", 100, 10_000).await);
    assert_eq!(store.release_claims(IN, 200).await, Ok(1));
    assert!(!reschedule(&*store, "r", 1, 300, 300).await);
    assert!(!finish(&*store, "r", 1, FinalState::Done, 300).await);
    let released = job(&*store, "r").await;
    assert_eq!((released.state, released.attempts), (JobState::Pending, 1));
    assert!(claim(&*store, "r", 300, 1_000).await);
    assert!(!finish(&*store, "r", 1, FinalState::Done, 400).await);
    assert!(finish(&*store, "r", 2, FinalState::Done, 400).await);

    // Never claimed, unknown, or a claim number from the future: nothing applies.
    assert!(!finish(&*store, "p", 0, FinalState::Done, 100).await);
    assert!(!reschedule(&*store, "p", 0, 100, 100).await);
    assert!(!finish(&*store, "unknown", 1, FinalState::Done, 100).await);
    assert!(!reschedule(&*store, "unknown", 1, 100, 100).await);
    assert_eq!(store.job(IN, &k("unknown")).await, Ok(None));
    assert!(claim(&*store, "p", 100, 1_000).await);
    assert!(!finish(&*store, "p", 2, FinalState::Done, 200).await);
    assert!(!reschedule(&*store, "p", 0, 200, 200).await);
    assert_eq!(job(&*store, "p").await.state, JobState::Processing);
    assert!(reschedule(&*store, "p", 1, 200, 200).await);
    assert!(claim(&*store, "p", 200, 1_000).await);
    assert!(finish(&*store, "p", 2, FinalState::Done, 300).await);
}

/// The holder's `renew_lease` moves the lease end (and `updated_at_ms`), nothing else: the job
/// and its lane stay leased until the new end. Anyone else's renewal — a superseded claim, a
/// finished, rescheduled or released job, an unknown job, a claim number never given — returns
/// false and writes nothing (and creates nothing).
pub async fn jobs_fencing_renew_lease<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let a = job_in("a", "A", 1);
    let a_next = job_in("a-next", "A", 2);
    let jobs = [
        a.clone(),
        a_next.clone(),
        job_in("f", "F", 1),
        job_in("s", "S", 1),
        job_in("p", "P", 1),
        job_in("r", "R", 1),
    ];
    assert_eq!(store.enqueue(&jobs).await, Ok(vec![true; jobs.len()]));

    // The holder renews: the lease moves, nothing else does.
    assert!(claim(&*store, "a", 100, 1_000).await); // #1
    let claimed = job(&*store, "a").await;
    assert!(renew(&*store, "a", 1, 3_000, 900).await);
    let renewed = job(&*store, "a").await;
    assert_eq!(
        renewed,
        Job {
            lease_until_ms: 3_000,
            updated_at_ms: 900,
            ..claimed.clone()
        }
    );
    assert_eq!(
        (renewed.state, renewed.attempts, renewed.first_claimed_at_ms),
        (JobState::Processing, 1, Some(100))
    );
    // Past the old lease end, before the new one: the job and its lane stay leased.
    for now in [1_000, 2_000, 2_999] {
        assert!(!claim(&*store, "a", now, now + 1_000).await, "at {now}");
        assert!(
            !claim(&*store, "a-next", now, now + 1_000).await,
            "at {now}"
        );
        assert_eq!(
            store.lane_head(IN, &l("A"), now).await,
            Ok(None),
            "at {now}"
        );
        assert!(
            due_heads(&*store, now).await.iter().all(|j| j.lane != "A"),
            "at {now}"
        );
    }
    assert_eq!(job(&*store, "a").await, renewed);

    // At the new end it is claimable again; the superseded claim's renewal is fenced out.
    assert_eq!(
        store
            .lane_head(IN, &l("A"), 3_000)
            .await
            .map(|h| h.map(|j| j.key)),
        Ok(Some(k("a")))
    );
    assert!(claim(&*store, "a", 3_000, 4_000).await); // #2
    let held = job(&*store, "a").await;
    assert_eq!((held.attempts, held.lease_until_ms), (2, 4_000));
    assert!(!renew(&*store, "a", 1, 9_000, 3_100).await);
    assert_eq!(job(&*store, "a").await, held);
    // The current holder renews (the fence follows the claim), past its own lease's end.
    assert!(renew(&*store, "a", 2, 5_000, 3_200).await);
    assert!(!claim(&*store, "a", 4_500, 6_000).await);
    assert_eq!(job(&*store, "a").await.attempts, 2);
    // A finished job cannot be renewed, by its last holder or anyone.
    assert!(finish(&*store, "a", 2, FinalState::Done, 3_300).await);
    let done = job(&*store, "a").await;
    assert!(!renew(&*store, "a", 2, 9_000, 3_400).await);
    assert!(!renew(&*store, "a", 1, 9_000, 3_400).await);
    assert_eq!(job(&*store, "a").await, done);
    assert_eq!(
        store.lane_head(IN, &l("A"), 3_400).await,
        Ok(Some(stored(&a_next)))
    );

    // Failed, likewise.
    assert!(claim(&*store, "f", 100, 1_000).await);
    assert!(finish(&*store, "f", 1, FinalState::Failed, 200).await);
    let failed = job(&*store, "f").await;
    assert!(!renew(&*store, "f", 1, 9_000, 300).await);
    assert_eq!(job(&*store, "f").await, failed);

    // Back to pending (rescheduled): the old claim does not hold it any more.
    assert!(claim(&*store, "s", 100, 1_000).await);
    assert!(reschedule(&*store, "s", 1, 500, 200).await);
    let pending = job(&*store, "s").await;
    assert!(!renew(&*store, "s", 1, 9_000, 300).await);
    assert_eq!(job(&*store, "s").await, pending);
    assert!(claim(&*store, "s", 500, 1_500).await);

    // An expired lease that nobody claimed again is still the holder's to renew.
    assert!(claim(&*store, "p", 100, 200).await);
    assert!(renew(&*store, "p", 1, 2_000, 500).await);
    assert!(!claim(&*store, "p", 1_000, 3_000).await);
    // A claim number never given, and a job never enqueued: nothing applies, nothing appears.
    assert!(!renew(&*store, "p", 2, 9_000, 600).await);
    assert!(!renew(&*store, "p", 0, 9_000, 600).await);
    assert_eq!(job(&*store, "p").await.lease_until_ms, 2_000);
    assert!(!renew(&*store, "unknown", 1, 9_000, 600).await);
    assert_eq!(store.job(IN, &k("unknown")).await, Ok(None));

    // Released claims are fenced out (the job is pending again).
    assert!(finish(&*store, "s", 2, FinalState::Done, 700).await);
    assert!(finish(&*store, "p", 1, FinalState::Done, 700).await);
    assert!(claim(&*store, "r", 100, 10_000).await);
    assert_eq!(store.release_claims(IN, 800).await, Ok(1));
    let released = job(&*store, "r").await;
    assert!(!renew(&*store, "r", 1, 20_000, 900).await);
    assert_eq!(job(&*store, "r").await, released);
    assert_eq!((released.state, released.attempts), (JobState::Pending, 1));
}

/// Workers that keep claiming with leases so short that they often run out mid-job: each job
/// ends done exactly once, a record applies only for the claim that holds the job (never for a
/// claim that a newer one has superseded), and no two claimants both get `true` for one claim.
pub async fn jobs_fencing_concurrent_claimants<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    const WORKERS: usize = 10;
    const LANES: usize = 6;
    const PER_LANE: usize = 4;
    const JOBS: usize = LANES * PER_LANE;
    /// In ticks of the shared clock, which advances by one per successful claim: a lease runs
    /// out once this many other claims succeeded meanwhile.
    const LEASE: i64 = 2;

    let store = fresh().await;
    let jobs: Vec<_> = (0..LANES)
        .flat_map(|lane| {
            (0..PER_LANE).map(move |i| {
                job_in(
                    &format!("l{lane}-{i}"),
                    &format!("l{lane}"),
                    i64::try_from(i).unwrap_or(0),
                )
            })
        })
        .collect();
    assert_eq!(store.enqueue(&jobs).await, Ok(vec![true; JOBS]));

    #[derive(Default)]
    struct Shared {
        clock: AtomicI64,
        finished: AtomicUsize,
        /// Per job: the highest claim number whose `claim` has returned.
        claimed: Mutex<HashMap<JobKey, Arc<AtomicU32>>>,
        /// (key, claim number, what) of every record that applied.
        applied: Mutex<Vec<(JobKey, u32, &'static str)>>,
        claims: AtomicUsize,
        fenced: AtomicUsize,
    }
    let shared = Arc::new(Shared::default());
    for j in &jobs {
        lock(&shared.claimed).insert(j.key.clone(), Arc::new(AtomicU32::new(0)));
    }
    let deadline = Instant::now() + Duration::from_secs(120);

    let mut tasks = JoinSet::new();
    for worker in 0..WORKERS {
        let store = store.shared();
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            let mut rng = Rng::new(worker);
            while shared.finished.load(Ordering::SeqCst) < JOBS {
                assert!(Instant::now() < deadline, "the workers made no progress");
                let now = shared.clock.load(Ordering::SeqCst);
                let mut due = due_heads(&*store, now).await;
                if due.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let head = due.swap_remove(rng.below(due.len()));
                let key = head.key;
                if !claim(&*store, &key, now, now + LEASE).await {
                    continue;
                }
                // The claim's number as the dispatcher derives it. If the head was claimed and
                // released again since it was read, this is too low, and the records of this
                // claim are fenced out: never wrong the other way.
                let attempt = head.attempts + 1;
                let newest = Arc::clone(&lock(&shared.claimed)[&key]);
                newest.fetch_max(attempt, Ordering::SeqCst);
                shared.claims.fetch_add(1, Ordering::SeqCst);
                shared.clock.fetch_add(1, Ordering::SeqCst);

                // "Work": from nothing to a stall that lasts until another worker has claimed
                // the job again (bounded, in case nobody does: then this one records in time).
                match rng.below(6) {
                    0 => {}
                    1 => tokio::task::yield_now().await,
                    2 | 3 => tokio::time::sleep(Duration::from_millis(2)).await,
                    _ => {
                        let stall = Instant::now() + Duration::from_millis(300);
                        while newest.load(Ordering::SeqCst) == attempt && Instant::now() < stall {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                }

                // A newer claim that has returned before we record supersedes us for sure.
                let superseded = newest.load(Ordering::SeqCst) > attempt;
                let at = shared.clock.load(Ordering::SeqCst);
                let (applied, what) = if rng.below(3) == 0 {
                    // Due again at once, so that it does not wait for the clock.
                    (
                        reschedule(&*store, &key, attempt, at, at).await,
                        "reschedule",
                    )
                } else {
                    (
                        finish(&*store, &key, attempt, FinalState::Done, at).await,
                        "finish",
                    )
                };
                if applied {
                    assert!(
                        !superseded,
                        "{what} of {key} #{attempt} applied after a newer claim returned"
                    );
                    lock(&shared.applied).push((key.clone(), attempt, what));
                    if what == "finish" {
                        shared.finished.fetch_add(1, Ordering::SeqCst);
                    }
                } else {
                    shared.fenced.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }

    // Per job: every applied record belongs to a different claim (no two claimants both got
    // `true` for one claim), exactly one finish applied, it was the last record, and the job is
    // done at that claim's number. (A record applies only if its claim number is the job's
    // `attempts`, which only grows here: so the number of an applied record is exact.)
    let applied = lock(&shared.applied).clone();
    for j in &jobs {
        let records: Vec<_> = applied.iter().filter(|(key, ..)| *key == j.key).collect();
        let mut attempts: Vec<u32> = records.iter().map(|(_, a, _)| *a).collect();
        attempts.sort_unstable();
        attempts.dedup();
        assert_eq!(attempts.len(), records.len(), "{}: {records:?}", j.key);
        let finishes: Vec<_> = records.iter().filter(|(.., w)| *w == "finish").collect();
        assert_eq!(
            finishes.len(),
            1,
            "{}: done exactly once: {records:?}",
            j.key
        );
        let finished_as = finishes[0].1;
        assert!(
            records.iter().all(|(_, a, _)| *a <= finished_as),
            "{}: a record after the finish: {records:?}",
            j.key
        );
        let stored = job(&*store, &j.key).await;
        assert_eq!(
            (stored.state, stored.attempts),
            (JobState::Done, finished_as),
            "{}",
            j.key
        );
    }
    assert_eq!(
        store
            .jobs(IN, Some(JobState::Done), 100)
            .await
            .map(|j| j.len()),
        Ok(JOBS)
    );
    // How much the run exercised the fence (leases of 2 claims among 10 workers run out often).
    eprintln!(
        "fencing: {} claims, {} records applied, {} fenced out",
        shared.claims.load(Ordering::SeqCst),
        applied.len(),
        shared.fenced.load(Ordering::SeqCst)
    );
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A small xorshift generator, seeded per worker and per run.
struct Rng(u64);

impl Rng {
    fn new(worker: usize) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(worker);
        Self(h.finish() | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}
