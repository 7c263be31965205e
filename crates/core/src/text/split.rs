use unicode_segmentation::UnicodeSegmentation;

/// Length in UTF-16 code units. Connect documents its limit in "characters" without saying
/// which; UTF-16 units are never fewer than code points, so a part that fits in UTF-16 units
/// fits under either reading.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into ordered parts of at most `max` characters (UTF-16 units).
///
/// A part ends at the last whitespace that keeps it within the limit, if that whitespace is in
/// its second half; otherwise at the last grapheme boundary that fits, so an emoji (even a flag
/// or a ZWJ family) is never cut. The whitespace where a split happens is dropped; empty parts
/// are never produced. A text that fits is returned as one part, unchanged.
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > max {
        let (cut, units) = longest_prefix(rest, max);
        let head = &rest[..cut];
        let split_at_space =
            last_whitespace(head).filter(|&ws| utf16_len(&head[..ws]) * 2 >= units);
        let (part, tail) = match split_at_space {
            Some(ws) => (head[..ws].trim_end(), rest[ws..].trim_start()),
            // A single grapheme longer than `max` cannot be split without being cut: send it
            // whole rather than corrupt it (Connect will judge it).
            None if cut == 0 => {
                let g = rest.graphemes(true).next().unwrap_or(rest);
                (g, &rest[g.len()..])
            }
            None => (head, &rest[cut..]),
        };
        // A cut inside a run of whitespace can leave a part with nothing to read in it.
        if !part.trim().is_empty() {
            parts.push(part.to_owned());
        }
        rest = tail;
    }
    if !rest.trim().is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

/// Byte index of the end of the longest run of whole graphemes within `max` UTF-16 units, and
/// that run's length in units.
fn longest_prefix(s: &str, max: usize) -> (usize, usize) {
    let mut end = 0;
    let mut units = 0;
    for (i, g) in s.grapheme_indices(true) {
        let u = utf16_len(g);
        if units + u > max {
            break;
        }
        units += u;
        end = i + g.len();
    }
    (end, units)
}

/// Byte index of the last whitespace character of `s` (the split point), if any after the start.
fn last_whitespace(s: &str) -> Option<usize> {
    s.char_indices()
        .rev()
        .find(|&(i, c)| i > 0 && c.is_whitespace())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejoin(parts: &[String]) -> String {
        parts
            .concat()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn words(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn short_text_is_one_part_unchanged() {
        assert_eq!(split_message("  Hola2 ", 1024), vec!["  Hola2 ".to_owned()]);
        assert!(split_message("", 1024).is_empty());
        assert!(split_message("   ", 1024).is_empty());
    }

    #[test]
    fn no_whitespace_only_part_when_cut_lands_in_spaces() {
        // Found by fuzzing (fuzz/fuzz_targets/text_split.rs).
        assert_eq!(split_message(" a", 1), vec!["a"]);
        assert_eq!(split_message("a    b", 2), vec!["a", "b"]);
        for part in split_message("  x  \t  y  ", 1) {
            assert!(!part.trim().is_empty(), "{part:?}");
        }
    }

    #[test]
    fn splits_at_whitespace_in_order_within_limit() {
        let text = (0..700)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let parts = split_message(&text, 1024);
        assert!(parts.len() >= 3, "{}", parts.len());
        for p in &parts {
            assert!(utf16_len(p) <= 1024);
            assert!(!p.starts_with(' ') && !p.ends_with(' '));
        }
        // words are never cut: every part starts with "w"
        assert!(parts.iter().all(|p| p.starts_with('w')));
        assert_eq!(words(&parts.join(" ")), words(&text));
    }

    #[test]
    fn emoji_are_never_cut() {
        // 3,000 characters of emoji without any whitespace: flags (2 code points each), a ZWJ
        // family and a skin-tone modifier.
        let unit = "🇻🇪👨‍👩‍👧🏽ab";
        let text = unit.repeat(3000 / unit.chars().count() + 1);
        let parts = split_message(&text, 1024);
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(utf16_len(p) <= 1024, "{}", utf16_len(p));
        }
        assert_eq!(parts.concat(), text);
        // every part is made of whole graphemes
        let graphemes: Vec<&str> = text.graphemes(true).collect();
        let rebuilt: Vec<&str> = parts.iter().flat_map(|p| p.graphemes(true)).collect();
        assert_eq!(graphemes, rebuilt);
    }

    #[test]
    fn long_word_is_cut_hard_when_no_space_in_second_half() {
        let text = format!("short {}", "x".repeat(2000));
        let parts = split_message(&text, 1024);
        assert_eq!(parts[0].len(), 1024);
        assert_eq!(rejoin(&parts).replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn multibyte_3000_chars_count_as_chars_not_bytes() {
        let text = "ñandú ".repeat(500); // 3,000 chars, 3,500 bytes
        let parts = split_message(&text, 1024);
        assert_eq!(parts.len(), 3);
        assert_eq!(words(&parts.join(" ")), words(&text));
    }
}
