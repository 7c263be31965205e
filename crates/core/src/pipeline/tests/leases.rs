//! The dispatcher, holds, and leases of running jobs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::jobs::{JobKey, JobQueue, JobState};
use crate::ports::{Clock, ConnectError, Store};

use super::fakes::*;

/// A worker whose lease ran out while another one claimed the job again records nothing:
/// neither its retry (which would put the job back to pending for a third run) nor its success.
#[tokio::test]
async fn a_worker_whose_lease_ran_out_cannot_record_over_the_next_claim() {
    let h = harness();
    let store = h.bridge.store();
    let key = JobKey::parse(format!("{BUSINESS}:1")).unwrap();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    let claim = |now: i64| {
        let key = key.clone();
        async move {
            let mut job = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
            assert!(
                store
                    .claim(JobQueue::Inbound, &key, now + 60_000, now)
                    .await
                    .unwrap()
            );
            job.attempts += 1;
            job.state = JobState::Processing;
            job
        }
    };
    let stale = claim(h.clock.now_ms()).await;
    h.clock.advance(61_000);
    let current = claim(h.clock.now_ms()).await;
    assert_eq!((stale.attempts, current.attempts), (1, 2));

    // The stale worker fails transiently: its retry is fenced out, the job stays claimed.
    h.connect
        .fail("StartChatContact", ConnectError::Unavailable("500".into()));
    h.bridge.run_job(JobQueue::Inbound, stale.clone()).await;
    let held = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((held.state, held.attempts), (JobState::Processing, 2));
    assert_eq!(held.last_error, None);

    // The current holder delivers and records it.
    h.bridge.run_job(JobQueue::Inbound, current).await;
    let done = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));

    // The stale worker runs again (idempotently) and is fenced out of the finished job too.
    h.clock.advance(1_000);
    h.bridge.run_job(JobQueue::Inbound, stale).await;
    assert_eq!(
        store.job(JobQueue::Inbound, &key).await.unwrap().unwrap(),
        done
    );
    assert_eq!(h.connect.contacts().len(), 1);
    assert_eq!(h.connect.contacts()[0].messages, vec!["hi"]);
    assert_eq!(h.open_jobs().await, 0);
}

