//! The request bodies of CreateProfile, UpdateProfile and SearchProfiles, checked against the
//! constraints of the service model (botocore `customer-profiles/2020-08-15`): lengths, patterns,
//! enums, required members. Violations are answered like AWS's input validation: one 400
//! `BadRequestException` listing them all ("2 validation errors detected: …"), naming members by
//! their camelCase path and never echoing a value (every profile member is sensitive).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::connect::errors::AwsError;
use crate::profiles::model::{
    Address, ContactPreference, EngagementPreferences, Gender, PartyType, Profile, ProfileType,
};

/// `AdditionalSearchKeys`: at most this many (5 keys in all).
const MAX_ADDITIONAL_KEYS: usize = 4;
/// `ContactPreference.ContactType`.
const CONTACT_TYPES: [&str; 7] = [
    "PhoneNumber",
    "MobilePhoneNumber",
    "HomePhoneNumber",
    "BusinessPhoneNumber",
    "EmailAddress",
    "PersonalEmailAddress",
    "BusinessEmailAddress",
];

/// The constraint violations found in one request.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, path: &str, constraint: impl std::fmt::Display) {
        self.0.push(format!(
            "Value at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub(crate) fn missing(&mut self, path: &str) {
        self.0.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// Length in characters within `min..=max`.
    pub(crate) fn length(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let length = value.chars().count();
        if length < min {
            self.push(
                path,
                format_args!("Member must have length greater than or equal to {min}"),
            );
        } else if length > max {
            self.push(
                path,
                format_args!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A list of `min..=max` members.
    pub(crate) fn count(&mut self, path: &str, count: usize, min: usize, max: usize) {
        if count < min {
            self.push(
                path,
                format_args!("Member must have length greater than or equal to {min}"),
            );
        } else if count > max {
            self.push(
                path,
                format_args!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A `name` (domain, search key): 1–64 of `[a-zA-Z0-9_-]`.
    pub(crate) fn name(&mut self, path: &str, value: &str) {
        self.length(path, value, 1, 64);
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.push(
                path,
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$",
            );
        }
    }

    /// A `uuid` (ProfileId): 32 lower-case hex characters.
    pub(crate) fn profile_id(&mut self, path: &str, value: &str) {
        if !is_profile_id(value) {
            self.push(
                path,
                "Member must satisfy regular expression pattern: [a-f0-9]{32}",
            );
        }
    }

    /// An integer within `min..=max`.
    pub(crate) fn range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        if value < min {
            self.push(
                path,
                format_args!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.push(
                path,
                format_args!("Member must have value less than or equal to {max}"),
            );
        }
    }

    fn one_of<T: Copy>(&mut self, path: &str, value: &str, set: &[(&str, T)]) -> Option<T> {
        let found = set.iter().find(|(name, _)| *name == value).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = set.iter().map(|(name, _)| *name).collect();
            self.push(
                path,
                format_args!("Member must satisfy enum value set: [{}]", names.join(", ")),
            );
        }
        found
    }

    pub(crate) fn into_result(self) -> Result<(), AwsError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(AwsError::bad_request(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.0.join("; ")
            ))),
        }
    }
}

/// A ProfileId as the service makes them.
pub(crate) fn is_profile_id(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `FirstName` → `firstName`.
fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Which operation's constraints apply: CreateProfile's strings are 1–N characters,
/// UpdateProfile's 0–N (an empty string clears the member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Update,
}

impl Mode {
    fn min(self) -> usize {
        match self {
            Self::Create => 1,
            Self::Update => 0,
        }
    }
}

/// The profile members of CreateProfile and UpdateProfile.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ProfileFields {
    account_number: Option<String>,
    additional_information: Option<String>,
    party_type: Option<String>,
    business_name: Option<String>,
    first_name: Option<String>,
    middle_name: Option<String>,
    last_name: Option<String>,
    birth_date: Option<String>,
    gender: Option<String>,
    phone_number: Option<String>,
    mobile_phone_number: Option<String>,
    home_phone_number: Option<String>,
    business_phone_number: Option<String>,
    email_address: Option<String>,
    personal_email_address: Option<String>,
    business_email_address: Option<String>,
    address: Option<Address>,
    shipping_address: Option<Address>,
    mailing_address: Option<Address>,
    billing_address: Option<Address>,
    attributes: Option<BTreeMap<String, String>>,
    party_type_string: Option<String>,
    gender_string: Option<String>,
    profile_type: Option<String>,
    engagement_preferences: Option<EngagementPreferences>,
}

/// CreateProfile's body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateProfileRequest {
    #[serde(flatten)]
    pub fields: ProfileFields,
}

