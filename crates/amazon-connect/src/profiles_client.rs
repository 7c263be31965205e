//! Amazon Connect Customer Profiles: the customer's profile, keyed on their X user id.
//!
//! Three rest-json calls of the `profile` service (SearchProfiles, CreateProfile, UpdateProfile),
//! hand-signed like the control plane for the same reason: `aws-sdk-customerprofiles` generates
//! every operation of the service for the three used here.
//!
//! The key is the predefined search key `_account` (the profile's `AccountNumber`), holding
//! `x:<X user id>`: a custom search key would need an object type defined in every domain
//! before the first chat, and the prefix keeps X users apart from account numbers other
//! channels write into the same domain. The profile's `FirstName` is the X display name (X has
//! no first/last split) and its `Attributes` hold `x_user_id`, `x_username`, `x_profile_url`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};
use xdm_core::ports::{ConnectError, CustomerProfile, ProfileChange};
use xdm_core::profile::XProfile;

use crate::config::{ConfigError, settings};
use crate::endpoints::resolve_profiles_endpoint;
use crate::signed_client::SignedClient;

/// SigV4 signing name of Customer Profiles.
pub const SERVICE_NAME: &str = "profile";

/// The predefined search key the bridge finds a customer's profile by (`AccountNumber`).
pub const SEARCH_KEY: &str = "_account";

/// Longest string Customer Profiles keeps in a name field or an attribute value.
const MAX_FIELD_CHARS: usize = 255;

/// The `AccountNumber` of the profile of the X user `id`.
pub fn account_number(id: &str) -> String {
    format!("x:{id}")
}

/// `POST /domains/{DomainName}/profiles/search` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SearchProfilesRequest<'a> {
    key_name: &'a str,
    values: [&'a str; 1],
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SearchProfilesResponse {
    #[serde(default)]
    items: Vec<ProfileWire>,
}

/// The fields of a profile the bridge reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    party_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileIdResponse {
    profile_id: String,
}

/// The hand-signed Customer Profiles client of one domain.
#[derive(Debug, Clone)]
pub struct ProfilesClient {
    signed: SignedClient,
    domain: String,
}

impl ProfilesClient {
    /// Builds the client once from the `SdkConfig` and the environment
    /// (`AWS_ENDPOINT_URL_CUSTOMER_PROFILES`, `AWS_ENDPOINT_URL`).
    pub fn with_env(
        sdk: &SdkConfig,
        domain: &str,
        endpoint_override: Option<&str>,
        timeout: std::time::Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let signed = SignedClient::new(
            sdk,
            SERVICE_NAME,
            settings::ENDPOINT_CUSTOMER_PROFILES,
            |sdk_endpoint, region| {
                resolve_profiles_endpoint(endpoint_override, sdk_endpoint, region, env)
            },
            timeout,
        )?;
        Ok(Self {
            signed,
            domain: domain.to_owned(),
        })
    }

