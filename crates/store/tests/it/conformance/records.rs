use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinSet;
use xdm_core::ports::{Expect, Record, Store};

use crate::backends::Fresh;

fn record(key: &str, value: &str, version: u64, updated_at_ms: i64) -> Record {
    Record {
        key: key.to_owned(),
        value: value.to_owned(),
        version,
        updated_at_ms,
    }
}

pub async fn records_absent_version_any<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    assert_eq!(store.record("a").await, Ok(None));

    // Expect::Version on a missing record writes nothing.
    assert_eq!(
        store.put_record("a", "v0", Expect::Version(1), 5).await,
        Ok(None)
    );
    assert_eq!(store.record("a").await, Ok(None));

    // Absent creates at version 1, once.
    assert_eq!(
        store.put_record("a", "v1", Expect::Absent, 10).await,
        Ok(Some(1))
    );
    assert_eq!(
        store.put_record("a", "other", Expect::Absent, 11).await,
        Ok(None)
    );
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v1", 1, 10))));

    // Version(n) applies only at exactly n and increments.
    assert_eq!(
        store.put_record("a", "stale", Expect::Version(0), 12).await,
        Ok(None)
    );
    assert_eq!(
        store.put_record("a", "stale", Expect::Version(2), 12).await,
        Ok(None)
    );
    assert_eq!(
        store.put_record("a", "v2", Expect::Version(1), 20).await,
        Ok(Some(2))
    );
    assert_eq!(
        store.put_record("a", "again", Expect::Version(1), 21).await,
        Ok(None)
    );
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v2", 2, 20))));
    assert_eq!(
        store
            .put_record("a", "huge", Expect::Version(u64::MAX), 22)
            .await,
        Ok(None)
    );

    // Any always applies: creates at 1 or increments.
    assert_eq!(
        store.put_record("a", "v3", Expect::Any, 30).await,
        Ok(Some(3))
    );
    assert_eq!(
        store.put_record("b", "b1", Expect::Any, 31).await,
        Ok(Some(1))
    );
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v3", 3, 30))));
    assert_eq!(store.record("b").await, Ok(Some(record("b", "b1", 1, 31))));

    // Versions keep increasing one by one.
    for (i, expected) in (4..=8).enumerate() {
        let at = 40 + i64::try_from(i).unwrap_or(0);
        assert_eq!(
            store
                .put_record(
                    "a",
                    &format!("v{expected}"),
                    Expect::Version(expected - 1),
                    at
                )
                .await,
            Ok(Some(expected))
        );
    }
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v8", 8, 44))));
}

/// `put_record_deferred` is the same compare-and-set as `put_record`, seen at once by the
/// process's later calls (whatever the backend defers).
pub async fn records_deferred_put_is_a_put<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    assert_eq!(
        store
            .put_record_deferred("a", "v0", Expect::Version(1), 5)
            .await,
        Ok(None)
    );
    assert_eq!(
        store
            .put_record_deferred("a", "v1", Expect::Absent, 10)
            .await,
        Ok(Some(1))
    );
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v1", 1, 10))));
    assert_eq!(
        store.put_record("a", "v2", Expect::Version(1), 20).await,
        Ok(Some(2))
    );
    assert_eq!(
        store
            .put_record_deferred("a", "stale", Expect::Version(1), 21)
            .await,
        Ok(None)
    );
    assert_eq!(
        store
            .put_record_deferred("a", "v3", Expect::Version(2), 30)
            .await,
        Ok(Some(3))
    );
    assert_eq!(
        store.put_record_deferred("a", "v4", Expect::Any, 40).await,
        Ok(Some(4))
    );
    assert_eq!(store.record("a").await, Ok(Some(record("a", "v4", 4, 40))));
    assert_eq!(store.delete_record("a", Expect::Version(4)).await, Ok(true));
    assert_eq!(store.record("a").await, Ok(None));
}

pub async fn records_delete_conditions<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    assert_eq!(store.delete_record("gone", Expect::Any).await, Ok(false));
    assert_eq!(
        store.delete_record("gone", Expect::Version(1)).await,
        Ok(false)
    );
    assert_eq!(store.delete_record("gone", Expect::Absent).await, Ok(false));

    assert_eq!(
        store.put_record("k", "v", Expect::Absent, 1).await,
        Ok(Some(1))
    );
    assert_eq!(
        store.put_record("k", "v", Expect::Version(1), 2).await,
        Ok(Some(2))
    );
    // Absent never deletes; a stale version does not either.
    assert_eq!(store.delete_record("k", Expect::Absent).await, Ok(false));
    assert_eq!(
        store.delete_record("k", Expect::Version(1)).await,
        Ok(false)
    );
    assert_eq!(
        store.delete_record("k", Expect::Version(u64::MAX)).await,
        Ok(false)
    );
    assert_eq!(store.record("k").await, Ok(Some(record("k", "v", 2, 2))));
    assert_eq!(store.delete_record("k", Expect::Version(2)).await, Ok(true));
    assert_eq!(store.record("k").await, Ok(None));
    assert_eq!(
        store.delete_record("k", Expect::Version(2)).await,
        Ok(false)
    );

    // A recreated record starts again at 1; Any deletes whatever the version.
    assert_eq!(
        store.put_record("k", "new", Expect::Absent, 3).await,
        Ok(Some(1))
    );
    assert_eq!(store.delete_record("k", Expect::Any).await, Ok(true));
    assert_eq!(store.delete_record("k", Expect::Any).await, Ok(false));
    assert_eq!(store.record("k").await, Ok(None));
}

