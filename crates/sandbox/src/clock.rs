//! Wall-clock helpers: the ISO-8601 millisecond timestamps both platforms use, and Unix times.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2026-04-01T22:20:13.466Z` — Connect's `AbsoluteTime`, SNS's `Timestamp`, X's v2 `created_at`.
const ISO_MS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Formats `t` in UTC with millisecond precision and a `Z` suffix.
pub(crate) fn iso_ms(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(ISO_MS)
        // Formatting a UTC date with this description only fails for years outside 0..=9999.
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

pub(crate) fn now_iso_ms() -> String {
    iso_ms(now())
}

pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn now_unix_ms() -> i64 {
    unix_ms(now())
}

pub(crate) fn now_unix_secs() -> i64 {
    now().unix_timestamp()
}

/// The instant `ms` milliseconds after the Unix epoch (clamped to the epoch when out of range).
pub(crate) fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn iso_format_has_millis_and_z() {
        assert_eq!(
            iso_ms(from_unix_ms(1_775_082_013_466)),
            "2026-04-01T22:20:13.466Z"
        );
        assert_eq!(iso_ms(from_unix_ms(0)), "1970-01-01T00:00:00.000Z");
    }
}
