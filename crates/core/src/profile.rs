//! The customer's X profile, as shown to the agent.

use serde::{Deserialize, Serialize};

use crate::ids::XUserId;

/// What the bridge knows of an X user. Every field but the id is optional: a profile lookup
/// may fail, and a message is never held back for it (the id is the fallback name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XProfile {
    pub id: XUserId,
    /// Display name ("Elizabeth Fuentes").
    pub name: Option<String>,
    /// Handle without the `@` ("ElizabethFue12").
    pub username: Option<String>,
    pub profile_image_url: Option<String>,
    pub verified: Option<bool>,
    pub followers_count: Option<u64>,
}

impl XProfile {
    /// A profile that knows nothing but the id.
    pub fn unknown(id: XUserId) -> Self {
        Self {
            id,
            name: None,
            username: None,
            profile_image_url: None,
            verified: None,
            followers_count: None,
        }
    }

    /// True when the profile carries at least a name or a handle.
    pub fn is_known(&self) -> bool {
        self.name.is_some() || self.username.is_some()
    }

    /// The name an agent sees: the X name, else `@handle`, else the numeric id.
    pub fn display_name(&self) -> String {
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        match (name, self.username.as_deref()) {
            (Some(n), _) => n.chars().take(256).collect(),
            (None, Some(u)) => format!("@{u}"),
            (None, None) => self.id.to_string(),
        }
    }

    /// `https://x.com/<handle>` when the handle is known.
    pub fn profile_url(&self) -> Option<String> {
        self.username.as_ref().map(|u| format!("https://x.com/{u}"))
    }
}

/// A profile with the time it stops being fresh (profiles are cached for 7 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedProfile {
    pub profile: XProfile,
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> XUserId {
        XUserId::parse("55125386").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn display_name_falls_back_to_handle_then_id() {
        let mut p = XProfile::unknown(id());
        assert_eq!(p.display_name(), "55125386");
        p.username = Some("ElizabethFue12".into());
        assert_eq!(p.display_name(), "@ElizabethFue12");
        p.name = Some("  ".into());
        assert_eq!(p.display_name(), "@ElizabethFue12");
        p.name = Some("Elizabeth Fuentes".into());
        assert_eq!(p.display_name(), "Elizabeth Fuentes");
        assert_eq!(
            p.profile_url().as_deref(),
            Some("https://x.com/ElizabethFue12")
        );
    }
}
