//! Customer Profiles data as the service exposes it (botocore `customer-profiles/2020-08-15`
//! `Profile`, PascalCase on the wire, absent members omitted), and the sandbox's view of a stored
//! profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PartyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartyType {
    Individual,
    Business,
    Other,
}

impl PartyType {
    pub(crate) const ALL: [(&'static str, Self); 3] = [
        ("INDIVIDUAL", Self::Individual),
        ("BUSINESS", Self::Business),
        ("OTHER", Self::Other),
    ];
}

/// `Gender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gender {
    Male,
    Female,
    Unspecified,
}

impl Gender {
    pub(crate) const ALL: [(&'static str, Self); 3] = [
        ("MALE", Self::Male),
        ("FEMALE", Self::Female),
        ("UNSPECIFIED", Self::Unspecified),
    ];
}

/// `ProfileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProfileType {
    AccountProfile,
    Profile,
}

impl ProfileType {
    pub(crate) const ALL: [(&'static str, Self); 2] = [
        ("ACCOUNT_PROFILE", Self::AccountProfile),
        ("PROFILE", Self::Profile),
    ];
}

/// `Address` (each line 1–255 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

impl Address {
    /// The lines with their wire names.
    pub(crate) fn lines(&self) -> [(&'static str, &Option<String>); 10] {
        [
            ("Address1", &self.address1),
            ("Address2", &self.address2),
            ("Address3", &self.address3),
            ("Address4", &self.address4),
            ("City", &self.city),
            ("County", &self.county),
            ("State", &self.state),
            ("Province", &self.province),
            ("Country", &self.country),
            ("PostalCode", &self.postal_code),
        ]
    }

    /// The lines with their wire names, for merging.
    pub(crate) fn fields_mut(&mut self) -> [(&'static str, &mut Option<String>); 10] {
        [
            ("Address1", &mut self.address1),
            ("Address2", &mut self.address2),
            ("Address3", &mut self.address3),
            ("Address4", &mut self.address4),
            ("City", &mut self.city),
            ("County", &mut self.county),
            ("State", &mut self.state),
            ("Province", &mut self.province),
            ("Country", &mut self.country),
            ("PostalCode", &mut self.postal_code),
        ]
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `ContactPreference`: a way to reach the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContactPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    /// `PhoneNumber`, `MobilePhoneNumber`, `HomePhoneNumber`, `BusinessPhoneNumber`,
    /// `EmailAddress`, `PersonalEmailAddress` or `BusinessEmailAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_type: Option<String>,
}

/// `EngagementPreferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EngagementPreferences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Vec<ContactPreference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Vec<ContactPreference>>,
}

/// A standard profile, serialised as SearchProfiles returns it (without `FoundByItems`, which
/// belongs to one search).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Profile {
    /// 32 lower-case hex characters.
    pub profile_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_type: Option<PartyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_type_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_type: Option<ProfileType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_preferences: Option<EngagementPreferences>,
}

impl Profile {
    /// `FirstName MiddleName LastName`, the parts present joined by single spaces (the `_fullName`
    /// search key); `None` without any.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.middle_name, &self.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// `PhoneNumber`, `MobilePhoneNumber`, `HomePhoneNumber`, `BusinessPhoneNumber` (the `_phone`
    /// search key), those present.
    pub fn phones(&self) -> Vec<&str> {
        [
            &self.phone_number,
            &self.mobile_phone_number,
            &self.home_phone_number,
            &self.business_phone_number,
        ]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect()
    }

    /// `EmailAddress`, `PersonalEmailAddress`, `BusinessEmailAddress` (the `_email` search key),
    /// those present.
    pub fn emails(&self) -> Vec<&str> {
        [
            &self.email_address,
            &self.personal_email_address,
            &self.business_email_address,
        ]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect()
    }
}

/// A stored profile, as the control API lists it: its domain, then every field of the profile in
/// its wire names (`ProfileId`, `AccountNumber`, …), then when it was created and last updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    pub domain: String,
    #[serde(flatten)]
    pub profile: Profile,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn full_name_joins_present_parts_with_single_spaces() {
        let mut p = Profile {
            first_name: Some("Elizabeth".into()),
            last_name: Some("Fuentes".into()),
            ..Profile::default()
        };
        assert_eq!(p.full_name().as_deref(), Some("Elizabeth Fuentes"));
        p.middle_name = Some("Ana".into());
        assert_eq!(p.full_name().as_deref(), Some("Elizabeth Ana Fuentes"));
        assert_eq!(Profile::default().full_name(), None);
    }

    #[test]
    fn profile_serialises_only_present_members() {
        let p = Profile {
            profile_id: "0123456789abcdef0123456789abcdef".into(),
            account_number: Some("x:55125386".into()),
            party_type: Some(PartyType::Individual),
            profile_type: Some(ProfileType::AccountProfile),
            address: Some(Address {
                postal_code: Some("28001".into()),
                ..Address::default()
            }),
            ..Profile::default()
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"ProfileId":"0123456789abcdef0123456789abcdef","AccountNumber":"x:55125386","PartyType":"INDIVIDUAL","Address":{"PostalCode":"28001"},"ProfileType":"ACCOUNT_PROFILE"}"#
        );
    }
}
