//! The registry's user objects and their three JSON renderings: X API v2 (`GET /2/users/:id`),
//! legacy compact users (Account Activity `users` map) and v2 users wrapped in `data` (X Activity API).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock;

/// Default avatar of accounts without a profile image.
pub const DEFAULT_PROFILE_IMAGE: &str =
    "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png";

/// `user.fields` values X accepts (docs/protocols.md A4.2). The emulator renders the ones it models and
/// silently omits the others, like X does for fields a user has no value for.
pub const USER_FIELDS: &[&str] = &[
    "affiliation",
    "confirmed_email",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "is_identity_verified",
    "location",
    "most_recent_tweet_id",
    "name",
    "parody",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscribes_to_you",
    "subscription",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_followers_count",
    "verified_type",
    "withheld",
];

/// An X user known to the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxUser {
    pub id: String,
    pub name: String,
    pub username: String,
    pub profile_image_url: Option<String>,
    pub verified: bool,
    pub protected: bool,
    pub description: Option<String>,
    pub location: Option<String>,
    pub url: Option<String>,
    pub followers_count: u64,
    pub following_count: u64,
    pub tweet_count: u64,
    pub listed_count: u64,
    /// Account creation, Unix milliseconds.
    pub created_at_ms: i64,
    /// `false` ⇒ DMs to this user are refused with 403 (closed DMs / blocked).
    pub accepts_dms: bool,
}

impl Default for SandboxUser {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            username: String::new(),
            profile_image_url: None,
            verified: false,
            protected: false,
            description: None,
            location: None,
            url: None,
            followers_count: 0,
            following_count: 0,
            tweet_count: 0,
            listed_count: 0,
            // 2015-01-29T18:14:29.340Z, the creation date of a real account in docs/protocols.md A2.
            created_at_ms: 1_422_555_269_340,
            accepts_dms: true,
        }
    }
}

impl SandboxUser {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        username: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            username: username.into(),
            ..Self::default()
        }
    }

    /// A stand-in for ids nobody registered, used in webhook `users` maps (X always includes them).
    pub(crate) fn placeholder(id: &str) -> Self {
        Self::new(id, format!("User {id}"), format!("user{id}"))
    }

    fn image(&self) -> &str {
        self.profile_image_url
            .as_deref()
            .unwrap_or(DEFAULT_PROFILE_IMAGE)
    }

    fn created_at(&self) -> String {
        clock::iso_ms(clock::from_unix_ms(self.created_at_ms))
    }

    /// The v2 object with `id,name,username` plus the requested `user.fields` the registry models.
    pub(crate) fn v2_json(&self, fields: &[String]) -> Value {
        let mut obj = Map::new();
        obj.insert("id".into(), json!(self.id));
        obj.insert("name".into(), json!(self.name));
        obj.insert("username".into(), json!(self.username));
        for field in fields {
            let value = match field.as_str() {
                "profile_image_url" => json!(self.image()),
                "verified" => json!(self.verified),
                "protected" => json!(self.protected),
                "created_at" => json!(self.created_at()),
                "description" => json!(self.description.clone().unwrap_or_default()),
                "location" => match &self.location {
                    Some(l) => json!(l),
                    None => continue,
                },
                "url" => json!(self.url.clone().unwrap_or_default()),
                "public_metrics" => json!({
                    "followers_count": self.followers_count,
                    "following_count": self.following_count,
                    "tweet_count": self.tweet_count,
                    "listed_count": self.listed_count,
                }),
                _ => continue,
            };
            obj.insert(field.clone(), value);
        }
        Value::Object(obj)
    }

    /// The legacy compact user of Account Activity `users` maps.
    pub(crate) fn legacy(&self) -> LegacyUser {
        let image = self.image().to_owned();
        LegacyUser {
            id: self.id.clone(),
            created_timestamp: self.created_at_ms.to_string(),
            name: self.name.clone(),
            screen_name: self.username.clone(),
            location: self.location.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            protected: self.protected,
            verified: self.verified,
            followers_count: self.followers_count,
            friends_count: self.following_count,
            statuses_count: self.tweet_count,
            profile_image_url: Some(image.replacen("https://", "http://", 1)),
            profile_image_url_https: image,
        }
    }

    /// The X Activity API form: `{"data":{v2 user}}`.
    pub(crate) fn xaa(&self) -> XaaUser {
        XaaUser {
            data: XaaUserData {
                id: self.id.clone(),
                username: self.username.clone(),
                name: self.name.clone(),
                profile_image_url: self.image().to_owned(),
                protected: self.protected,
                verified: self.verified,
                public_metrics: XaaMetrics {
                    followers_count: self.followers_count,
                    following_count: self.following_count,
                    tweet_count: self.tweet_count,
                    listed_count: self.listed_count,
                },
            },
        }
    }
}

/// Field order as in the real capture of docs/protocols.md A2.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegacyUser {
    id: String,
    created_timestamp: String,
    name: String,
    screen_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    protected: bool,
    verified: bool,
    followers_count: u64,
    friends_count: u64,
    statuses_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_image_url: Option<String>,
    profile_image_url_https: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct XaaUser {
    data: XaaUserData,
}

#[derive(Debug, Clone, Serialize)]
struct XaaUserData {
    id: String,
    username: String,
    name: String,
    profile_image_url: String,
    protected: bool,
    verified: bool,
    /// X's X Activity API users carry their counts (docs/protocols.md A8.3).
    public_metrics: XaaMetrics,
}

#[derive(Debug, Clone, Serialize)]
struct XaaMetrics {
    followers_count: u64,
    following_count: u64,
    tweet_count: u64,
    listed_count: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn v2_json_renders_requested_fields_only() {
        let mut user = SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12");
        user.followers_count = 1146;
        user.location = Some("San Francisco, CA".into());
        let plain = user.v2_json(&[]);
        assert_eq!(
            plain,
            json!({"id":"55125386","name":"Elizabeth Fuentes","username":"ElizabethFue12"})
        );
        let rich = user.v2_json(&[
            "public_metrics".into(),
            "location".into(),
            "entities".into(),
        ]);
        assert_eq!(rich["public_metrics"]["followers_count"], 1146);
        assert_eq!(rich["location"], "San Francisco, CA");
        assert!(rich.get("entities").is_none());
    }

    #[test]
    fn legacy_user_uses_screen_name_and_counts() {
        let mut user = SandboxUser::new("1", "A", "a");
        user.following_count = 7;
        let json = serde_json::to_value(user.legacy()).unwrap();
        assert_eq!(json["screen_name"], "a");
        assert_eq!(json["friends_count"], 7);
        assert_eq!(json["created_timestamp"], "1422555269340");
        assert!(json.get("location").is_none());
    }
}
