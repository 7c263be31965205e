//! The text an agent sees for a DM.
//!
//! * The t.co link that points at the attached media is removed, with the whitespace that led to
//!   it (when a photo is attached X appends its link to the text: `"Here is the receipt:
//!   https://t.co/J9dz8mhUqz"` → `"Here is the receipt:"`). Only that link: the AWS sample stripped
//!   every URL (docs/aws.md, Migrating from the AWS sample).
//! * Every other t.co link is **expanded** to its `expanded_url`, so the agent sees where it leads
//!   (`https://t.co/abc` → `https://example.com/order/42`) without following a redirector. Links the
//!   customer typed that are not t.co links stay as they are, and so does a t.co link whose
//!   `expanded_url` is missing or not http(s).
//! * The media link is kept (as t.co) when the media itself could not be read, so the agent at
//!   least sees that something was attached.
//!
//! Entities are located by their `indices` (Unicode code points) when the text at those indices is
//! the entity's `url`; otherwise by searching the text for the `url` — some payloads count
//! differently (UTF-16 units) or carry no indices at all.

use std::ops::Range;

use super::model::UrlEntity;

/// The media's own link, as the attachment describes it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MediaLink<'a> {
    pub url: Option<&'a str>,
    pub indices: Option<(usize, usize)>,
    /// Remove the link (the media was read); when false it is kept as t.co, not expanded.
    pub strip: bool,
}

struct Span {
    bytes: Range<usize>,
    /// `None`: remove (the media link).
    replacement: Option<String>,
}

