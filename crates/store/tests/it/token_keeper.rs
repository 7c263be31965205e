//! The OAuth 2.0 token keeper's lease across processes: two `SqliteStore`s opened on one file
//! (as two processes would), a keeper on each, racing for a token near its expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use xdm_core::ports::{RefreshError, Store, SystemClock, TokenGrant, TokenRefresher};
use xdm_core::x_tokens::{LEASE_KEY_PREFIX, TokenKeeper};
use xdm_store::SqliteStore;

use crate::fixtures::uid;

/// Single-use refresh tokens, like X: a second refresh with the same token is refused.
#[derive(Debug, Clone, Default)]
struct CountingX {
    calls: Arc<AtomicUsize>,
}

impl TokenRefresher for CountingX {
    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant, RefreshError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if refresh_token != "rt-0" {
            return Err(RefreshError::Rejected(format!(
                "invalid_grant: {refresh_token} is spent"
            )));
        }
        Ok(TokenGrant {
            access_token: format!("at-{n}"),
            refresh_token: Some(format!("rt-{n}")),
            expires_in_s: Some(7_200),
            scope: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_sqlite_file_refresh_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tokens.db");
    let open = || async {
        Arc::new(
            SqliteStore::open(&path)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let (one, two) = (open().await, open().await);
    let x = CountingX::default();
    let keeper = |store: &Arc<SqliteStore>, holder: &str| {
        Arc::new(
            TokenKeeper::new(Arc::clone(store), x.clone(), SystemClock, holder.to_owned())
                .with_poll(Duration::from_millis(20)),
        )
    };
    let (a, b) = (keeper(&one, "proc-a"), keeper(&two, "proc-b"));
    let business = uid("1500");
    // A one-second token is within its refresh margin at once.
    a.store_login(
        &business,
        TokenGrant {
            access_token: "at-0".into(),
            refresh_token: Some("rt-0".into()),
            expires_in_s: Some(1),
            scope: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let k = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        let business = business.clone();
        tasks.spawn(async move {
            match k.access_token(&business).await {
                Ok(Some(t)) => t.expose().to_owned(),
                other => panic!("{other:?}"),
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        assert_eq!(t.unwrap_or_else(|e| panic!("{e}")), "at-1");
    }
    assert_eq!(x.calls.load(Ordering::SeqCst), 1);
    assert_eq!(two.records(LEASE_KEY_PREFIX).await, Ok(Vec::new()));
    let stored = one
        .record("x/oauth2/token/1500")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no token record"));
    assert!(stored.value.contains("\"refresh_token\":\"rt-1\""));
    assert_eq!(a.accounts().await, Ok(vec![business]));
}
