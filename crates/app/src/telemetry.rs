//! Logging: human-readable text by default, JSON for log pipelines (CloudWatch, Loki).
//! `RUST_LOG` filters (default `info`). Message bodies and tokens are never logged at INFO.
//!
//! The text format escapes control characters in every field ([`escaped_fields`]): values that
//! came from outside cannot forge a log line or drive a terminal. Colours only when stderr is a
//! terminal (and `NO_COLOR` is not set), so log files hold no escape sequences. JSON values are
//! JSON strings, escaped by the serialiser.

mod escaped_fields;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

pub use self::escaped_fields::EscapedFields;
use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests starting several apps) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match format {
        LogFormat::Text => text_subscriber(filter, std::io::stderr, colours_on_stderr()).try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .try_init(),
    };
    // Already installed: keep the first one.
    drop(result);
}

/// Colours when stderr is a terminal and `NO_COLOR` (no-color.org) is unset or empty.
fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The text format writing to `writer`, with colours when `ansi`.
pub fn text_subscriber<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    EscapedFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .fmt_fields(EscapedFields)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("message from foreign SNS topic {0}")]
    struct Foreign(String);

    /// Logs what an attacker controls the way the handlers do: a Display field, a Debug field,
    /// a string, an error, and the message itself.
    fn log_hostile(out: &Captured, ansi: bool) {
        let hostile = "arn:aws:sns:x\n2026-12-05T00:00:00.000000Z  INFO xdm_app: admin logged in\x1b[31m red\u{202e}";
        let subscriber = text_subscriber(EnvFilter::new("info"), out.clone(), ansi).finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outbound", item = %hostile);
            let _entered = span.enter();
            tracing::warn!(topic = %hostile, debugged = ?hostile, plain = hostile, error = &Foreign(hostile.into()) as &dyn std::error::Error, "SNS message refused: {hostile}");
        });
    }

    #[test]
    fn text_logs_escape_what_came_from_outside_in_every_field() {
        let out = Captured::default();
        log_hostile(&out, false);
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "one event, one line: {text}");
        assert!(!text.contains("\n2026-12-05"), "no forged line: {text}");
        assert!(!text.contains('\x1b'), "no raw ESC without colours: {text}");
        assert!(!text.contains('\u{202e}'), "no bidi override: {text}");
        // Every field still carries the value, escaped: message, span field, Display, Debug,
        // string and error.
        assert_eq!(text.matches("\\u{1b}[31m").count(), 6, "{text}");
        assert!(text.contains("topic=arn:aws:sns:x\\n2026-12-05"), "{text}");
        assert!(
            text.contains("SNS message refused: arn:aws:sns:x\\n"),
            "{text}"
        );
        assert!(text.contains(" WARN "), "{text}");
    }

    #[test]
    fn with_colours_only_the_formatter_writes_escape_sequences() {
        let out = Captured::default();
        log_hostile(&out, true);
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains('\x1b'), "colours are on: {text}");
        assert!(
            !text.contains("\x1b[31m"),
            "the value's red is escaped: {text}"
        );
        assert_eq!(text.matches("\\u{1b}[31m").count(), 6, "{text}");
    }
}
