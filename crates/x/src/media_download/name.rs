//! What a downloaded media file is called and what it is: a safe file name from the URL's last
//! path segment (with an extension from the type when it has none, or named after the media id)
//! and the content type (the answer's when it is specific, else the payload's, else from the
//! name's extension).

use url::Url;
use xdm_core::media::{content_type_for, essence, extension_for};

/// Longest file name kept from a URL.
const MAX_FILE_NAME_CHARS: usize = 128;
/// Content types that say nothing about the file.
const GENERIC_TYPES: &[&str] = &[
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "application/x-download",
    "application/force-download",
];

/// The file name (the URL's last path segment, made safe, with an extension from the type
/// when it has none) and the content type (the answer's when it is specific, else the
/// payload's, else from the name's extension).
pub fn name_and_type(
    url: &Url,
    media_id: &str,
    answered_type: Option<&str>,
    payload_type: Option<&str>,
) -> (String, String) {
    let segment = url
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    let mut name = safe_file_name(&decoded);
    if name.is_empty() {
        name = safe_file_name(&format!("x-media-{media_id}"));
    }
    let content_type = [answered_type, payload_type]
        .into_iter()
        .flatten()
        .map(essence)
        .find(|t| is_specific(t))
        .or_else(|| content_type_for(&name).map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    if !has_extension(&name)
        && let Some(ext) = extension_for(&content_type)
    {
        name = format!("{name}.{ext}");
    }
    (name, content_type)
}

/// ASCII letters, digits, `-`, `_` and inner dots; anything else becomes `_`.
fn safe_file_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .take(MAX_FILE_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('.');
    if cleaned.chars().all(|c| c == '_' || c == '.') {
        String::new()
    } else {
        cleaned.to_owned()
    }
}

fn has_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=5).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A `type/subtype` that says what the file is (not `application/octet-stream` and the like).
fn is_specific(content_type: &str) -> bool {
    content_type
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && !GENERIC_TYPES.contains(&content_type)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn names_and_types() {
        let ton = url(
            "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg",
        );
        assert_eq!(
            name_and_type(&ton, "1547580751654203394", Some("image/jpeg"), None),
            ("T7xt1pvd.jpg".into(), "image/jpeg".into())
        );
        // A generic answer type: the name decides.
        assert_eq!(
            name_and_type(&ton, "1", Some("application/octet-stream"), None),
            ("T7xt1pvd.jpg".into(), "image/jpeg".into())
        );
        let video = url(
            "https://video.twimg.com/dm_video/762671519986319360/vid/180x320/Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4?tag=1",
        );
        assert_eq!(
            name_and_type(&video, "1", None, Some("video/mp4")),
            (
                "Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4".into(),
                "video/mp4".into()
            )
        );
        // The answer's specific type wins, parameters dropped, lower case.
        assert_eq!(
            name_and_type(
                &video,
                "1",
                Some("Video/MP4; codecs=avc1"),
                Some("image/gif")
            )
            .1,
            "video/mp4"
        );
        // No extension: one from the type.
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/media/AbC123"),
                "1",
                Some("image/png"),
                None
            ),
            ("AbC123.png".into(), "image/png".into())
        );
        assert_eq!(
            name_and_type(&url("https://pbs.twimg.com/media/AbC123"), "1", None, None),
            ("AbC123".into(), "application/octet-stream".into())
        );
        // No usable segment: named after the media id; odd characters replaced.
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/"),
                "762712152901836804",
                None,
                Some("video/mp4")
            ),
            ("x-media-762712152901836804.mp4".into(), "video/mp4".into())
        );
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/a/..%2F..%2Fetc%2Fpasswd%20x.jpg"),
                "1",
                None,
                None
            ),
            ("_.._etc_passwd_x.jpg".into(), "image/jpeg".into())
        );
    }
}