pub async fn records_prefix_listing<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    assert_eq!(store.records("").await, Ok(Vec::new()));
    // Written out of order; listed by key (byte order).
    for key in [
        "x/oauth2/token/9",
        "x/oauth2/lease/1",
        "x/oauth2/token/10",
        "x/oauth2/token/1",
        "x/oauth2/tokens",
        "x/oauth2/token",
        "x/webhook",
        "y/oauth2/token/1",
        "x/oauth2/token/é",
        "x/oauth2/token%",
        "x/oauth2/token_",
    ] {
        assert_eq!(
            store.put_record(key, key, Expect::Absent, 1).await,
            Ok(Some(1)),
            "{key}"
        );
    }
    let keys =
        |records: Vec<Record>| -> Vec<String> { records.into_iter().map(|r| r.key).collect() };

    let tokens = store.records("x/oauth2/token/").await.map(keys);
    assert_eq!(
        tokens,
        Ok(vec![
            "x/oauth2/token/1".to_owned(),
            "x/oauth2/token/10".to_owned(),
            "x/oauth2/token/9".to_owned(),
            "x/oauth2/token/é".to_owned(),
        ])
    );
    // No pattern characters: `%` and `_` are literal.
    assert_eq!(
        store.records("x/oauth2/token%").await.map(keys),
        Ok(vec!["x/oauth2/token%".to_owned()])
    );
    assert_eq!(
        store.records("x/oauth2/token_").await.map(keys),
        Ok(vec!["x/oauth2/token_".to_owned()])
    );
    assert_eq!(
        store.records("x/oauth2/lease/").await.map(keys),
        Ok(vec!["x/oauth2/lease/1".to_owned()])
    );
    assert_eq!(store.records("z").await, Ok(Vec::new()));
    assert_eq!(
        store.records("x/webhook").await,
        Ok(vec![record("x/webhook", "x/webhook", 1, 1)])
    );

    let all = store.records("").await.map(keys);
    let mut sorted = all.clone().unwrap_or_default();
    sorted.sort();
    assert_eq!(all.as_ref().map(Vec::len), Ok(11));
    assert_eq!(all, Ok(sorted));

    // Deleted records leave the listing.
    assert_eq!(
        store.delete_record("x/oauth2/token/10", Expect::Any).await,
        Ok(true)
    );
    assert_eq!(
        store.records("x/oauth2/token/1").await.map(keys),
        Ok(vec!["x/oauth2/token/1".to_owned()])
    );
}

pub async fn records_values_round_trip<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    let store = fresh().await;
    let values = [
        "{\"access_token\":\"a\\\"b\",\"refresh_token\":\"r'é🌮\",\"expires_at_ms\":1}",
        "Élodie \"🌮\" O'Brien; DROP TABLE records; --",
        "line 1\nline 2\ttab \\ backslash",
        "x",
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("v/{i}/ü\"'");
        assert_eq!(
            store.put_record(&key, value, Expect::Absent, -5).await,
            Ok(Some(1))
        );
        assert_eq!(
            store.record(&key).await,
            Ok(Some(record(&key, value, 1, -5)))
        );
    }
    let long = "é".repeat(20_000);
    assert_eq!(
        store.put_record("long", &long, Expect::Any, 0).await,
        Ok(Some(1))
    );
    assert_eq!(
        store.record("long").await.map(|r| r.map(|r| r.value)),
        Ok(Some(long))
    );
}

/// Many writers read the same version and write with `Expect::Version`: exactly one wins each
/// round, and the versions it reports are the rounds.
pub async fn records_concurrent_writers<S: Store, F: Future<Output = Fresh<S>>>(
    fresh: impl Fn() -> F,
) {
    const WRITERS: usize = 12;
    const ROUNDS: u64 = 4;
    let store = fresh().await;
    assert_eq!(
        store.put_record("cas", "start", Expect::Absent, 0).await,
        Ok(Some(1))
    );
    for round in 1..=ROUNDS {
        let mut tasks = JoinSet::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        for writer in 0..WRITERS {
            let store = store.shared();
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                let value = format!("round {round} writer {writer}");
                let won = store
                    .put_record("cas", &value, Expect::Version(round), 0)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                won.map(|version| (version, value))
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Some(won) = result.unwrap_or_else(|e| panic!("{e}")) {
                winners.push(won);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (version, value) = winners.remove(0);
        assert_eq!(version, round + 1);
        assert_eq!(
            store.record("cas").await,
            Ok(Some(record("cas", &value, round + 1, 0)))
        );
    }

    // Racing creators: one Absent put wins.
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = store.shared();
        tasks.spawn(async move {
            store
                .put_record("new", &writer.to_string(), Expect::Absent, 0)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        });
    }
    let mut created = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap_or_else(|e| panic!("{e}")).is_some() {
            created += 1;
        }
    }
    assert_eq!(created, 1);

    // Racing deleters of one version: one wins.
    let mut tasks = JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.shared();
        tasks.spawn(async move {
            store
                .delete_record("new", Expect::Version(1))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        });
    }
    let mut deleted = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap_or_else(|e| panic!("{e}")) {
            deleted += 1;
        }
    }
    assert_eq!(deleted, 1);
    assert_eq!(store.record("new").await, Ok(None));
}
