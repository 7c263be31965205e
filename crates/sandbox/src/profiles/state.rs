//! The Customer Profiles emulator's memory: the configured domains and their profiles, in
//! creation order.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use crate::clock;
use crate::profiles::model::{Profile, ProfileView};

#[derive(Debug, Clone)]
pub(crate) struct StoredProfile {
    pub profile: Profile,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One domain: its profiles in creation order, indexed by ProfileId.
#[derive(Debug, Default)]
pub(crate) struct Domain {
    pub profiles: Vec<StoredProfile>,
    by_id: HashMap<String, usize>,
}

impl Domain {
    pub(crate) fn insert(&mut self, profile: Profile, now: OffsetDateTime) {
        self.by_id
            .insert(profile.profile_id.clone(), self.profiles.len());
        self.profiles.push(StoredProfile {
            profile,
            created_at: now,
            updated_at: now,
        });
    }

    pub(crate) fn get_mut(&mut self, profile_id: &str) -> Option<&mut StoredProfile> {
        let idx = *self.by_id.get(profile_id)?;
        self.profiles.get_mut(idx)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ProfilesState {
    domains: BTreeMap<String, Domain>,
}

impl ProfilesState {
    /// The configured domains, empty.
    pub(crate) fn new(domains: &[String]) -> Self {
        Self {
            domains: domains
                .iter()
                .map(|name| (name.clone(), Domain::default()))
                .collect(),
        }
    }

    pub(crate) fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(name)
    }

    pub(crate) fn domain_mut(&mut self, name: &str) -> Option<&mut Domain> {
        self.domains.get_mut(name)
    }

    /// Every profile, by domain (in name order), then in creation order.
    pub(crate) fn views(&self) -> Vec<ProfileView> {
        self.domains
            .iter()
            .flat_map(|(name, domain)| {
                domain.profiles.iter().map(move |stored| ProfileView {
                    domain: name.clone(),
                    profile: stored.profile.clone(),
                    created_at: clock::iso_ms(stored.created_at),
                    updated_at: clock::iso_ms(stored.updated_at),
                })
            })
            .collect()
    }
}
