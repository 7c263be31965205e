//! SearchProfiles over a domain's profiles: the search keys the sandbox indexes, exact matching
//! with `AND` / `OR`, `FoundByItems`, and pagination tokens.
//!
//! Indexed keys (the predefined keys of the standard profile): `_account` (`AccountNumber`),
//! `_profileId`, `_fullName` (`FirstName MiddleName LastName`, the parts present joined by single
//! spaces), `_phone` (`PhoneNumber`, `MobilePhoneNumber`, `HomePhoneNumber`,
//! `BusinessPhoneNumber`), `_email` (`EmailAddress`, `PersonalEmailAddress`,
//! `BusinessEmailAddress`). The other predefined keys (`_assetId`, `_caseId`, `_orderId`,
//! `_ctrContactId` and the integrations' keys) are accepted and match nothing: they index profile
//! objects, which the sandbox does not store. Any other key is unknown (the sandbox's domains have
//! no custom keys): 400 `BadRequestException`. A value matches when it equals one of the profile's
//! values for the key, byte for byte.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::connect::errors::AwsError;
use crate::media::files::sha256_hex;
use crate::profiles::model::Profile;
use crate::profiles::request::{Search, SearchKey};

/// Predefined keys of objects the sandbox does not store: valid, never matching.
const UNINDEXED_KEYS: [&str; 16] = [
    "_assetId",
    "_caseId",
    "_orderId",
    "_ctrContactId",
    "_marketoLeadId",
    "_salesforceAccountId",
    "_salesforceContactId",
    "_salesforceAssetId",
    "_zendeskUserId",
    "_zendeskExternalId",
    "_zendeskTicketId",
    "_serviceNowSystemId",
    "_serviceNowIncidentId",
    "_segmentUserId",
    "_shopifyCustomerId",
    "_shopifyOrderId",
];

/// What a search key looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Account,
    ProfileId,
    FullName,
    Phone,
    Email,
    /// A predefined key of profile objects.
    Unindexed,
}

fn key(name: &str) -> Option<Key> {
    match name {
        "_account" => Some(Key::Account),
        "_profileId" => Some(Key::ProfileId),
        "_fullName" => Some(Key::FullName),
        "_phone" => Some(Key::Phone),
        "_email" => Some(Key::Email),
        _ if UNINDEXED_KEYS.contains(&name) => Some(Key::Unindexed),
        _ => None,
    }
}

/// Every key of `search` is a search key of domain `domain`.
pub(crate) fn check_keys(domain: &str, search: &Search) -> Result<(), AwsError> {
    match search.keys.iter().find(|k| key(&k.name).is_none()) {
        None => Ok(()),
        Some(unknown) => Err(AwsError::bad_request(format!(
            "KeyName {} is not a search key of domain {domain}",
            unknown.name
        ))),
    }
}

/// The profile's values for `key`.
fn values(profile: &Profile, key: Key) -> Vec<String> {
    let owned = |values: Vec<&str>| values.into_iter().map(str::to_owned).collect();
    match key {
        Key::Account => profile.account_number.iter().cloned().collect(),
        Key::ProfileId => vec![profile.profile_id.clone()],
        Key::FullName => profile.full_name().into_iter().collect(),
        Key::Phone => owned(profile.phones()),
        Key::Email => owned(profile.emails()),
        Key::Unindexed => Vec::new(),
    }
}

fn matches(profile: &Profile, search_key: &SearchKey) -> bool {
    let Some(key) = key(&search_key.name) else {
        return false;
    };
    let have = values(profile, key);
    search_key.values.iter().any(|v| have.contains(v))
}

/// The search keys `profile` was found by, or `None` when it does not match.
pub(crate) fn found_by<'a>(profile: &Profile, search: &'a Search) -> Option<Vec<&'a SearchKey>> {
    let matched: Vec<&SearchKey> = search.keys.iter().filter(|k| matches(profile, k)).collect();
    let found = if search.all {
        matched.len() == search.keys.len()
    } else {
        !matched.is_empty()
    };
    found.then_some(matched)
}

