//! X user objects in both shapes the bridge meets: the legacy compact user of Account Activity
//! `users` maps (`screen_name`, `profile_image_url_https`, `followers_count`) and the v2 user
//! (`username`, `profile_image_url`, `public_metrics.followers_count`), bare as in `GET /2/users/:id`
//! or wrapped in `{"data":{…}}` as in X Activity API deliveries; and the v2 user fields the
//! bridge asks X for.

use serde::Deserialize;
use xdm_core::ids::XUserId;
use xdm_core::profile::XProfile;

use crate::lenient;

/// The profile fields the bridge asks for.
pub const USER_FIELDS: &str = "name,username,profile_image_url,verified,public_metrics";

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserObject {
    /// The v2 wrapper of X Activity API `users` maps.
    #[serde(default, deserialize_with = "lenient::object")]
    pub(crate) data: Option<Box<UserObject>>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) name: Option<String>,
    /// v2.
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) username: Option<String>,
    /// Legacy.
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) screen_name: Option<String>,
    /// Legacy (the plain `profile_image_url` of legacy users is http).
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) profile_image_url_https: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) profile_image_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub(crate) verified: Option<bool>,
    /// Legacy.
    #[serde(default, deserialize_with = "lenient::unsigned")]
    pub(crate) followers_count: Option<u64>,
    /// v2.
    #[serde(default, deserialize_with = "lenient::object")]
    pub(crate) public_metrics: Option<PublicMetrics>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PublicMetrics {
    #[serde(default, deserialize_with = "lenient::unsigned")]
    pub(crate) followers_count: Option<u64>,
}

impl UserObject {
    /// The profile of user `id` (the id the object was looked up by, not the one it claims).
    pub(crate) fn into_profile(self, id: XUserId) -> XProfile {
        if let Some(inner) = self.data {
            return inner.into_profile(id);
        }
        XProfile {
            id,
            name: lenient::non_blank(self.name),
            username: lenient::non_blank(self.username.or(self.screen_name))
                .map(|u| u.trim_start_matches('@').to_owned()),
            profile_image_url: lenient::non_blank(
                self.profile_image_url_https.or(self.profile_image_url),
            ),
            verified: self.verified,
            followers_count: self
                .public_metrics
                .and_then(|m| m.followers_count)
                .or(self.followers_count),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn id() -> XUserId {
        XUserId::parse("55125386").unwrap()
    }

    #[test]
    fn reads_a_legacy_user() {
        let u: UserObject = serde_json::from_str(
            r#"{"id":"55125386","name":"Elizabeth Fuentes","screen_name":"ElizabethFue12",
                "verified":false,"followers_count":1146,
                "profile_image_url":"http://pbs.twimg.com/a_normal.jpg",
                "profile_image_url_https":"https://pbs.twimg.com/a_normal.jpg"}"#,
        )
        .unwrap();
        let p = u.into_profile(id());
        assert_eq!(p.name.as_deref(), Some("Elizabeth Fuentes"));
        assert_eq!(p.username.as_deref(), Some("ElizabethFue12"));
        assert_eq!(
            p.profile_image_url.as_deref(),
            Some("https://pbs.twimg.com/a_normal.jpg")
        );
        assert_eq!(p.verified, Some(false));
        assert_eq!(p.followers_count, Some(1146));
    }

    #[test]
    fn reads_wrapped_and_bare_v2_users() {
        for json in [
            r#"{"data":{"id":"55125386","username":"ElizabethFue12","name":"Elizabeth Fuentes",
                "profile_image_url":"https://pbs.twimg.com/a_normal.jpg","verified":true,
                "public_metrics":{"followers_count":7,"following_count":1}}}"#,
            r#"{"id":"55125386","username":"ElizabethFue12","name":"Elizabeth Fuentes",
                "profile_image_url":"https://pbs.twimg.com/a_normal.jpg","verified":true,
                "public_metrics":{"followers_count":7}}"#,
        ] {
            let p = serde_json::from_str::<UserObject>(json)
                .unwrap()
                .into_profile(id());
            assert_eq!(p.name.as_deref(), Some("Elizabeth Fuentes"));
            assert_eq!(p.username.as_deref(), Some("ElizabethFue12"));
            assert_eq!(p.verified, Some(true));
            assert_eq!(p.followers_count, Some(7));
        }
    }

    #[test]
    fn odd_fields_read_as_unknown() {
        let p = serde_json::from_str::<UserObject>(
            r#"{"name":7,"screen_name":"","verified":"yes","followers_count":-1,"public_metrics":[]}"#,
        )
        .unwrap()
        .into_profile(id());
        assert_eq!(p.name.as_deref(), Some("7"));
        assert_eq!(p.username, None);
        assert_eq!(p.verified, None);
        assert_eq!(p.followers_count, None);
    }
}
