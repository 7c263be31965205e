//! Agent content → X text: `xdm_core::text::render_for_x(content_type, content)` with arbitrary
//! content types and contents (markdown through pulldown-cmark, JSON and interactive templates,
//! anything else verbatim).
//!
//! Input: first byte selects the content type from `CONTENT_TYPES`; past the table, the first line
//! of the rest is the content type and the remainder the content. Asserted on top of "no panic":
//! * a result is never empty and never has surrounding whitespace;
//! * types rendered verbatim come back as the content, trimmed (`None` when blank);
//! * markdown output has no trailing whitespace on any line and no run of blank lines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdm_core::text::render_for_x;

const CONTENT_TYPES: [&str; 12] = [
    "text/plain",
    "text/markdown",
    "text/markdown; charset=UTF-8",
    "TEXT/MARKDOWN",
    "application/json",
    "application/vnd.amazonaws.connect.message.interactive",
    "application/vnd.amazonaws.connect.message.interactive.response",
    " Application/JSON ;x=y",
    "application/vnd.amazonaws.connect.event.typing",
    "application/vnd.amazonaws.connect.message.attachment",
    "",
    ";",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (content_type, content) = match CONTENT_TYPES.get(usize::from(selector)) {
        Some(ct) => (*ct, rest),
        None => rest.split_once('\n').unwrap_or((rest, "")),
    };
    let out = render_for_x(content_type, content);
    if let Some(text) = &out {
        assert!(!text.is_empty() && text.trim() == text, "{text:?}");
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/markdown" => {
            let text = out.unwrap_or_default();
            for line in text.split('\n') {
                assert_eq!(line, line.trim_end(), "trailing whitespace in {text:?}");
            }
            assert!(!text.contains("\n\n\n"), "blank-line run in {text:?}");
        }
        "application/json"
        | "application/vnd.amazonaws.connect.message.interactive"
        | "application/vnd.amazonaws.connect.message.interactive.response" => {}
        _ => {
            let trimmed = content.trim();
            assert_eq!(out.as_deref(), (!trimmed.is_empty()).then_some(trimmed));
        }
    }
});
