//! The OAuth 2.0 user tokens of X business accounts: kept in the store, refreshed before they
//! expire, one refresher at a time across every process that shares the store.
//!
//! X's access tokens live two hours and its refresh tokens are single-use: a refresh answers a
//! new pair and spends the old refresh token. Two processes refreshing with the same refresh
//! token would lose the account (the second is refused, and the first one's answer is the only
//! valid token), so [`TokenKeeper`] follows these rules:
//!
//! * the token of an account is the record `x/oauth2/token/<business id>` (JSON; the secrets are
//!   only ever in that value, never in logs);
//! * **one refresher at a time**: a process refreshes only while it holds the lease record
//!   `x/oauth2/lease/<business id>` (`{holder, until_ms}`), taken with a compare-and-set. A
//!   process that does not get it waits for the token record's version to change and uses the
//!   new token; after taking the lease, the token is read again, and not refreshed if another
//!   process already did;
//! * **the new refresh token is durable before the old one is forgotten**: the grant is written
//!   (compare-and-set on the version read) right after the refresh returns; a failing write is
//!   retried with backoff and, if the store stays down, the grant is kept in memory and written
//!   by the next call — it is never dropped;
//! * a refused refresh (`invalid_grant`, revoked) marks the record `needs_login`, and every
//!   caller gets [`TokenError::NeedsLogin`] until `xdm-connect x login` stores a new grant; an
//!   unreachable token endpoint is [`TokenError::Unavailable`] once the token has really expired
//!   (until then the current token is used);
//! * in one process, the calls for one account share one refresh (a per-account async mutex),
//!   and a token that is not near its expiry is answered from memory, without a store read.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::XUserId;
use crate::metric_names::TOKEN_REFRESHES;
use crate::ports::{
    Clock, Expect, Record, RefreshError, Store, StoreError, TokenGrant, TokenRefresher,
};

/// Key prefix of the token records (`x/oauth2/token/<business id>`).
pub const TOKEN_KEY_PREFIX: &str = "x/oauth2/token/";
/// Key prefix of the refresh leases (`x/oauth2/lease/<business id>`).
pub const LEASE_KEY_PREFIX: &str = "x/oauth2/lease/";

/// X's access-token lifetime, assumed when the token endpoint does not say (`expires_in`).
const DEFAULT_LIFETIME_MS: i64 = 7_200_000;
const MIN_MARGIN_MS: i64 = 1_000;
const MAX_MARGIN_MS: i64 = 300_000;
/// Writes of a refreshed grant tried in one call before it is kept in memory for the next.
const WRITE_ATTEMPTS: u32 = 5;
const WRITE_BACKOFF: Duration = Duration::from_millis(100);
/// After the token endpoint was unreachable, no new attempt for this long while the current
/// token still works.
const UNAVAILABLE_PAUSE_MS: i64 = 5_000;

/// An OAuth 2.0 access token (a bearer secret): only for the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessTokenValue(String);

impl AccessTokenValue {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The token itself: only for the wire, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessTokenValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessTokenValue(…)")
    }
}

/// Why no access token could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// X refused the refresh token (or there is none left to use): only a new login helps.
    #[error(
        "the OAuth 2.0 token of the X account {business} cannot be refreshed ({reason}); run `xdm-connect x login` for that account"
    )]
    NeedsLogin { business: XUserId, reason: String },
    /// The token endpoint could not be reached and the token has expired; try again later.
    #[error("no valid OAuth 2.0 token for now: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One stored account, for `/healthz` and `doctor` (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub business: XUserId,
    /// When the stored access token expires.
    pub expires_at_ms: i64,
    /// When the stored grant was obtained (login or refresh).
    pub obtained_at_ms: i64,
    pub scope: Option<String>,
    /// Whether a refresh token is stored (the `offline.access` scope).
    pub refreshable: bool,
    /// `Some(reason)`: the account needs `xdm-connect x login`.
    pub needs_login: Option<String>,
}

/// The JSON value of a token record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    refresh_token: Option<String>,
    expires_at_ms: i64,
    scope: Option<String>,
    obtained_at_ms: i64,
    #[serde(default)]
    needs_login: Option<String>,
}

impl StoredToken {
    fn from_grant(grant: TokenGrant, now_ms: i64, previous_refresh: Option<String>) -> Self {
        let lifetime_ms = grant
            .expires_in_s
            .filter(|s| *s > 0)
            .map_or(DEFAULT_LIFETIME_MS, |s| s.saturating_mul(1000));
        Self {
            access_token: grant.access_token,
            // X always rotates; should it not answer one, the old one is all there is.
            refresh_token: grant.refresh_token.or(previous_refresh),
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
            scope: grant.scope,
            obtained_at_ms: now_ms,
            needs_login: None,
        }
    }