/// UpdateProfile's body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateProfileRequest {
    pub profile_id: Option<String>,
    #[serde(flatten)]
    pub fields: ProfileFields,
}

/// Sets, keeps (absent) or clears (empty string) one member.
fn merge(target: &mut Option<String>, value: Option<String>) {
    match value {
        None => {}
        Some(v) if v.is_empty() => *target = None,
        Some(v) => *target = Some(v),
    }
}

/// The enum value named `value`, if it is one.
fn pick<T: Copy>(value: Option<String>, set: &[(&str, T)]) -> Option<T> {
    let value = value?;
    set.iter().find(|(name, _)| *name == value).map(|(_, t)| *t)
}

fn merge_address(target: &mut Option<Address>, update: Option<Address>) {
    let Some(mut update) = update else {
        return;
    };
    let mut address = target.take().unwrap_or_default();
    for ((_, line), (_, new)) in address.fields_mut().into_iter().zip(update.fields_mut()) {
        merge(line, new.take());
    }
    *target = (!address.is_empty()).then_some(address);
}

impl ProfileFields {
    /// The string members with their wire names and maximum lengths.
    fn strings(&self) -> [(&'static str, &Option<String>, usize); 16] {
        [
            ("AccountNumber", &self.account_number, 255),
            ("AdditionalInformation", &self.additional_information, 1000),
            ("BusinessName", &self.business_name, 255),
            ("FirstName", &self.first_name, 255),
            ("MiddleName", &self.middle_name, 255),
            ("LastName", &self.last_name, 255),
            ("BirthDate", &self.birth_date, 255),
            ("PhoneNumber", &self.phone_number, 255),
            ("MobilePhoneNumber", &self.mobile_phone_number, 255),
            ("HomePhoneNumber", &self.home_phone_number, 255),
            ("BusinessPhoneNumber", &self.business_phone_number, 255),
            ("EmailAddress", &self.email_address, 255),
            ("PersonalEmailAddress", &self.personal_email_address, 255),
            ("BusinessEmailAddress", &self.business_email_address, 255),
            ("PartyTypeString", &self.party_type_string, 255),
            ("GenderString", &self.gender_string, 255),
        ]
    }

    /// Checks every member against `mode`'s constraints.
    pub(crate) fn validate(&self, mode: Mode, v: &mut Violations) {
        let min = mode.min();
        for (name, value, max) in self.strings() {
            if let Some(value) = value {
                v.length(&camel(name), value, min, max);
            }
        }
        if let Some(value) = &self.party_type {
            v.one_of("partyType", value, &PartyType::ALL);
        }
        if let Some(value) = &self.gender {
            v.one_of("gender", value, &Gender::ALL);
        }
        if let Some(value) = &self.profile_type {
            v.one_of("profileType", value, &ProfileType::ALL);
        }
        for (name, address) in [
            ("address", &self.address),
            ("shippingAddress", &self.shipping_address),
            ("mailingAddress", &self.mailing_address),
            ("billingAddress", &self.billing_address),
        ] {
            let Some(address) = address else { continue };
            for (line, value) in address.lines() {
                if let Some(value) = value {
                    v.length(&format!("{name}.{}", camel(line)), value, min, 255);
                }
            }
        }
        if let Some(attributes) = &self.attributes {
            for (key, value) in attributes {
                // Keys are not echoed either: the map is sensitive.
                v.length("attributes.key", key, 1, 255);
                v.length("attributes.value", value, min, 255);
            }
        }
        if let Some(prefs) = &self.engagement_preferences {
            for (name, list) in [("phone", &prefs.phone), ("email", &prefs.email)] {
                for (i, pref) in list.iter().flatten().enumerate() {
                    validate_preference(
                        &format!("engagementPreferences.{name}.{}", i + 1),
                        pref,
                        v,
                    );
                }
            }
        }
    }

    /// Applies the (validated) members to `profile`: present ones replace, absent ones are kept,
    /// empty strings clear; `Attributes` merge key by key (an empty value removes the key);
    /// addresses merge line by line; `EngagementPreferences` is replaced as a whole.
    pub(crate) fn apply(self, profile: &mut Profile) {
        merge(&mut profile.account_number, self.account_number);
        merge(
            &mut profile.additional_information,
            self.additional_information,
        );
        merge(&mut profile.business_name, self.business_name);
        merge(&mut profile.first_name, self.first_name);
        merge(&mut profile.middle_name, self.middle_name);
        merge(&mut profile.last_name, self.last_name);
        merge(&mut profile.birth_date, self.birth_date);
        merge(&mut profile.phone_number, self.phone_number);
        merge(&mut profile.mobile_phone_number, self.mobile_phone_number);
        merge(&mut profile.home_phone_number, self.home_phone_number);
        merge(
            &mut profile.business_phone_number,
            self.business_phone_number,
        );
        merge(&mut profile.email_address, self.email_address);
        merge(
            &mut profile.personal_email_address,
            self.personal_email_address,
        );
        merge(
            &mut profile.business_email_address,
            self.business_email_address,
        );
        merge(&mut profile.party_type_string, self.party_type_string);
        merge(&mut profile.gender_string, self.gender_string);
        if let Some(party_type) = pick(self.party_type, &PartyType::ALL) {
            profile.party_type = Some(party_type);
        }
        if let Some(gender) = pick(self.gender, &Gender::ALL) {
            profile.gender = Some(gender);
        }
        if let Some(profile_type) = pick(self.profile_type, &ProfileType::ALL) {
            profile.profile_type = Some(profile_type);
        }
        merge_address(&mut profile.address, self.address);
        merge_address(&mut profile.shipping_address, self.shipping_address);
        merge_address(&mut profile.mailing_address, self.mailing_address);
        merge_address(&mut profile.billing_address, self.billing_address);
        for (key, value) in self.attributes.unwrap_or_default() {
            if value.is_empty() {
                profile.attributes.remove(&key);
            } else {
                profile.attributes.insert(key, value);
            }
        }
        if let Some(prefs) = self.engagement_preferences {
            profile.engagement_preferences =
                (prefs != EngagementPreferences::default()).then_some(prefs);
        }
    }
}

fn validate_preference(path: &str, pref: &ContactPreference, v: &mut Violations) {
    if let Some(key_name) = &pref.key_name {
        v.name(&format!("{path}.keyName"), key_name);
    }
    if let Some(key_value) = &pref.key_value {
        v.length(&format!("{path}.keyValue"), key_value, 1, 255);
    }
    if let Some(profile_id) = &pref.profile_id {
        v.profile_id(&format!("{path}.profileId"), profile_id);
    }
    if let Some(contact_type) = &pref.contact_type {
        let set: Vec<(&str, ())> = CONTACT_TYPES.iter().map(|t| (*t, ())).collect();
        v.one_of(&format!("{path}.contactType"), contact_type, &set);
    }
}

/// One search key of SearchProfiles (`KeyName` + `Values`, or an `AdditionalSearchKey`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SearchKeyRequest {
    key_name: Option<String>,
    values: Option<Vec<String>>,
}

