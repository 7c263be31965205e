//! Amazon Connect Customer Profiles for a new chat: the customer's profile id, bounded in time.
//! A failure or a slow answer starts the chat without it — a profile never holds a message back.

use std::time::Duration;

use crate::metric_names::CUSTOMER_PROFILES;
use crate::ports::{Clock, ConnectApi, Store};
use crate::profile::XProfile;

use super::Bridge;

/// How long finding (and creating or updating) the profile may take: a search and at most one
/// write, each tens of milliseconds on AWS.
const PROFILE_TIMEOUT: Duration = Duration::from_secs(2);

impl<S: Store, X, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// The customer's Customer Profiles id for `StartChatContact`'s `CustomerId`; `None` without
    /// a domain, or when Connect refused or did not answer within [`PROFILE_TIMEOUT`].
    pub(super) async fn customer_profile_id(&self, profile: &XProfile) -> Option<String> {
        let lookup = self.connect.customer_profile(profile);
        let (result, id) = match tokio::time::timeout(PROFILE_TIMEOUT, lookup).await {
            Ok(Ok(None)) => return None,
            Ok(Ok(Some(found))) => (found.change.as_str(), Some(found.id)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Customer Profiles lookup failed; starting the chat without the profile");
                ("failed", None)
            }
            Err(_) => {
                tracing::warn!(
                    timeout_s = PROFILE_TIMEOUT.as_secs(),
                    "Customer Profiles did not answer in time; starting the chat without the profile"
                );
                ("timeout", None)
            }
        };
        metrics::counter!(CUSTOMER_PROFILES, "result" => result).increment(1);
        id
    }
}