    /// Refresh when less than this remains: a quarter of the lifetime, between 1 s and 5 min.
    fn margin_ms(&self) -> i64 {
        let lifetime = self.expires_at_ms.saturating_sub(self.obtained_at_ms);
        (lifetime / 4).clamp(MIN_MARGIN_MS, MAX_MARGIN_MS)
    }

    fn near_expiry(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms.saturating_sub(self.margin_ms())
    }

    fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }

    fn value(&self) -> AccessTokenValue {
        AccessTokenValue::new(self.access_token.clone())
    }

    fn encode(&self) -> Result<String, StoreError> {
        serde_json::to_string(self)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode an OAuth 2.0 token: {e}")))
    }

    fn decode(record: &Record) -> Result<Self, StoreError> {
        // The error names the key only: serde's message could quote the value.
        serde_json::from_str(&record.value).map_err(|e| {
            StoreError::Corrupt(format!(
                "the record {} is not an OAuth 2.0 token (line {}, column {})",
                record.key,
                e.line(),
                e.column()
            ))
        })
    }
}

/// The JSON value of a lease record.
#[derive(Serialize, Deserialize)]
struct LeaseValue {
    holder: String,
    until_ms: i64,
}

/// What makes a stored token need a refresh.
#[derive(Clone, Copy)]
enum Stale<'a> {
    /// Within the margin of its expiry.
    NearExpiry,
    /// X refused this access token (or it is near expiry).
    Rejected(&'a str),
}

impl Stale<'_> {
    fn holds(self, token: &StoredToken, now_ms: i64) -> bool {
        match self {
            Stale::NearExpiry => token.near_expiry(now_ms),
            Stale::Rejected(rejected) => {
                token.access_token == rejected || token.near_expiry(now_ms)
            }
        }
    }
}

/// A refreshed grant whose write has not succeeded yet: the only copy of the new refresh token.
struct Unsaved {
    token: StoredToken,
    /// The version it replaces.
    base_version: u64,
    /// The refresh token it was obtained with (spent).
    spent: Option<String>,
}

/// What one process knows of one account.
#[derive(Default)]
struct Slot {
    /// The last token read or written, with its record version.
    cached: Option<(u64, StoredToken)>,
    unsaved: Option<Unsaved>,
    /// No refresh before this (the token endpoint was unavailable).
    pause_until_ms: i64,
}

/// Keeps the OAuth 2.0 tokens of the business accounts (see the module documentation).
pub struct TokenKeeper<S, R, K> {
    store: Arc<S>,
    refresher: R,
    clock: K,
    holder: String,
    lease_ms: i64,
    poll: Duration,
    slots: Mutex<HashMap<XUserId, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl<S, R, K> fmt::Debug for TokenKeeper<S, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeeper")
            .field("holder", &self.holder)
            .field("lease_ms", &self.lease_ms)
            .finish_non_exhaustive()
    }
}

fn token_key(business: &XUserId) -> String {
    format!("{TOKEN_KEY_PREFIX}{business}")
}

fn lease_key(business: &XUserId) -> String {
    format!("{LEASE_KEY_PREFIX}{business}")
}

