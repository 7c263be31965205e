use std::future::Future;

use xdm_core::ports::Store;
use xdm_core::profile::XProfile;

use crate::backends::Fresh;
use crate::fixtures::{full_profile, uid};

pub async fn profiles_ttl<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let p = full_profile("42", "Elizabeth Fuentes");
    assert_eq!(store.cache_profile(&p, 1_000).await, Ok(()));

    assert_eq!(
        store.cached_profile(&uid("42"), 0).await,
        Ok(Some(p.clone()))
    );
    assert_eq!(
        store.cached_profile(&uid("42"), 999).await,
        Ok(Some(p.clone()))
    );
    // Expired at and after `expires_at_ms`.
    assert_eq!(store.cached_profile(&uid("42"), 1_000).await, Ok(None));
    assert_eq!(store.cached_profile(&uid("42"), 5_000).await, Ok(None));
    assert_eq!(store.cached_profile(&uid("43"), 0).await, Ok(None));

    // Re-caching replaces the profile and its expiry.
    let renamed = full_profile("42", "Eli F.");
    assert_eq!(store.cache_profile(&renamed, 3_000).await, Ok(()));
    assert_eq!(
        store.cached_profile(&uid("42"), 1_000).await,
        Ok(Some(renamed.clone()))
    );
    assert_eq!(
        store.cached_profile(&uid("42"), 2_999).await,
        Ok(Some(renamed.clone()))
    );
    assert_eq!(store.cached_profile(&uid("42"), 3_000).await, Ok(None));
    // Also when the new expiry is earlier.
    assert_eq!(store.cache_profile(&renamed, 1_500).await, Ok(()));
    assert_eq!(store.cached_profile(&uid("42"), 2_000).await, Ok(None));

    // Purge removes what expired by `now`, keeps the rest.
    let other = full_profile("43", "Other");
    assert_eq!(store.cache_profile(&other, 10_000).await, Ok(()));
    assert_eq!(store.purge(i64::MIN, i64::MIN, 2_000).await, Ok(1));
    assert_eq!(store.cached_profile(&uid("42"), 0).await, Ok(None));
    assert_eq!(
        store.cached_profile(&uid("43"), 9_999).await,
        Ok(Some(other))
    );
}

pub async fn profiles_round_trip<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F) {
    let store = fresh().await;
    let unknown = XProfile::unknown(uid("7"));
    let full = XProfile {
        verified: Some(true),
        followers_count: Some(0),
        ..full_profile("1234567890123456789", "Élodie \"🌮\" O'Brien")
    };
    assert_eq!(store.cache_profile(&unknown, 100).await, Ok(()));
    assert_eq!(store.cache_profile(&full, 100).await, Ok(()));
    assert_eq!(store.cached_profile(&uid("7"), 99).await, Ok(Some(unknown)));
    assert_eq!(
        store.cached_profile(&uid("1234567890123456789"), 99).await,
        Ok(Some(full))
    );
}