/// A profile as a SearchProfiles item: with `FoundByItems` (the keys it matched, as requested)
/// when the search had `AdditionalSearchKeys`.
pub(crate) fn item(profile: &Profile, search: &Search, found_by: &[&SearchKey]) -> Value {
    let mut item = serde_json::to_value(profile).unwrap_or_else(|_| json!({}));
    if search.multi_key
        && let Value::Object(obj) = &mut item
    {
        let found: Vec<Value> = found_by
            .iter()
            .map(|k| json!({"KeyName": k.name, "Values": k.values}))
            .collect();
        obj.insert("FoundByItems".into(), Value::Array(found));
    }
    item
}

/// Ties a NextToken to the search it continues.
pub(crate) fn fingerprint(domain: &str, search: &Search) -> String {
    let keys: Vec<Value> = search
        .keys
        .iter()
        .map(|k| json!([k.name, k.values]))
        .collect();
    let canonical = json!([domain, keys, search.all]).to_string();
    sha256_hex(canonical.as_bytes()).chars().take(16).collect()
}

/// The NextToken of the page starting at `offset`.
pub(crate) fn next_token(offset: usize, fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}.{fingerprint}"))
}

/// The offset a NextToken of this search points at.
pub(crate) fn token_offset(token: &str, fingerprint: &str) -> Result<usize, AwsError> {
    let invalid = || AwsError::bad_request("The NextToken is not valid for this request");
    let decoded = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (offset, print) = text.split_once('.').ok_or_else(invalid)?;
    if print != fingerprint {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn search(keys: &[(&str, &[&str])], all: bool) -> Search {
        Search {
            keys: keys
                .iter()
                .map(|(name, values)| SearchKey {
                    name: (*name).to_owned(),
                    values: values.iter().map(|v| (*v).to_owned()).collect(),
                })
                .collect(),
            all,
            multi_key: keys.len() > 1,
        }
    }

    fn profile() -> Profile {
        Profile {
            profile_id: "0123456789abcdef0123456789abcdef".into(),
            account_number: Some("x:1".into()),
            first_name: Some("Elizabeth".into()),
            last_name: Some("Fuentes".into()),
            mobile_phone_number: Some("+34600000000".into()),
            business_email_address: Some("eli@example.com".into()),
            ..Profile::default()
        }
    }

    #[test]
    fn keys_look_at_their_fields() {
        let p = profile();
        for (name, value) in [
            ("_account", "x:1"),
            ("_profileId", "0123456789abcdef0123456789abcdef"),
            ("_fullName", "Elizabeth Fuentes"),
            ("_phone", "+34600000000"),
            ("_email", "eli@example.com"),
        ] {
            assert!(
                found_by(&p, &search(&[(name, &[value])], false)).is_some(),
                "{name}"
            );
            assert!(
                found_by(&p, &search(&[(name, &["other"])], false)).is_none(),
                "{name}"
            );
        }
        assert!(found_by(&p, &search(&[("_caseId", &["x:1"])], false)).is_none());
        assert!(found_by(&p, &search(&[("_fullName", &["elizabeth fuentes"])], false)).is_none());
    }

    #[test]
    fn and_needs_every_key_or_any() {
        let p = profile();
        let keys: &[(&str, &[&str])] = &[("_account", &["x:1"]), ("_phone", &["nope"])];
        assert!(found_by(&p, &search(keys, true)).is_none());
        assert_eq!(found_by(&p, &search(keys, false)).unwrap().len(), 1);
    }

    #[test]
    fn tokens_belong_to_their_search() {
        let a = fingerprint("d", &search(&[("_account", &["1"])], false));
        let b = fingerprint("d", &search(&[("_account", &["2"])], false));
        assert_ne!(a, b);
        assert_eq!(token_offset(&next_token(40, &a), &a).unwrap(), 40);
        assert!(token_offset(&next_token(40, &a), &b).is_err());
        assert!(token_offset("garbage!", &a).is_err());
    }
}
