//! The profile cache: one item per X user in the `profiles` table, with its expiry.

use xdm_core::ids::XUserId;
use xdm_core::ports::StoreError;
use xdm_core::profile::XProfile;

use super::items::{USER_ID, key_of, profile_from_item, profile_item};
use super::store::DynamoStore;

pub(super) async fn cached_profile(
    store: &DynamoStore,
    id: &XUserId,
    now_ms: i64,
) -> Result<Option<XProfile>, StoreError> {
    let item = store
        .calls
        .get(
            "cached_profile",
            &store.tables.profiles,
            key_of(USER_ID, id.as_str()),
        )
        .await?;
    let Some(item) = item else {
        return Ok(None);
    };
    let (profile, expires_at_ms) = profile_from_item(id, &item)?;
    Ok((expires_at_ms > now_ms).then_some(profile))
}

pub(super) async fn cache_profile(
    store: &DynamoStore,
    profile: &XProfile,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    store
        .calls
        .put(
            "cache_profile",
            &store.tables.profiles,
            profile_item(profile, expires_at_ms)?,
        )
        .await
}
