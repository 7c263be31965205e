//! [`EscapedFields`]: the text log's field formatter, which writes every field value — the
//! message included — with control characters escaped, so that nothing that came from outside
//! (a header, a JSON field of an unsigned request, an error quoting either) can start a line of
//! its own, move the cursor or colour a terminal, or reorder text.
//!
//! Escaped: C0 controls (newline, carriage return, tab, ESC, …), DEL, C1 controls, the line and
//! paragraph separators and the bidirectional formatting characters (U+061C, U+200E, U+200F,
//! U+202A–U+202E, U+2066–U+2069). Newline, carriage return and tab become `\n`, `\r`, `\t`, the
//! others `\u{…}`. Everything else is written as is; a backslash is not doubled, so `\n` in a
//! value is ambiguous to a reader but never a line break.
//!
//! Hand-written rather than `tracing-subscriber`'s own sanitisation, which escapes ESC and C1
//! in the message only and leaves newlines alone (its purpose is terminals, not log lines).
//! JSON output needs none of this: its values are JSON strings.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Formats fields as `name=value` (the message bare), separated by spaces, like
/// `tracing-subscriber`'s default, every value escaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Metadata of `log` records, already shown as the event's target and place.
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(' ')?;
            }
            if name != "message" {
                // Names are the code's own: styled when the writer takes colours.
                if self.writer.has_ansi_escapes() {
                    write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
                } else {
                    write!(self.writer, "{name}=")?;
                }
            }
            Escaping(&mut self.writer).write_fmt(value)
        })();
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.write(field, format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// A writer that escapes what must not reach a text log raw (see the module's docs).
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(must_escape) {
            self.0.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            if let Some(c) = chars.next() {
                match c {
                    '\n' => self.0.write_str("\\n")?,
                    '\r' => self.0.write_str("\\r")?,
                    '\t' => self.0.write_str("\\t")?,
                    c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
                }
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

/// Controls, line separators and bidirectional formatting characters.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` as the text log writes it.
#[cfg(test)]
pub(super) fn escaped(s: &str) -> String {
    let mut out = String::new();
    let _ = Escaping(&mut out).write_str(s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_bidi_are_escaped_the_rest_kept() {
        assert_eq!(escaped("plain ünïcode 😀 \\n"), "plain ünïcode 😀 \\n");
        assert_eq!(
            escaped("a\nb\r\tc\x1b[31md\x07\x7f\u{85}\u{9b}e"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7}\\u{7f}\\u{85}\\u{9b}e"
        );
        assert_eq!(
            escaped("x\u{202e}y\u{2066}z\u{2028}w\u{200f}"),
            "x\\u{202e}y\\u{2066}z\\u{2028}w\\u{200f}"
        );
    }
}