#[tokio::test]
async fn dispatcher_delivers_in_the_background_and_stops_on_shutdown() {
    let h = harness();
    // real time for the dispatcher's sleeps; the manual clock is advanced by the test
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(JobQueue::Inbound, rx));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    h.bridge.wake(JobQueue::Inbound);
    for _ in 0..200 {
        if !h.connect.contacts().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(h.connect.contacts().len(), 1);
    tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_hold_delivers_nothing_new_and_its_release_delivers_in_created_order() {
    let h = harness();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(JobQueue::Inbound, rx));
    let hold = h.bridge.hold(JobQueue::Inbound);
    assert!(h.bridge.is_held(JobQueue::Inbound));
    // A live DM arrives during a catch-up…
    h.bridge
        .accept_inbound(batch(vec![dm(3, 30, "live")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    h.bridge.wake(JobQueue::Inbound);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(h.connect.contacts().is_empty(), "nothing starts while held");
    // …and the catch-up stores the older DMs of the gap.
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "gap one"), dm(2, 20, "gap two")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    drop(hold);
    assert!(!h.bridge.is_held(JobQueue::Inbound));
    for _ in 0..400 {
        if h.connect.contacts().first().map_or(0, |c| c.messages.len()) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        h.connect.contacts()[0].messages,
        ["gap one", "gap two", "live"]
    );
    tx.send(true).unwrap();
    task.await.unwrap();
}

/// Accepts one DM and claims its job as the dispatcher does; returns the job as claimed.
async fn accept_and_claim(bridge: &LeaseBridge, text: &str) -> crate::jobs::Job {
    bridge
        .accept_inbound(batch(vec![dm(1, 10, text)]))
        .await
        .unwrap();
    for _ in 0..100 {
        let now = bridge.now_ms();
        let heads = bridge
            .store()
            .lane_heads(JobQueue::Inbound, now, 10)
            .await
            .unwrap();
        if let Some(head) = heads.into_iter().find(|j| j.due_at_ms() <= now) {
            let store = bridge.store();
            assert!(
                store
                    .claim(JobQueue::Inbound, &head.key, now + SHORT_LEASE_MS, now)
                    .await
                    .unwrap()
            );
            let claimed = store
                .job(JobQueue::Inbound, &head.key)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((claimed.state, claimed.attempts), (JobState::Processing, 1));
            return claimed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the accepted job never became due");
}

#[tokio::test(start_paused = true)]
async fn a_job_running_longer_than_its_lease_keeps_it_and_finishes_once() {
    let (bridge, connect) = slow_bridge();
    let job = accept_and_claim(&bridge, "a long relay").await;
    let (key, claimed_at) = (job.key.clone(), bridge.now_ms());
    let run = tokio::spawn({
        let bridge = Arc::clone(&bridge);
        async move { bridge.run_job(JobQueue::Inbound, job).await }
    });
    // A second worker tries to claim the job all along: it never can while the job runs.
    let mut last_check = claimed_at;
    while !run.is_finished() {
        let now = bridge.now_ms();
        let store = bridge.store();
        assert!(
            !store
                .claim(JobQueue::Inbound, &key, now + SHORT_LEASE_MS, now)
                .await
                .unwrap(),
            "claimed by a second worker {} ms after the first claim",
            now - claimed_at
        );
        assert_eq!(
            store.lane_heads(JobQueue::Inbound, now, 10).await.unwrap(),
            vec![]
        );
        last_check = now;
        tokio::time::sleep(std::time::Duration::from_millis(7)).await;
    }
    run.await.unwrap();
    // The checks covered several lease lengths past the first claim's lease.
    assert!(
        last_check - claimed_at >= 4 * SHORT_LEASE_MS,
        "checked only until {} ms",
        last_check - claimed_at
    );
    let done = bridge
        .store()
        .job(JobQueue::Inbound, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 1));
    assert_eq!(connect.started.load(Ordering::SeqCst), 1);
    let contacts = connect.inner.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["a long relay"]);
}

#[tokio::test(start_paused = true)]
async fn a_superseded_run_stops_without_recording_and_the_new_holder_decides() {
    let (bridge, connect) = slow_bridge();
    let job = accept_and_claim(&bridge, "taken over").await;
    let key = job.key.clone();
    let old = tokio::spawn({
        let bridge = Arc::clone(&bridge);
        async move { bridge.run_job(JobQueue::Inbound, job).await }
    });
    // Mid-run (past the first lease, kept by renewals): the opening call is under way.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(connect.started.load(Ordering::SeqCst), 1);
    assert!(connect.inner.contacts().is_empty());
    let store = bridge.store();
    let renewed = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((renewed.state, renewed.attempts), (JobState::Processing, 1));
    assert!(renewed.lease_until_ms > bridge.now_ms(), "{renewed:?}");

    // Another worker takes the job over: the claim is released and claimed again (#2).
    let now = bridge.now_ms();
    assert_eq!(
        store.release_claims(JobQueue::Inbound, now).await.unwrap(),
        1
    );
    assert!(
        store
            .claim(JobQueue::Inbound, &key, now + 10_000, now)
            .await
            .unwrap()
    );
    let held = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((held.state, held.attempts), (JobState::Processing, 2));

    // The old run stops at its next renewal: its call never reached Connect, nothing recorded,
    // and its renewal did not move the new holder's lease.
    old.await.unwrap();
    assert!(connect.inner.contacts().is_empty());
    assert_eq!(
        store.job(JobQueue::Inbound, &key).await.unwrap().unwrap(),
        held
    );

    // The new holder's run is the one that delivers and records.
    bridge.run_job(JobQueue::Inbound, held).await;
    let done = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert_eq!(connect.started.load(Ordering::SeqCst), 2);
    let contacts = connect.inner.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["taken over"]);
}
