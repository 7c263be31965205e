//! The profile cache: the `profiles` table, one row per X user with its expiry.

use rusqlite::{OptionalExtension, params};
use xdm_core::ids::XUserId;
use xdm_core::ports::StoreError;
use xdm_core::profile::XProfile;

use super::rows::{profile_from_json, profile_to_json};
use super::store::SqliteStore;

pub(super) const SQL_CACHED_PROFILE: &str =
    "SELECT profile FROM profiles WHERE user_id = ?1 AND expires_at_ms > ?2";

pub(super) const SQL_CACHE_PROFILE: &str = "INSERT INTO profiles (user_id, profile, expires_at_ms) VALUES (?1, ?2, ?3) \
     ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile, expires_at_ms = excluded.expires_at_ms";

pub(super) async fn cached_profile(
    store: &SqliteStore,
    id: &XUserId,
    now_ms: i64,
) -> Result<Option<XProfile>, StoreError> {
    let id = id.clone();
    store
        .worker
        .read("cached_profile", move |conn| {
            let json: Option<String> = conn
                .prepare_cached(SQL_CACHED_PROFILE)?
                .query_row(params![id.as_str(), now_ms], |row| row.get(0))
                .optional()?;
            json.map(|json| profile_from_json(&id, &json)).transpose()
        })
        .await
}

pub(super) async fn cache_profile(
    store: &SqliteStore,
    profile: &XProfile,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    let profile = profile.clone();
    store
        .worker
        .write("cache_profile", move |conn| {
            let json = profile_to_json(&profile)?;
            conn.prepare_cached(SQL_CACHE_PROFILE)?.execute(params![
                profile.id.as_str(),
                json,
                expires_at_ms
            ])?;
            Ok(())
        })
        .await
}
