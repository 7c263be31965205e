//! Agent content → readable plain text for an X DM.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;

/// Renders the content of an agent's chat message as the plain text a customer should read.
///
/// * `text/plain`: unchanged.
/// * `text/markdown` (what the agent workspace sends): formatting removed, links kept as
///   `text (url)`, list items bulleted or numbered, paragraphs separated by a blank line.
/// * interactive messages and `application/json`: titles, subtitles and options as lines,
///   never raw JSON.
///
/// Returns `None` when there is nothing a person could read.
pub fn render_for_x(content_type: &str, content: &str) -> Option<String> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = match mime.as_str() {
        "text/markdown" => markdown_to_text(content),
        "application/json"
        | "application/vnd.amazonaws.connect.message.interactive"
        | "application/vnd.amazonaws.connect.message.interactive.response" => json_to_text(content),
        _ => content.to_owned(),
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn markdown_to_text(md: &str) -> String {
    let mut out = String::new();
    // Per open list: the next number for ordered lists, None for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    // Per open link/image: its destination and where its text starts in `out`.
    let mut links: Vec<(String, usize)> = Vec::new();
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(md, options) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                block_break(&mut out);
                out.push_str("———");
                block_break(&mut out);
            }
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::Start(Tag::List(first)) => {
                if lists.is_empty() {
                    block_break(&mut out);
                } else if !out.ends_with('\n') {
                    out.push('\n');
                }
                lists.push(first);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    block_break(&mut out);
                }
            }
            Event::Start(Tag::Item) => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()));
            }
            Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
                if let Some((url, start)) = links.pop() {
                    let label = out[start..].trim().to_owned();
                    if !url.is_empty() && !same_link(&label, &url) {
                        if label.is_empty() {
                            out.push_str(&url);
                        } else {
                            out.push_str(&format!(" ({url})"));
                        }
                    }
                }
            }
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::Table,
            ) => {
                if lists.is_empty() {
                    block_break(&mut out);
                } else if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Event::End(TagEnd::TableCell) => out.push('\t'),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                while out.ends_with('\t') {
                    out.pop();
                }
                out.push('\n');
            }
            _ => {}
        }
    }
    tidy(&out)
}

/// True when a link's visible text already is its destination (autolinks, pasted URLs).
fn same_link(label: &str, url: &str) -> bool {
    let strip = |s: &str| {
        s.trim_start_matches("mailto:")
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    };
    label == url || strip(label) == strip(url)
}

/// Ends the current block with one blank line.
fn block_break(out: &mut String) {
    if out.is_empty() {
        return;
    }
    while out.ends_with(' ') || out.ends_with('\t') {
        out.pop();
    }
    if !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

/// Collapses runs of blank lines and trims line ends.
fn tidy(s: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in s.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Interactive templates (ListPicker, QuickReply, Panel, TimePicker, Carousel…) and other JSON:
/// the human-readable strings, in document order, options numbered.
fn json_to_text(content: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(content) else {
        // Not JSON after all: it is someone's text.
        return content.to_owned();
    };
    let mut lines = Vec::new();
    let root = value.pointer("/data/content").unwrap_or(&value);
    collect_readable(root, &mut lines, 0);
    if lines.is_empty() {
        flatten_scalars(&value, "", &mut lines);
    }
    lines.join("\n")
}

const TEXT_KEYS: [&str; 5] = ["title", "subtitle", "text", "content", "description"];

fn collect_readable(v: &Value, lines: &mut Vec<String>, depth: usize) {
    let Value::Object(map) = v else { return };
    for key in TEXT_KEYS {
        if let Some(Value::String(s)) = map.get(key)
            && !s.trim().is_empty()
        {
            lines.push(s.trim().to_owned());
        }
    }
    for list_key in ["elements", "options", "items", "timeslots"] {
        if let Some(Value::Array(items)) = map.get(list_key) {
            for (i, item) in items.iter().enumerate() {
                let label = match item {
                    Value::String(s) => Some(s.trim().to_owned()),
                    Value::Object(m) => {
                        let parts: Vec<&str> = TEXT_KEYS
                            .iter()
                            .filter_map(|k| m.get(*k).and_then(Value::as_str))
                            .chain(m.get("date").and_then(Value::as_str))
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect();
                        (!parts.is_empty()).then(|| parts.join(" — "))
                    }
                    _ => None,
                };
                if let Some(label) = label {
                    lines.push(format!("{}{}. {label}", "  ".repeat(depth), i + 1));
                }
            }
        }
    }
}

fn flatten_scalars(v: &Value, path: &str, lines: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path} {k}")
                };
                flatten_scalars(v, &p, lines);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| flatten_scalars(i, path, lines)),
        Value::String(s) if !s.trim().is_empty() => lines.push(format!("{path}: {}", s.trim())),
        Value::Number(n) => lines.push(format!("{path}: {n}")),
        Value::Bool(b) => lines.push(format!("{path}: {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(s: &str) -> String {
        render_for_x("text/markdown", s).unwrap_or_default()
    }

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(
            render_for_x("text/plain", "a *b* [c](d)").as_deref(),
            Some("a *b* [c](d)")
        );
        assert_eq!(render_for_x("text/plain", "   "), None);
    }

    #[test]
    fn markdown_bold_and_link_become_readable() {
        assert_eq!(
            md("Your order is **confirmed**. Track it [here](https://example.com/t/1)."),
            "Your order is confirmed. Track it here (https://example.com/t/1)."
        );
        assert_eq!(md("Connect con pago"), "Connect con pago");
        assert_eq!(
            md("see <https://aws.amazon.com>"),
            "see https://aws.amazon.com"
        );
        assert_eq!(md("[https://x.com](https://x.com)"), "https://x.com");
        assert_eq!(md("file_name_here and 2*3"), "file_name_here and 2*3");
    }

    #[test]
    fn markdown_structure() {
        assert_eq!(
            md("# Title\n\nPara one\nline two\n\n- a\n- b\n\n1. x\n2. y\n\nend"),
            "Title\n\nPara one\nline two\n\n• a\n• b\n\n1. x\n2. y\n\nend"
        );
        assert_eq!(md("`code` and ~~old~~ new"), "code and old new");
    }

    #[test]
    fn interactive_list_picker_is_rendered_as_options() {
        let content = r#"{"templateType":"ListPicker","version":"1.0","data":{"content":{"title":"What can we help with?","subtitle":"Tap to select","elements":[{"title":"Billing"},{"title":"Orders","subtitle":"Track or return"}]}}}"#;
        assert_eq!(
            render_for_x(
                "application/vnd.amazonaws.connect.message.interactive",
                content
            )
            .as_deref(),
            Some("What can we help with?\nTap to select\n1. Billing\n2. Orders — Track or return")
        );
    }

    #[test]
    fn json_is_never_sent_raw() {
        let out = render_for_x(
            "application/json",
            r#"{"order":{"id":42,"status":"shipped"}}"#,
        )
        .unwrap_or_default();
        assert!(!out.contains('{'), "{out}");
        assert!(
            out.contains("order id: 42") && out.contains("order status: shipped"),
            "{out}"
        );
    }
}
