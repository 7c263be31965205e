use std::future::Future;
use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinSet;
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::session::{Session, SessionStatus};

use crate::backends::Fresh;
use crate::fixtures::{cid, connection, session, uid};

pub async fn sessions_insert_then_find<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let s = session("100", "200", "contact-1", 1_000);
    assert_eq!(store.insert_session(&s).await, Ok(SessionInsert::Inserted));

    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(s.clone()))
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(s.clone()))
    );
    // Neither the swapped pair, nor another customer, nor another contact.
    assert_eq!(store.open_session(&uid("200"), &uid("100")).await, Ok(None));
    assert_eq!(store.open_session(&uid("100"), &uid("201")).await, Ok(None));
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-2")).await,
        Ok(None)
    );
}

pub async fn sessions_second_open_is_refused<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let first = session("100", "200", "contact-1", 1_000);
    let second = session("100", "200", "contact-2", 1_001);
    assert_eq!(
        store.insert_session(&first).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(
        store.insert_session(&second).await,
        Ok(SessionInsert::OpenExists(first.clone()))
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-2")).await,
        Ok(None)
    );

    // Live counts as open too, and the answer is the stored (live) session.
    let conn = connection("conn-1", Some(90_000));
    assert_eq!(
        store
            .set_session_connection(&cid("contact-1"), &conn, 2_000)
            .await,
        Ok(())
    );
    let live = Session {
        connection: Some(conn),
        status: SessionStatus::Live,
        updated_at_ms: 2_000,
        ..first.clone()
    };
    let third = session("100", "200", "contact-3", 3_000);
    assert_eq!(
        store.insert_session(&third).await,
        Ok(SessionInsert::OpenExists(live.clone()))
    );
    // A retry inserting the very same session gets the stored one back.
    assert_eq!(
        store.insert_session(&first).await,
        Ok(SessionInsert::OpenExists(live.clone()))
    );

    // Other pairs are independent.
    let other_customer = session("100", "201", "contact-4", 3_000);
    let other_business = session("101", "200", "contact-5", 3_000);
    assert_eq!(
        store.insert_session(&other_customer).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(
        store.insert_session(&other_business).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(live))
    );
    assert_eq!(
        store.open_session(&uid("101"), &uid("200")).await,
        Ok(Some(other_business))
    );
}

pub async fn sessions_end_then_reopen<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let first = session("100", "200", "contact-1", 1_000);
    assert_eq!(
        store.insert_session(&first).await,
        Ok(SessionInsert::Inserted)
    );

    assert_eq!(store.end_session(&cid("contact-1"), 2_000).await, Ok(true));
    assert_eq!(store.end_session(&cid("contact-1"), 2_500).await, Ok(false));
    assert_eq!(store.end_session(&cid("unknown"), 2_500).await, Ok(false));

    let ended = Session {
        status: SessionStatus::Ended,
        updated_at_ms: 2_000,
        ..first.clone()
    };
    assert_eq!(store.open_session(&uid("100"), &uid("200")).await, Ok(None));
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(ended.clone()))
    );

    let second = session("100", "200", "contact-2", 3_000);
    assert_eq!(
        store.insert_session(&second).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(second.clone()))
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(ended.clone()))
    );

    // The ended contact cannot come back: while the pair has an open session, that one answers…
    assert_eq!(
        store.insert_session(&first).await,
        Ok(SessionInsert::OpenExists(second.clone()))
    );
    // …and without one, reinserting the ended contact is refused as an error.
    assert_eq!(store.end_session(&cid("contact-2"), 4_000).await, Ok(true));
    assert!(
        matches!(
            store.insert_session(&first).await,
            Err(StoreError::Corrupt(_))
        ),
        "reinserting an ended contact must fail"
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(ended))
    );
    assert_eq!(store.open_session(&uid("100"), &uid("200")).await, Ok(None));
}

