//! `XDM_STORE`: which backend holds the state, as one string.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::sqlite::{SqliteOptions, Synchronous};

/// The accepted forms, for error messages.
const FORMS: &str = "sqlite:PATH (e.g. sqlite:./xdm-connect.db, options as \
    sqlite:PATH?synchronous=full&busy_timeout_ms=5000&deferred_commit_ms=50&group_commit_us=1000), \
    sqlite::memory: or \
    dynamodb:TABLE_PREFIX";

/// A parsed `XDM_STORE` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH[?OPTIONS]` or `sqlite::memory:`.
    Sqlite {
        location: SqliteLocation,
        options: SqliteOptions,
    },
    /// `dynamodb:TABLE_PREFIX`: the tables are `<prefix>sessions`, `<prefix>profiles`,
    /// `<prefix>jobs`, `<prefix>lanes` and `<prefix>records` (docs/aws-tables.md).
    DynamoDb { table_prefix: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    File(PathBuf),
    /// `sqlite::memory:`: a private database, lost on exit.
    Memory,
}

/// Why an `XDM_STORE` value was refused. The messages never repeat the value itself beyond
/// its scheme: a mistyped database URL may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    #[error("XDM_STORE is empty; expected {FORMS}")]
    Empty,
    #[error("XDM_STORE has no scheme; expected {FORMS}")]
    NoScheme,
    #[error("XDM_STORE uses the unknown scheme {scheme:?}; expected {FORMS}")]
    UnknownScheme { scheme: String },
    #[error("XDM_STORE=sqlite: needs a file path, e.g. sqlite:./xdm-connect.db or sqlite::memory:")]
    MissingPath,
    #[error(
        "XDM_STORE uses sqlite://…, which is ambiguous; write sqlite:PATH (sqlite:./data.db or sqlite:/var/lib/xdm-connect/data.db)"
    )]
    SqliteAuthority,
    #[error("XDM_STORE has an invalid SQLite option {option:?}: {reason}")]
    BadSqliteOption { option: String, reason: String },
    #[error(
        "XDM_STORE=dynamodb: needs a table prefix of letters, digits, '_', '-' or '.' (at most 200 characters), e.g. dynamodb:xdm-connect-"
    )]
    BadTablePrefix,
}

impl StoreUrl {
    /// Parses
    /// `sqlite:PATH[?synchronous=normal|full&busy_timeout_ms=N&deferred_commit_ms=N&group_commit_us=N]`,
    /// `sqlite::memory:` or
    /// `dynamodb:TABLE_PREFIX`. The scheme is case-insensitive; the rest is taken as written
    /// (a path cannot contain `?`).
    pub fn parse(value: &str) -> Result<Self, StoreUrlError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(StoreUrlError::Empty);
        }
        let Some((scheme, rest)) = value.split_once(':') else {
            return Err(StoreUrlError::NoScheme);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => parse_sqlite(rest),
            "dynamodb" => {
                let ok = !rest.is_empty()
                    && rest.len() <= 200
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                if ok {
                    Ok(StoreUrl::DynamoDb {
                        table_prefix: rest.to_owned(),
                    })
                } else {
                    Err(StoreUrlError::BadTablePrefix)
                }
            }
            _ => Err(StoreUrlError::UnknownScheme {
                // Only a short, printable scheme is echoed back.
                scheme: scheme
                    .chars()
                    .take(32)
                    .filter(|c| !c.is_control())
                    .collect(),
            }),
        }
    }

    /// `sqlite::memory:`.
    pub fn sqlite_memory() -> Self {
        StoreUrl::Sqlite {
            location: SqliteLocation::Memory,
            options: SqliteOptions::default(),
        }
    }

    /// `sqlite:PATH` with the default options.
    pub fn sqlite_file(path: impl Into<PathBuf>) -> Self {
        StoreUrl::Sqlite {
            location: SqliteLocation::File(path.into()),
            options: SqliteOptions::default(),
        }
    }
}