/// SearchProfiles' body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SearchProfilesRequest {
    key_name: Option<String>,
    values: Option<Vec<String>>,
    additional_search_keys: Option<Vec<SearchKeyRequest>>,
    logical_operator: Option<String>,
}

/// A checked search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchKey {
    pub name: String,
    pub values: Vec<String>,
}

/// A checked SearchProfiles request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    /// `KeyName` + `Values` first, then the `AdditionalSearchKeys`.
    pub keys: Vec<SearchKey>,
    /// `LogicalOperator` `AND` (default `OR`).
    pub all: bool,
    /// `AdditionalSearchKeys` were given (the items then carry `FoundByItems`).
    pub multi_key: bool,
}

fn search_key(
    path: &str,
    name: Option<&String>,
    values: Option<&Vec<String>>,
    v: &mut Violations,
) -> SearchKey {
    let name_path = if path.is_empty() {
        "keyName".to_owned()
    } else {
        format!("{path}.keyName")
    };
    let values_path = if path.is_empty() {
        "values".to_owned()
    } else {
        format!("{path}.values")
    };
    match name {
        Some(name) => v.name(&name_path, name),
        None => v.missing(&name_path),
    }
    match values {
        None => v.missing(&values_path),
        Some(values) => {
            v.count(&values_path, values.len(), 1, usize::MAX);
            for (i, value) in values.iter().enumerate() {
                v.length(&format!("{values_path}.{}", i + 1), value, 1, 255);
            }
        }
    }
    SearchKey {
        name: name.cloned().unwrap_or_default(),
        values: values.cloned().unwrap_or_default(),
    }
}

