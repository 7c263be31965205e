use std::future::Future;

use xdm_core::jobs::{FinalState, JobQueue};
use xdm_core::ports::{SessionInsert, Store};

use crate::backends::Fresh;
use crate::fixtures::{cid, full_profile, job_in, k, session, stored, uid};

const IN: JobQueue = JobQueue::Inbound;

/// Purge deletes finished jobs and ended sessions older than their cut-offs (strictly before),
/// and profiles expired at `now`. Never an open job or an open session, however old.
pub async fn purge_deletes_only_what_expired<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    // Jobs: each in its own lane, finished at the given time.
    let finished = [
        ("old-done", FinalState::Done, 100),
        ("old-failed", FinalState::Failed, 100),
        ("done-at-cutoff", FinalState::Done, 500),
        ("new-done", FinalState::Done, 900),
    ];
    let open = [
        job_in("old-pending", "P", 1),
        job_in("old-processing", "Q", 1),
    ];
    for (key, state, at) in finished {
        let new = job_in(key, key, 1);
        assert_eq!(store.enqueue(&[new]).await, Ok(vec![true]));
        assert_eq!(store.claim(IN, &k(key), 10_000, 0).await, Ok(true));
        assert_eq!(
            store.finish(IN, &k(key), 1, state, None, at).await,
            Ok(true)
        );
    }
    assert_eq!(store.enqueue(&open).await, Ok(vec![true, true]));
    assert_eq!(
        store.claim(IN, &k("old-processing"), 100_000, 60).await,
        Ok(true)
    );

    // Sessions: ended long ago, ended at the cut-off, ended recently, open since long ago.
    for (contact, customer, ended_at) in [
        ("old-ended", "1", Some(100)),
        ("ended-at-cutoff", "2", Some(500)),
        ("new-ended", "3", Some(900)),
        ("old-open", "4", None),
    ] {
        let s = session("100", customer, contact, 10);
        assert_eq!(store.insert_session(&s).await, Ok(SessionInsert::Inserted));
        if let Some(at) = ended_at {
            assert_eq!(store.end_session(&cid(contact), at).await, Ok(true));
        }
    }

    // Profiles: expired before now, expiring exactly now, fresh.
    assert_eq!(
        store.cache_profile(&full_profile("1", "a"), 400).await,
        Ok(())
    );
    assert_eq!(
        store.cache_profile(&full_profile("2", "b"), 1_000).await,
        Ok(())
    );
    assert_eq!(
        store.cache_profile(&full_profile("3", "c"), 2_000).await,
        Ok(())
    );
    assert!(matches!(
        store.cached_profile(&uid("1"), 0).await,
        Ok(Some(_))
    ));

    // 2 jobs + 1 session + 2 profiles.
    assert_eq!(store.purge(500, 500, 1_000).await, Ok(5));

    for gone in ["old-done", "old-failed"] {
        assert_eq!(store.job(IN, &k(gone)).await, Ok(None), "{gone}");
    }
    for kept in ["done-at-cutoff", "new-done", "old-processing"] {
        assert!(
            matches!(store.job(IN, &k(kept)).await, Ok(Some(_))),
            "{kept}"
        );
    }
    assert_eq!(
        store.job(IN, &k("old-pending")).await,
        Ok(Some(stored(&open[0])))
    );

    assert_eq!(
        store.session_by_initial_contact(&cid("old-ended")).await,
        Ok(None)
    );
    for kept in ["ended-at-cutoff", "new-ended", "old-open"] {
        assert!(
            matches!(
                store.session_by_initial_contact(&cid(kept)).await,
                Ok(Some(_))
            ),
            "{kept}"
        );
    }
    assert_eq!(
        store.open_session(&uid("100"), &uid("4")).await,
        Ok(Some(session("100", "4", "old-open", 10)))
    );

    assert_eq!(store.cached_profile(&uid("1"), 0).await, Ok(None));
    assert_eq!(store.cached_profile(&uid("2"), 0).await, Ok(None));
    assert_eq!(
        store.cached_profile(&uid("3"), 1_000).await,
        Ok(Some(full_profile("3", "c")))
    );

    // Nothing left to purge at the same cut-offs.
    assert_eq!(store.purge(500, 500, 1_000).await, Ok(0));
    // Deduplication lasts as long as the retention: a purged key is new again.
    assert_eq!(
        store.enqueue(&[job_in("old-done", "old-done", 1)]).await,
        Ok(vec![true])
    );
}