fn parse_sqlite(rest: &str) -> Result<StoreUrl, StoreUrlError> {
    if rest.starts_with("//") {
        return Err(StoreUrlError::SqliteAuthority);
    }
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreUrlError::MissingPath);
    }
    let location = if path == ":memory:" {
        SqliteLocation::Memory
    } else {
        SqliteLocation::File(PathBuf::from(path))
    };
    let mut options = SqliteOptions::default();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let bad = |reason: &str| StoreUrlError::BadSqliteOption {
            option: pair.chars().take(64).collect(),
            reason: reason.to_owned(),
        };
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=VALUE"))?;
        let number = |unit: &str| {
            value
                .parse::<u64>()
                .map_err(|_| bad(&format!("expected a number of {unit}")))
        };
        match name {
            "synchronous" => {
                options.synchronous = match value.to_ascii_lowercase().as_str() {
                    "normal" => Synchronous::Normal,
                    "full" => Synchronous::Full,
                    _ => return Err(bad("expected normal or full")),
                };
            }
            "busy_timeout_ms" => {
                options.busy_timeout = Duration::from_millis(number("milliseconds")?);
            }
            "deferred_commit_ms" => {
                let ms = number("milliseconds")?;
                if ms > 1_000 {
                    return Err(bad("at most 1000 milliseconds"));
                }
                options.deferred_commit_within = Duration::from_millis(ms);
            }
            "group_commit_us" => {
                let us = number("microseconds")?;
                // A group waits at most 2 ms whatever the window: a longer one only delays.
                if us > 2_000 {
                    return Err(bad("at most 2000 microseconds"));
                }
                options.group_commit_window = Duration::from_micros(us);
            }
            _ => {
                return Err(bad(
                    "known options are synchronous, busy_timeout_ms, deferred_commit_ms and group_commit_us",
                ));
            }
        }
    }
    Ok(StoreUrl::Sqlite { location, options })
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    /// The canonical form, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite { location, options } => {
                match location {
                    SqliteLocation::File(path) => write!(f, "sqlite:{}", path.display())?,
                    SqliteLocation::Memory => f.write_str("sqlite::memory:")?,
                }
                let defaults = SqliteOptions::default();
                let mut sep = '?';
                if options.synchronous != defaults.synchronous {
                    write!(f, "{sep}synchronous={}", options.synchronous.as_str())?;
                    sep = '&';
                }
                if options.busy_timeout != defaults.busy_timeout {
                    write!(
                        f,
                        "{sep}busy_timeout_ms={}",
                        options.busy_timeout.as_millis()
                    )?;
                    sep = '&';
                }
                if options.deferred_commit_within != defaults.deferred_commit_within {
                    write!(
                        f,
                        "{sep}deferred_commit_ms={}",
                        options.deferred_commit_within.as_millis()
                    )?;
                    sep = '&';
                }
                if options.group_commit_window != defaults.group_commit_window {
                    write!(
                        f,
                        "{sep}group_commit_us={}",
                        options.group_commit_window.as_micros()
                    )?;
                }
                Ok(())
            }
            StoreUrl::DynamoDb { table_prefix } => write!(f, "dynamodb:{table_prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> StoreUrl {
        StoreUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            ok("sqlite:./xdm-connect.db"),
            StoreUrl::sqlite_file("./xdm-connect.db")
        );
        assert_eq!(
            ok("sqlite:/var/lib/xdm/data.db"),
            StoreUrl::sqlite_file("/var/lib/xdm/data.db")
        );
        assert_eq!(ok("sqlite:data.db"), StoreUrl::sqlite_file("data.db"));
        assert_eq!(ok("SQLite:data.db"), StoreUrl::sqlite_file("data.db"));
        assert_eq!(ok("  sqlite:data.db\n"), StoreUrl::sqlite_file("data.db"));
        assert_eq!(ok("sqlite::memory:"), StoreUrl::sqlite_memory());
    }

    #[test]
    fn sqlite_options() {
        assert_eq!(
            ok("sqlite:x.db?synchronous=full&busy_timeout_ms=250"),
            StoreUrl::Sqlite {
                location: SqliteLocation::File("x.db".into()),
                options: SqliteOptions {
                    synchronous: Synchronous::Full,
                    busy_timeout: Duration::from_millis(250),
                    ..SqliteOptions::default()
                },
            }
        );
        assert_eq!(
            ok("sqlite:x.db?synchronous=NORMAL"),
            StoreUrl::sqlite_file("x.db")
        );
        assert!(matches!(
            StoreUrl::parse("sqlite:x.db?synchronous=off"),
            Err(StoreUrlError::BadSqliteOption { .. })
        ));
        assert!(matches!(
            StoreUrl::parse("sqlite:x.db?cache=shared"),
            Err(StoreUrlError::BadSqliteOption { .. })
        ));
        assert!(matches!(
            StoreUrl::parse("sqlite:x.db?busy_timeout_ms=soon"),
            Err(StoreUrlError::BadSqliteOption { .. })
        ));
        assert_eq!(
            ok("sqlite:x.db?group_commit_us=0"),
            StoreUrl::Sqlite {
                location: SqliteLocation::File("x.db".into()),
                options: SqliteOptions {
                    group_commit_window: Duration::ZERO,
                    ..SqliteOptions::default()
                },
            }
        );
        assert!(matches!(
            StoreUrl::parse("sqlite:x.db?group_commit_us=2001"),
            Err(StoreUrlError::BadSqliteOption { .. })
        ));
    }

    #[test]
    fn dynamodb_prefix() {
        assert_eq!(
            ok("dynamodb:xdm-connect-prod."),
            StoreUrl::DynamoDb {
                table_prefix: "xdm-connect-prod.".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("dynamodb:"),
            Err(StoreUrlError::BadTablePrefix)
        );
        assert_eq!(
            StoreUrl::parse("dynamodb:bad prefix"),
            Err(StoreUrlError::BadTablePrefix)
        );
    }

    #[test]
    fn refusals_name_the_setting_and_the_forms_without_echoing_secrets() {
        assert_eq!(StoreUrl::parse(""), Err(StoreUrlError::Empty));
        assert_eq!(StoreUrl::parse("./data.db"), Err(StoreUrlError::NoScheme));
        assert_eq!(StoreUrl::parse("sqlite:"), Err(StoreUrlError::MissingPath));
        assert_eq!(
            StoreUrl::parse("sqlite:?synchronous=full"),
            Err(StoreUrlError::MissingPath)
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db"),
            Err(StoreUrlError::SqliteAuthority)
        );
        let e = StoreUrl::parse("postgres://admin:hunter2@db/xdm")
            .err()
            .unwrap_or_else(|| panic!("accepted postgres"));
        assert_eq!(
            e,
            StoreUrlError::UnknownScheme {
                scheme: "postgres".into()
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("XDM_STORE"), "{msg}");
        assert!(msg.contains("sqlite:PATH"), "{msg}");
        assert!(msg.contains("dynamodb:TABLE_PREFIX"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sqlite:./xdm-connect.db",
            "sqlite::memory:",
            "sqlite:x.db?synchronous=full",
            "sqlite:x.db?synchronous=full&busy_timeout_ms=250",
            "sqlite:x.db?busy_timeout_ms=250",
            "sqlite:x.db?busy_timeout_ms=250&deferred_commit_ms=0",
            "sqlite:x.db?deferred_commit_ms=200",
            "sqlite:x.db?deferred_commit_ms=200&group_commit_us=0",
            "sqlite:x.db?group_commit_us=500",
            "dynamodb:xdm-",
        ] {
            assert_eq!(ok(s).to_string(), s);
            assert_eq!(ok(&ok(s).to_string()), ok(s));
        }
    }
}