pub async fn sessions_set_connection<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let s = session("100", "200", "contact-1", 1_000);
    assert_eq!(store.insert_session(&s).await, Ok(SessionInsert::Inserted));

    let c1 = connection("conn-1", Some(99_000));
    assert_eq!(
        store
            .set_session_connection(&cid("contact-1"), &c1, 2_000)
            .await,
        Ok(())
    );
    let live = Session {
        connection: Some(c1),
        status: SessionStatus::Live,
        updated_at_ms: 2_000,
        ..s.clone()
    };
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(live.clone()))
    );
    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(live.clone()))
    );

    // A refreshed token replaces the old one; an unknown expiry is kept as unknown.
    let c2 = connection("conn-2", None);
    assert_eq!(
        store
            .set_session_connection(&cid("contact-1"), &c2, 3_000)
            .await,
        Ok(())
    );
    let refreshed = Session {
        connection: Some(c2),
        updated_at_ms: 3_000,
        ..live.clone()
    };
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(refreshed.clone()))
    );

    // Unknown contact: nothing happens, nothing is created.
    assert_eq!(
        store
            .set_session_connection(&cid("unknown"), &connection("x", None), 3_000)
            .await,
        Ok(())
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("unknown")).await,
        Ok(None)
    );

    // An ended session records the connection but stays ended.
    assert_eq!(store.end_session(&cid("contact-1"), 4_000).await, Ok(true));
    let c3 = connection("conn-3", Some(120_000));
    assert_eq!(
        store
            .set_session_connection(&cid("contact-1"), &c3, 5_000)
            .await,
        Ok(())
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(Session {
            connection: Some(c3),
            status: SessionStatus::Ended,
            updated_at_ms: 5_000,
            ..refreshed
        }))
    );
    assert_eq!(store.open_session(&uid("100"), &uid("200")).await, Ok(None));
}

pub async fn sessions_ended_rows_do_not_hold_the_pair<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    // Many ended sessions of one pair coexist (a customer's chat history)…
    for i in 0..3 {
        let s = session("100", "200", &format!("old-{i}"), i);
        assert_eq!(store.insert_session(&s).await, Ok(SessionInsert::Inserted));
        assert_eq!(
            store.end_session(&s.initial_contact_id, 10 + i).await,
            Ok(true)
        );
    }
    // …an ended session may be inserted as such…
    let archived = Session {
        status: SessionStatus::Ended,
        ..session("100", "200", "archived", 20)
    };
    assert_eq!(
        store.insert_session(&archived).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(store.open_session(&uid("100"), &uid("200")).await, Ok(None));
    // …and none of them blocks the open one.
    let open = session("100", "200", "current", 30);
    assert_eq!(
        store.insert_session(&open).await,
        Ok(SessionInsert::Inserted)
    );
    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(open.clone()))
    );
    // Inserting an ended session while one is open is answered like any other insert.
    let late = Session {
        status: SessionStatus::Ended,
        ..session("100", "200", "late", 40)
    };
    assert_eq!(
        store.insert_session(&late).await,
        Ok(SessionInsert::OpenExists(open))
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("late")).await,
        Ok(None)
    );
    assert_eq!(
        store.session_by_initial_contact(&cid("archived")).await,
        Ok(Some(archived))
    );
}

/// An initial contact id belongs to one session: reusing it for another pair is an error, not
/// a second row (and not the other customer's session).
pub async fn sessions_contact_id_is_unique<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let a = session("100", "200", "contact-1", 1_000);
    assert_eq!(store.insert_session(&a).await, Ok(SessionInsert::Inserted));
    let b = session("100", "300", "contact-1", 2_000);
    assert!(
        matches!(store.insert_session(&b).await, Err(StoreError::Corrupt(_))),
        "a contact id reused for another customer must fail"
    );
    assert_eq!(store.open_session(&uid("100"), &uid("300")).await, Ok(None));
    assert_eq!(
        store.session_by_initial_contact(&cid("contact-1")).await,
        Ok(Some(a))
    );
}

/// 20 workers open the first chat of one customer at once: one wins, the 19 others are told
/// about the winner. The backend decides, not a lock in the caller.
pub async fn sessions_insert_race<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    const RACERS: usize = 20;
    let store = fresh().await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for i in 0..RACERS {
        let store = store.shared();
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let s = session("100", "200", &format!("racer-{i:02}"), 1_000 + i as i64);
            barrier.wait().await;
            let outcome = store.insert_session(&s).await;
            (s, outcome)
        });
    }
    let mut winners = Vec::new();
    let mut told = Vec::new();
    let mut losers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (s, outcome) = joined.unwrap_or_else(|e| panic!("racer panicked: {e}"));
        match outcome {
            Ok(SessionInsert::Inserted) => winners.push(s),
            Ok(SessionInsert::OpenExists(existing)) => {
                told.push(existing);
                losers.push(s);
            }
            Err(e) => panic!("racer {} failed: {e}", s.initial_contact_id),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert wins: {winners:?}");
    assert_eq!(told.len(), RACERS - 1);
    let winner = winners.remove(0);
    for existing in &told {
        assert_eq!(existing, &winner);
    }
    assert_eq!(
        store.open_session(&uid("100"), &uid("200")).await,
        Ok(Some(winner))
    );
    for loser in losers {
        assert_eq!(
            store
                .session_by_initial_contact(&loser.initial_contact_id)
                .await,
            Ok(None)
        );
    }
}
