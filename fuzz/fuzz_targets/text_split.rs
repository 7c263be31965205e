//! The message splitter, `xdm_core::text::split_message(text, max)`, with its documented
//! contract asserted (crates/core/src/text/split.rs).
//!
//! Input: first byte = `max` (0–255 UTF-16 units; 0 means 1), the rest = the text (UTF-8).
//! The text is also split at Connect's real limit (1,024). Asserted for every split:
//! * every part is at most `max` UTF-16 units, unless it is one grapheme longer than that;
//! * no part is empty or blank (whitespace only);
//! * a text that fits is returned unchanged as one part (none if it is blank);
//! * the parts are the text in order with only whitespace dropped between, before and after
//!   them — so the non-whitespace characters, in order, are exactly the input's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unicode_segmentation::UnicodeSegmentation;
use xdm_core::text::{CONNECT_MESSAGE_MAX_CHARS, split_message, utf16_len};

/// Where `part` starts if it follows `text[from..]` after whitespace only.
fn after_whitespace(text: &str, from: usize, part: &str) -> Option<usize> {
    let mut pos = from;
    loop {
        if text[pos..].starts_with(part) {
            return Some(pos);
        }
        let c = text[pos..].chars().next()?;
        if !c.is_whitespace() {
            return None;
        }
        pos += c.len_utf8();
    }
}

fn check(text: &str, max: usize) {
    let parts = split_message(text, max);
    let limit = max.max(1);
    for part in &parts {
        assert!(!part.is_empty(), "empty part");
        assert!(!part.trim().is_empty(), "blank part {part:?}");
        assert!(
            utf16_len(part) <= limit || part.graphemes(true).count() == 1,
            "part of {} units over max {limit}: {part:?}",
            utf16_len(part)
        );
    }
    if utf16_len(text) <= limit {
        if text.trim().is_empty() {
            assert!(parts.is_empty());
        } else {
            assert_eq!(parts, [text], "a text that fits was changed");
        }
    }
    let mut cursor = 0;
    for (i, part) in parts.iter().enumerate() {
        let start = after_whitespace(text, cursor, part)
            .unwrap_or_else(|| panic!("part {i} {part:?} is not the text after byte {cursor}"));
        cursor = start + part.len();
    }
    assert!(
        text[cursor..].trim().is_empty(),
        "text left after the last part"
    );
    let kept = parts
        .iter()
        .flat_map(|p| p.chars())
        .filter(|c| !c.is_whitespace());
    assert!(kept.eq(text.chars().filter(|c| !c.is_whitespace())));
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    check(text, usize::from(max));
    check(text, CONNECT_MESSAGE_MAX_CHARS);
});