impl SearchProfilesRequest {
    /// The search, checked (violations are added to `v`).
    pub(crate) fn check(&self, v: &mut Violations) -> Search {
        let mut keys = vec![search_key(
            "",
            self.key_name.as_ref(),
            self.values.as_ref(),
            v,
        )];
        if let Some(additional) = &self.additional_search_keys {
            v.count(
                "additionalSearchKeys",
                additional.len(),
                1,
                MAX_ADDITIONAL_KEYS,
            );
            for (i, key) in additional.iter().enumerate() {
                keys.push(search_key(
                    &format!("additionalSearchKeys.{}", i + 1),
                    key.key_name.as_ref(),
                    key.values.as_ref(),
                    v,
                ));
            }
        }
        let all = match self.logical_operator.as_deref() {
            None => false,
            Some(op) => {
                v.one_of("logicalOperator", op, &[("AND", true), ("OR", false)]) == Some(true)
            }
        };
        Search {
            keys,
            all,
            multi_key: self.additional_search_keys.is_some(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn fields(json: &str) -> ProfileFields {
        serde_json::from_str(json).unwrap()
    }

    fn violations(json: &str, mode: Mode) -> Option<String> {
        let mut v = Violations::default();
        fields(json).validate(mode, &mut v);
        v.into_result().err().map(|e| e.message)
    }

    #[test]
    fn create_needs_non_empty_strings_update_may_clear() {
        assert!(
            violations(r#"{"FirstName":""}"#, Mode::Create)
                .unwrap()
                .contains("'firstName'")
        );
        assert_eq!(violations(r#"{"FirstName":""}"#, Mode::Update), None);
        let long = format!(r#"{{"AdditionalInformation":"{}"}}"#, "a".repeat(1001));
        assert!(violations(&long, Mode::Update).unwrap().contains("1000"));
        let two = violations(r#"{"PartyType":"PERSON","Gender":"X"}"#, Mode::Create).unwrap();
        assert!(two.starts_with("2 validation errors detected"), "{two}");
        assert!(!two.contains("PERSON"), "values are not echoed: {two}");
    }

    #[test]
    fn apply_merges() {
        let mut p = Profile::default();
        fields(r#"{"FirstName":"Eli","LastName":"F","Attributes":{"a":"1","b":"2"},"Address":{"City":"Madrid","Country":"ES"}}"#)
            .apply(&mut p);
        fields(r#"{"FirstName":"Elizabeth","LastName":"","Attributes":{"a":"","c":"3"},"Address":{"City":""}}"#)
            .apply(&mut p);
        assert_eq!(p.first_name.as_deref(), Some("Elizabeth"));
        assert_eq!(p.last_name, None);
        assert_eq!(
            p.attributes,
            BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
        let address = p.address.unwrap();
        assert_eq!(
            (address.city, address.country.as_deref()),
            (None, Some("ES"))
        );
    }
}