    pub fn endpoint(&self) -> &str {
        self.signed.endpoint()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The customer's profile: found by [`SEARCH_KEY`], created when missing, its name and
    /// handle updated when X's differ.
    pub async fn customer_profile(
        &self,
        customer: &XProfile,
    ) -> Result<CustomerProfile, ConnectError> {
        let wanted = wanted_profile(customer);
        let account = wanted.account_number.clone().unwrap_or_default();
        match self.search(&account).await? {
            Some(found) => {
                let Some(id) = found.profile_id.clone() else {
                    return Err(ConnectError::Unavailable(
                        "SearchProfiles: a profile without ProfileId in the response".into(),
                    ));
                };
                match update_for(&found, &wanted) {
                    None => Ok(CustomerProfile {
                        id,
                        change: ProfileChange::Found,
                    }),
                    Some(mut update) => {
                        update.profile_id = Some(id);
                        let out = self.update(&update).await?;
                        Ok(CustomerProfile {
                            id: out,
                            change: ProfileChange::Updated,
                        })
                    }
                }
            }
            None => Ok(CustomerProfile {
                id: self.create(&wanted).await?,
                change: ProfileChange::Created,
            }),
        }
    }

    /// Whether the domain answers a search with these credentials (`xdm-connect doctor`): a
    /// search no profile matches (`x:0`). `NotFound`: no such domain; `Unauthorized`: the
    /// credentials lack `profile:SearchProfiles` on it.
    pub async fn check(&self) -> Result<(), ConnectError> {
        self.search(&account_number("0")).await.map(|_| ())
    }

    /// SearchProfiles by [`SEARCH_KEY`]: the first profile with that account number.
    async fn search(&self, account: &str) -> Result<Option<ProfileWire>, ConnectError> {
        let path = format!("/domains/{}/profiles/search?max-results=1", self.domain);
        let body = SearchProfilesRequest {
            key_name: SEARCH_KEY,
            values: [account],
        };
        let out: SearchProfilesResponse = self
            .signed
            .call("SearchProfiles", http::Method::POST, &path, &body)
            .await?;
        Ok(out.items.into_iter().next())
    }

    async fn create(&self, profile: &ProfileWire) -> Result<String, ConnectError> {
        let path = format!("/domains/{}/profiles", self.domain);
        let out: ProfileIdResponse = self
            .signed
            .call("CreateProfile", http::Method::POST, &path, profile)
            .await?;
        tracing::info!(profile_id = %out.profile_id, "customer profile created");
        Ok(out.profile_id)
    }

    async fn update(&self, profile: &ProfileWire) -> Result<String, ConnectError> {
        let path = format!("/domains/{}/profiles", self.domain);
        let out: ProfileIdResponse = self
            .signed
            .call("UpdateProfile", http::Method::PUT, &path, profile)
            .await?;
        tracing::debug!(profile_id = %out.profile_id, "customer profile updated");
        Ok(out.profile_id)
    }
}

/// The profile the bridge wants for `customer` (what CreateProfile sends).
fn wanted_profile(customer: &XProfile) -> ProfileWire {
    let id = customer.id.to_string();
    let mut attributes = BTreeMap::from([("x_user_id".to_owned(), id.clone())]);
    if let Some(handle) = customer.username.as_deref().filter(|h| !h.is_empty()) {
        attributes.insert("x_username".to_owned(), clip(handle));
    }
    if let Some(url) = customer.profile_url() {
        attributes.insert("x_profile_url".to_owned(), clip(&url));
    }
    let first_name = customer
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(clip);
    ProfileWire {
        profile_id: None,
        account_number: Some(account_number(&id)),
        first_name,
        party_type: Some("INDIVIDUAL".to_owned()),
        attributes,
    }
}

/// The UpdateProfile body bringing `found` up to date with `wanted` (name, handle), if it is
/// not current. What X did not tell (an unknown name) never clears what the profile has.
fn update_for(found: &ProfileWire, wanted: &ProfileWire) -> Option<ProfileWire> {
    let name_changed = wanted.first_name.is_some() && wanted.first_name != found.first_name;
    let changed_attributes: BTreeMap<String, String> = wanted
        .attributes
        .iter()
        .filter(|(k, v)| found.attributes.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !name_changed && changed_attributes.is_empty() {
        return None;
    }
    Some(ProfileWire {
        first_name: if name_changed {
            wanted.first_name.clone()
        } else {
            None
        },
        // UpdateProfile merges attributes key by key.
        attributes: changed_attributes,
        ..ProfileWire::default()
    })
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_FIELD_CHARS).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use xdm_core::ids::XUserId;

    fn customer(name: Option<&str>, handle: Option<&str>) -> XProfile {
        XProfile {
            name: name.map(str::to_owned),
            username: handle.map(str::to_owned),
            ..XProfile::unknown(XUserId::parse("55125386").unwrap())
        }
    }

    #[test]
    fn a_new_profile_carries_the_x_id_name_and_handle() {
        let p = wanted_profile(&customer(
            Some(" Elizabeth Fuentes "),
            Some("ElizabethFue12"),
        ));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({
                "AccountNumber": "x:55125386",
                "FirstName": "Elizabeth Fuentes",
                "PartyType": "INDIVIDUAL",
                "Attributes": {
                    "x_user_id": "55125386",
                    "x_username": "ElizabethFue12",
                    "x_profile_url": "https://x.com/ElizabethFue12"
                }
            })
        );
    }

    #[test]
    fn only_what_changed_is_updated_and_nothing_unknown_is_cleared() {
        let wanted = wanted_profile(&customer(Some("Eli"), Some("eli")));
        let mut found = wanted.clone();
        found.profile_id = Some("p1".into());
        assert_eq!(update_for(&found, &wanted), None);

        let renamed = wanted_profile(&customer(Some("Eli F."), Some("eli")));
        let update = update_for(&found, &renamed).unwrap();
        assert_eq!(update.first_name.as_deref(), Some("Eli F."));
        assert!(update.attributes.is_empty());

        let new_handle = wanted_profile(&customer(Some("Eli"), Some("eli2")));
        let update = update_for(&found, &new_handle).unwrap();
        assert_eq!(update.first_name, None);
        assert_eq!(
            update.attributes.keys().collect::<Vec<_>>(),
            ["x_profile_url", "x_username"]
        );

        // X told nothing but the id: the profile keeps its name and handle.
        let unknown = wanted_profile(&customer(None, None));
        assert_eq!(update_for(&found, &unknown), None);
    }
}
