//! Records: small named values with a version, shared by every process on one store.
//!
//! What the bridge keeps besides sessions, profiles and jobs: the OAuth 2.0 tokens of business
//! accounts, the leases that let one process at a time refresh them, the remembered X webhook id,
//! the reconciler's cursor per account. Each is one record, written with a compare-and-set on
//! its version (see [`Store::put_record`](crate::ports::Store::put_record)). Values may hold
//! secrets: backends and callers never log them.

/// A small named value with a version (see [`Store::put_record`](crate::ports::Store::put_record)).
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    /// May hold secrets (tokens): never logged, and redacted by `Debug`.
    pub value: String,
    /// 1 for a new record, + 1 on every write.
    pub version: u64,
    /// The `now_ms` of the last write.
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("key", &self.key)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("version", &self.version)
            .field("updated_at_ms", &self.updated_at_ms)
            .finish()
    }
}

/// The condition of a record write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Only if no record has the key.
    Absent,
    /// Only if the record exists with exactly this version.
    Version(u64),
    /// Unconditionally.
    Any,
}

impl Expect {
    /// Whether a record whose current version is `current` (`None`: absent) meets the condition.
    /// The reference semantics the backends implement as one conditional write.
    pub fn holds(self, current: Option<u64>) -> bool {
        match self {
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
            Expect::Any => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_semantics() {
        assert!(Expect::Absent.holds(None));
        assert!(!Expect::Absent.holds(Some(1)));
        assert!(Expect::Version(3).holds(Some(3)));
        assert!(!Expect::Version(3).holds(Some(4)));
        assert!(!Expect::Version(3).holds(None));
        assert!(Expect::Any.holds(None));
        assert!(Expect::Any.holds(Some(9)));
    }

    #[test]
    fn values_do_not_leak_through_debug() {
        let r = Record {
            key: "x/oauth2/token/1".into(),
            value: "{\"access_token\":\"secret\"}".into(),
            version: 2,
            updated_at_ms: 5,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("x/oauth2/token/1"), "{shown}");
    }
}