/// The agent's text. `media` describes the attachment's link, when the DM has an attachment.
pub(crate) fn agent_text(text: &str, urls: &[UrlEntity], media: Option<MediaLink<'_>>) -> String {
    // Byte offset of every code point, plus the end.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut spans: Vec<Span> = Vec::new();

    let media_url = media.and_then(|m| m.url).filter(|u| !u.is_empty());
    let media_indices = media.and_then(|m| m.indices);
    let is_media_entity = |e: &UrlEntity| {
        let by_url = media_url.is_some() && e.url.as_deref() == media_url;
        let by_indices = media_indices.is_some() && e.indices == media_indices;
        by_url || by_indices
    };

    if media.is_some_and(|m| m.strip) {
        let found = urls
            .iter()
            .find(|e| is_media_entity(e))
            .and_then(|e| locate(text, &offsets, e.url.as_deref()?, e.indices, &spans))
            .or_else(|| locate(text, &offsets, media_url?, media_indices, &spans));
        if let Some(bytes) = found {
            spans.push(Span {
                bytes,
                replacement: None,
            });
        }
    }

    for entity in urls {
        if is_media_entity(entity) {
            continue;
        }
        let (Some(url), Some(expanded)) = (entity.url.as_deref(), entity.expanded_url.as_deref())
        else {
            continue;
        };
        if !is_tco(url) || !is_http(expanded) || expanded == url {
            continue;
        }
        if let Some(bytes) = locate(text, &offsets, url, entity.indices, &spans) {
            spans.push(Span {
                bytes,
                replacement: Some(expanded.to_owned()),
            });
        }
    }

    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort_by_key(|s| s.bytes.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut removed = false;
    for span in spans {
        out.push_str(&text[at..span.bytes.start]);
        match span.replacement {
            Some(r) => out.push_str(&r),
            None => {
                // Take the whitespace that led to the link with it.
                out.truncate(out.trim_end().len());
                removed = true;
            }
        }
        at = span.bytes.end;
    }
    out.push_str(&text[at..]);
    if removed { out.trim().to_owned() } else { out }
}

/// The byte range of `url` in `text`: at `indices` when they point at it, else its first
/// occurrence that no earlier span claims.
fn locate(
    text: &str,
    offsets: &[usize],
    url: &str,
    indices: Option<(usize, usize)>,
    taken: &[Span],
) -> Option<Range<usize>> {
    if url.is_empty() {
        return None;
    }
    let free = |r: &Range<usize>| {
        taken
            .iter()
            .all(|s| r.end <= s.bytes.start || r.start >= s.bytes.end)
    };
    if let Some((start, end)) = indices
        && start < end
        && let (Some(&b0), Some(&b1)) = (offsets.get(start), offsets.get(end))
        && text.get(b0..b1) == Some(url)
        && free(&(b0..b1))
    {
        return Some(b0..b1);
    }
    text.match_indices(url)
        .map(|(b, m)| b..b + m.len())
        .find(|r| free(r))
}

fn is_tco(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://t.co/") || lower.starts_with("http://t.co/")
}

fn is_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entity(url: &str, expanded: &str, indices: Option<(usize, usize)>) -> UrlEntity {
        UrlEntity {
            url: Some(url.into()),
            expanded_url: Some(expanded.into()),
            indices,
        }
    }

    const MEDIA: &str = "https://t.co/J9dz8mhUqz";
    const MEDIA_EXPANDED: &str = "https://twitter.com/messages/media/1547580822294646788";

    fn media(indices: Option<(usize, usize)>) -> Option<MediaLink<'static>> {
        Some(MediaLink {
            url: Some(MEDIA),
            indices,
            strip: true,
        })
    }

    #[test]
    fn strips_the_trailing_media_link() {
        let text = "Here is the receipt: https://t.co/J9dz8mhUqz";
        let urls = [entity(MEDIA, MEDIA_EXPANDED, Some((21, 44)))];
        assert_eq!(
            agent_text(text, &urls, media(Some((21, 44)))),
            "Here is the receipt:"
        );
    }

    #[test]
    fn a_media_only_message_becomes_empty() {
        let urls = [entity(MEDIA, MEDIA_EXPANDED, Some((0, 23)))];
        assert_eq!(agent_text(MEDIA, &urls, media(Some((0, 23)))), "");
    }

    #[test]
    fn keeps_and_expands_other_links() {
        // "Mira 🇻🇪 https://t.co/abc y https://t.co/J9dz8mhUqz": the flag is 2 code points
        // (4 UTF-16 units), so code point indices matter.
        let text = "Mira 🇻🇪 https://t.co/abc y https://t.co/J9dz8mhUqz";
        let urls = [
            entity(
                "https://t.co/abc",
                "https://example.com/order/42",
                Some((8, 24)),
            ),
            entity(MEDIA, MEDIA_EXPANDED, Some((27, 50))),
        ];
        assert_eq!(
            agent_text(text, &urls, media(Some((27, 50)))),
            "Mira 🇻🇪 https://example.com/order/42 y"
        );
    }

    #[test]
    fn matches_the_media_entity_by_indices_when_urls_differ() {
        let text = "look https://t.co/other";
        let urls = [entity("https://t.co/other", MEDIA_EXPANDED, Some((5, 23)))];
        let m = Some(MediaLink {
            url: Some("https://t.co/not-in-text"),
            indices: Some((5, 23)),
            strip: true,
        });
        assert_eq!(agent_text(text, &urls, m), "look");
    }

    #[test]
    fn falls_back_to_searching_when_indices_are_off() {
        // Indices counted in UTF-16 units (the emoji is 2 units, 1 code point).
        let text = "😀 https://t.co/J9dz8mhUqz";
        let urls = [entity(MEDIA, MEDIA_EXPANDED, Some((3, 26)))];
        assert_eq!(agent_text(text, &urls, media(Some((3, 26)))), "😀");
        // No entities at all.
        assert_eq!(agent_text(text, &[], media(None)), "😀");
    }

    #[test]
    fn strips_a_media_link_in_the_middle_without_doubling_spaces() {
        let text = "before https://t.co/J9dz8mhUqz after";
        assert_eq!(agent_text(text, &[], media(None)), "before after");
        let text = "line one\nhttps://t.co/J9dz8mhUqz\nline two";
        assert_eq!(agent_text(text, &[], media(None)), "line one\nline two");
    }

    #[test]
    fn without_media_nothing_is_stripped() {
        let text = "see https://t.co/J9dz8mhUqz";
        let urls = [entity(MEDIA, "https://example.com/x", Some((4, 27)))];
        assert_eq!(agent_text(text, &urls, None), "see https://example.com/x");
    }

    #[test]
    fn an_unreadable_media_keeps_its_link_unexpanded() {
        let text = "a https://t.co/J9dz8mhUqz";
        let urls = [entity(MEDIA, MEDIA_EXPANDED, Some((2, 25)))];
        let keep = Some(MediaLink {
            url: Some(MEDIA),
            indices: Some((2, 25)),
            strip: false,
        });
        assert_eq!(agent_text(text, &urls, keep), text);
    }

    #[test]
    fn leaves_non_tco_links_and_odd_expansions_alone() {
        let text = "go to https://example.org/a and https://t.co/zz";
        let urls = [
            entity("https://example.org/a", "https://elsewhere.example/", None),
            entity("https://t.co/zz", "javascript:alert(1)", None),
        ];
        assert_eq!(agent_text(text, &urls, None), text);
    }

    #[test]
    fn survives_nonsense_indices() {
        let text = "hi https://t.co/abc";
        let urls = [
            entity("https://t.co/abc", "https://a.example/", Some((50, 10))),
            entity(
                "https://t.co/abc",
                "https://b.example/",
                Some((usize::MAX, usize::MAX)),
            ),
            entity("", "https://c.example/", Some((0, 0))),
        ];
        assert_eq!(agent_text(text, &urls, None), "hi https://a.example/");
    }
}