impl<S: Store, R: TokenRefresher, K: Clock> TokenKeeper<S, R, K> {
    /// `holder`: this process's id (unique per process, for the lease). Refreshes when less
    /// than a quarter of the token's lifetime remains (between 1 s and 5 min); the lease lasts
    /// 30 s.
    pub fn new(store: Arc<S>, refresher: R, clock: K, holder: String) -> Self {
        Self {
            store,
            refresher,
            clock,
            holder,
            lease_ms: 30_000,
            poll: Duration::from_millis(50),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// How long a refresher holds the lease (a process that dies while refreshing blocks the
    /// others this long at most).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// How often a process waiting for another one's refresh reads the token record again.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn slot(&self, business: &XUserId) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(business.clone()).or_default())
    }

    /// Stores the grant of a fresh login (`xdm-connect x login`) for `business`, replacing any
    /// token (and clearing a `NeedsLogin` state).
    pub async fn store_login(
        &self,
        business: &XUserId,
        grant: TokenGrant,
    ) -> Result<(), TokenError> {
        let slot = self.slot(business);
        let mut slot = slot.lock().await;
        let now = self.clock.now_ms();
        let token = StoredToken::from_grant(grant, now, None);
        let version = self
            .store
            .put_record(&token_key(business), &token.encode()?, Expect::Any, now)
            .await?
            .ok_or_else(|| {
                StoreError::Unavailable("an unconditional record write was refused".into())
            })?;
        tracing::info!(%business, expires_at_ms = token.expires_at_ms,
            refreshable = token.refresh_token.is_some(), "X OAuth 2.0 login stored");
        *slot = Slot {
            cached: Some((version, token)),
            ..Slot::default()
        };
        Ok(())
    }

    /// A valid access token for `business`: the stored one while it is not within the margin
    /// of expiry, else refreshed. `Ok(None)`: no OAuth 2.0 token stored for this account.
    pub async fn access_token(
        &self,
        business: &XUserId,
    ) -> Result<Option<AccessTokenValue>, TokenError> {
        self.get(business, Stale::NearExpiry).await
    }

    /// X answered 401 to `rejected`: refreshes now unless another process (or call) already
    /// replaced it; returns the token to retry with.
    pub async fn token_rejected(
        &self,
        business: &XUserId,
        rejected: &str,
    ) -> Result<Option<AccessTokenValue>, TokenError> {
        self.get(business, Stale::Rejected(rejected)).await
    }

    /// Per stored account: expiry, whether it needs a new login and why (no secrets).
    pub async fn status(&self) -> Result<Vec<TokenStatus>, TokenError> {
        let mut out = Vec::new();
        for record in self.store.records(TOKEN_KEY_PREFIX).await? {
            let Some(business) = business_of(&record.key) else {
                continue;
            };
            let token = StoredToken::decode(&record)?;
            out.push(TokenStatus {
                business,
                expires_at_ms: token.expires_at_ms,
                obtained_at_ms: token.obtained_at_ms,
                scope: token.scope,
                refreshable: token.refresh_token.is_some(),
                needs_login: token.needs_login,
            });
        }
        Ok(out)
    }

    /// The business accounts that have an OAuth 2.0 token stored.
    pub async fn accounts(&self) -> Result<Vec<XUserId>, TokenError> {
        Ok(self
            .store
            .records(TOKEN_KEY_PREFIX)
            .await?
            .iter()
            .filter_map(|r| business_of(&r.key))
            .collect())
    }

    async fn get(
        &self,
        business: &XUserId,
        stale: Stale<'_>,
    ) -> Result<Option<AccessTokenValue>, TokenError> {
        let slot = self.slot(business);
        let mut slot = slot.lock().await;
        if slot.unsaved.is_some() {
            self.save_unsaved(business, &mut slot).await;
        }
        let now = self.clock.now_ms();
        // From memory while it is fresh: no store read per call.
        if let Some((_, token)) = &slot.cached
            && token.needs_login.is_none()
            && !stale.holds(token, now)
        {
            return Ok(Some(token.value()));
        }
        if let Some(unsaved) = &slot.unsaved {
            // The store is down and holds a spent refresh token: the grant in memory is it.
            if !stale.holds(&unsaved.token, now) {
                return Ok(Some(unsaved.token.value()));
            }
            return Err(TokenError::Unavailable(
                "the store cannot save the refreshed OAuth 2.0 token".into(),
            ));
        }
        let Some((version, token)) = self.read(business).await? else {
            slot.cached = None;
            return Ok(None);
        };
        slot.cached = Some((version, token.clone()));
        if let Some(reason) = token.needs_login {
            return Err(TokenError::NeedsLogin {
                business: business.clone(),
                reason,
            });
        }
        if !stale.holds(&token, now) {
            return Ok(Some(token.value()));
        }
        if now < slot.pause_until_ms && !token.expired(now) && matches!(stale, Stale::NearExpiry) {
            return Ok(Some(token.value()));
        }
        self.refresh_shared(business, stale, version, &mut slot)
            .await
    }

    async fn read(&self, business: &XUserId) -> Result<Option<(u64, StoredToken)>, TokenError> {
        match self.store.record(&token_key(business)).await? {
            Some(record) => Ok(Some((record.version, StoredToken::decode(&record)?))),
            None => Ok(None),
        }
    }

    /// Refreshes under the lease, or waits for the process that holds it.
    async fn refresh_shared(
        &self,
        business: &XUserId,
        stale: Stale<'_>,
        mut seen_version: u64,
        slot: &mut Slot,
    ) -> Result<Option<AccessTokenValue>, TokenError> {
        let give_up_at = self
            .clock
            .now_ms()
            .saturating_add(self.lease_ms.saturating_mul(3));
        loop {
            let now = self.clock.now_ms();
            if now > give_up_at {
                return Err(TokenError::Unavailable(format!(
                    "another process kept refreshing the OAuth 2.0 token of {business} for too long"
                )));
            }
            let held_until = match self.take_lease(business, now).await? {
                Ok(lease_version) => {
                    let result = self.refresh_leased(business, stale, slot).await;
                    self.release_lease(business, lease_version).await;
                    return result;
                }
                Err(held_until) => held_until,
            };
            // Another process refreshes: wait for its write (or for its lease to run out).
            let wait_until = held_until.min(now.saturating_add(self.lease_ms));
            loop {
                tokio::time::sleep(self.poll).await;
                let now = self.clock.now_ms();
                let Some((version, token)) = self.read(business).await? else {
                    slot.cached = None;
                    return Ok(None);
                };
                if version != seen_version {
                    seen_version = version;
                    slot.cached = Some((version, token.clone()));
                    if let Some(reason) = token.needs_login {
                        return Err(TokenError::NeedsLogin {
                            business: business.clone(),
                            reason,
                        });
                    }
                    if !stale.holds(&token, now) {
                        return Ok(Some(token.value()));
                    }
                }
                if now >= wait_until {
                    break;
                }
            }
        }
    }

    /// `Ok(Ok(lease version))`: taken; `Ok(Err(until_ms))`: another holder has it until then.
    async fn take_lease(
        &self,
        business: &XUserId,
        now: i64,
    ) -> Result<Result<u64, i64>, TokenError> {
        let key = lease_key(business);
        let value = serde_json::to_string(&LeaseValue {
            holder: self.holder.clone(),
            until_ms: now.saturating_add(self.lease_ms),
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a lease: {e}")))?;
        let expect = match self.store.record(&key).await? {
            None => Expect::Absent,
            Some(current) => match serde_json::from_str::<LeaseValue>(&current.value) {
                Ok(lease) if lease.holder != self.holder && lease.until_ms > now => {
                    return Ok(Err(lease.until_ms));
                }
                // Expired, ours (a call of ours that died mid-refresh), or unreadable.
                _ => Expect::Version(current.version),
            },
        };
        match self.store.put_record(&key, &value, expect, now).await? {
            Some(version) => Ok(Ok(version)),
            // Someone took it in between: wait for them like for any holder.
            None => Ok(Err(now.saturating_add(self.lease_ms))),
        }
    }

    async fn release_lease(&self, business: &XUserId, version: u64) {
        if let Err(e) = self
            .store
            .delete_record(&lease_key(business), Expect::Version(version))
            .await
        {
            // It runs out on its own.
            tracing::warn!(%business, error = %e, "cannot release the OAuth 2.0 refresh lease");
        }
    }

    /// Holding the lease: reads the token again and refreshes it unless someone already did.
    async fn refresh_leased(
        &self,
        business: &XUserId,
        stale: Stale<'_>,
        slot: &mut Slot,
    ) -> Result<Option<AccessTokenValue>, TokenError> {
        let Some((version, token)) = self.read(business).await? else {
            slot.cached = None;
            return Ok(None);
        };
        slot.cached = Some((version, token.clone()));
        if let Some(reason) = token.needs_login {
            return Err(TokenError::NeedsLogin {
                business: business.clone(),
                reason,
            });
        }
        let now = self.clock.now_ms();
        if !stale.holds(&token, now) {
            // Another process refreshed meanwhile.
            return Ok(Some(token.value()));
        }
        let Some(refresh_token) = token.refresh_token.clone() else {
            if !token.expired(now) && matches!(stale, Stale::NearExpiry) {
                return Ok(Some(token.value()));
            }
            let reason = "no refresh token is stored (the login lacked the offline.access scope)";
            metrics::counter!(TOKEN_REFRESHES, "result" => "no_refresh_token").increment(1);
            return Err(self
                .mark_needs_login(business, version, token, reason, slot)
                .await);
        };
        match self.refresher.refresh(&refresh_token).await {
            Ok(grant) => {
                let now = self.clock.now_ms();
                let fresh = StoredToken::from_grant(grant, now, Some(refresh_token.clone()));
                tracing::info!(%business, expires_at_ms = fresh.expires_at_ms,
                    "X OAuth 2.0 token refreshed");
                metrics::counter!(TOKEN_REFRESHES, "result" => "refreshed").increment(1);
                slot.pause_until_ms = 0;
                let value = fresh.value();
                slot.unsaved = Some(Unsaved {
                    token: fresh,
                    base_version: version,
                    spent: Some(refresh_token),
                });
                for attempt in 0..WRITE_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(WRITE_BACKOFF * 2_u32.pow(attempt - 1)).await;
                    }
                    if self.save_unsaved(business, slot).await {
                        break;
                    }
                }
                if slot.unsaved.is_some() {
                    tracing::error!(%business,
                        "the refreshed X OAuth 2.0 token could not be stored; it is kept in memory and stored by the next call");
                }
                Ok(Some(value))
            }
            Err(RefreshError::Rejected(reason)) => {
                metrics::counter!(TOKEN_REFRESHES, "result" => "rejected").increment(1);
                tracing::warn!(%business, %reason,
                    "X refused the OAuth 2.0 refresh token; the account needs `xdm-connect x login`");
                Err(self
                    .mark_needs_login(business, version, token, &reason, slot)
                    .await)
            }
            Err(RefreshError::Unavailable(reason)) => {
                metrics::counter!(TOKEN_REFRESHES, "result" => "unavailable").increment(1);
                tracing::warn!(%business, %reason, "the X token endpoint is unavailable");
                slot.pause_until_ms = now.saturating_add(UNAVAILABLE_PAUSE_MS);
                if !token.expired(now) && matches!(stale, Stale::NearExpiry) {
                    return Ok(Some(token.value()));
                }
                Err(TokenError::Unavailable(format!(
                    "cannot refresh the OAuth 2.0 token of {business}: {reason}"
                )))
            }
        }
    }

    /// Records that the account needs a new login; the error to return.
    async fn mark_needs_login(
        &self,
        business: &XUserId,
        version: u64,
        mut token: StoredToken,
        reason: &str,
        slot: &mut Slot,
    ) -> TokenError {
        token.needs_login = Some(reason.to_owned());
        let now = self.clock.now_ms();
        let written = match token.encode() {
            Ok(value) => {
                self.store
                    .put_record(&token_key(business), &value, Expect::Version(version), now)
                    .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(Some(version)) => slot.cached = Some((version, token)),
            // Replaced meanwhile (a new login): the next call reads it.
            Ok(None) => slot.cached = None,
            Err(e) => {
                tracing::warn!(%business, error = %e, "cannot record that the account needs a new login");
                slot.cached = None;
            }
        }
        TokenError::NeedsLogin {
            business: business.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Tries once to write the grant held in memory. True when nothing is left unsaved.
    async fn save_unsaved(&self, business: &XUserId, slot: &mut Slot) -> bool {
        let Some(unsaved) = slot.unsaved.as_mut() else {
            return true;
        };
        let key = token_key(business);
        let value = match unsaved.token.encode() {
            Ok(value) => value,
            Err(e) => {
                tracing::error!(%business, error = %e, "cannot encode the refreshed token");
                return false;
            }
        };
        let now = self.clock.now_ms();
        let result = self
            .store
            .put_record(&key, &value, Expect::Version(unsaved.base_version), now)
            .await;
        match result {
            Ok(Some(version)) => {
                let token = unsaved.token.clone();
                slot.cached = Some((version, token));
                slot.unsaved = None;
                true
            }
            Ok(None) => {
                // Written meanwhile. Keep a usable token of another lineage (a new login);
                // else (a `needs_login` mark of the spent token, a stale write) ours wins.
                match self.store.record(&key).await {
                    Ok(Some(current)) => {
                        let keep_theirs = StoredToken::decode(&current).is_ok_and(|theirs| {
                            theirs.needs_login.is_none() && theirs.refresh_token != unsaved.spent
                        });
                        if keep_theirs {
                            slot.cached = None;
                            slot.unsaved = None;
                            return true;
                        }
                        unsaved.base_version = current.version;
                    }
                    Ok(None) => {
                        // Deleted (the account was removed): do not bring it back.
                        slot.cached = None;
                        slot.unsaved = None;
                        return true;
                    }
                    Err(e) => {
                        tracing::warn!(%business, error = %e, "cannot store the refreshed token yet");
                    }
                }
                false
            }
            Err(e) => {
                tracing::warn!(%business, error = %e, "cannot store the refreshed token yet");
                false
            }
        }
    }
}

fn business_of(key: &str) -> Option<XUserId> {
    key.strip_prefix(TOKEN_KEY_PREFIX)
        .and_then(|id| XUserId::parse(id).ok())
}

#[cfg(test)]
mod tests;
