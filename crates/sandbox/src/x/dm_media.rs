//! The URLs of a DM's media (docs/protocols.md A2, A6), all on the sandbox's listener: photos at TON
//! paths, videos and GIFs at twimg-style paths, each mapped to a stored file.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::SandboxError;
use crate::ids;
use crate::media::files::{FileInfo, FileOrigin, MediaFile, StoredFile};
use crate::media::registry::MediaRequestKind;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::dm_spec::{MediaKind, MediaSpec};
use crate::x::payloads::{ResolvedMedia, Variant};
use crate::x::records::DeliveredMedia;

/// Path segment characters kept as they are (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) const TON_PREFIX: &str = "/1.1/ton/data/dm/";

/// Bitrates of the two mp4 variants of a video.
const LOW_BITRATE: u64 = 320_000;
const HIGH_BITRATE: u64 = 2_176_000;

/// `name` as one percent-encoded path segment.
pub(crate) fn segment(name: &str) -> String {
    let name = if name.is_empty() { "media" } else { name };
    utf8_percent_encode(name, SEGMENT).to_string()
}

fn code(len: usize) -> String {
    ids::short_code(2).chars().take(len).collect()
}

/// A seed for decoy files, different per media and role.
fn seed(media_id: &str, salt: u64) -> u64 {
    media_id.parse::<u64>().unwrap_or(0) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn decoy(shared: &Shared, name: String, content_type: &str, size: u64, seed: u64) -> FileInfo {
    let stored = StoredFile::from_spec(
        MediaFile::generated(name, content_type, size, seed),
        FileOrigin::Decoy,
    );
    lock(&shared.media).add(stored)
}

fn text_decoy(shared: &Shared, name: String, content_type: &str, text: String) -> FileInfo {
    let stored =
        StoredFile::from_spec(MediaFile::text(name, content_type, text), FileOrigin::Decoy);
    lock(&shared.media).add(stored)
}

/// Serves `file` at the path of `url` when `url` is on this listener's port.
fn serve_at(shared: &Shared, url: &str, file: &FileInfo) {
    let Ok(parsed) = url::Url::parse(url) else {
        return;
    };
    let port = shared
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok());
    if parsed.port_or_known_default() != port {
        return;
    }
    let path = parsed.path();
    let kind = if path.starts_with(TON_PREFIX) {
        MediaRequestKind::Ton
    } else {
        MediaRequestKind::Public
    };
    lock(&shared.media).register_path(path, &file.file_id, kind);
}

fn known_file(shared: &Shared, file_id: &str) -> Result<FileInfo, SandboxError> {
    lock(&shared.media)
        .get(file_id)
        .map(|f| f.info.clone())
        .ok_or_else(|| SandboxError::invalid("media", format!("unknown file {file_id}")))
}

/// Decides every URL of `spec` in DM `dm_id` and makes the sandbox serve them.
pub(crate) fn resolve(
    shared: &Shared,
    dm_id: &str,
    spec: &MediaSpec,
) -> Result<(ResolvedMedia, DeliveredMedia), SandboxError> {
    let media_id = spec
        .media_id
        .clone()
        .unwrap_or_else(|| shared.snowflake.next());
    let base = &shared.base_url;
    let main = match &spec.file_id {
        Some(id) => known_file(shared, id)?,
        None => {
            let (name, content_type, size) = match spec.kind {
                MediaKind::Photo => (format!("{}.jpg", code(8)), "image/jpeg", 4096),
                MediaKind::Video => (format!("{}.mp4", code(43)), "video/mp4", 256 * 1024),
                MediaKind::AnimatedGif => (format!("{}.mp4", code(43)), "video/mp4", 64 * 1024),
            };
            decoy(shared, name, content_type, size, seed(&media_id, 1))
        }
    };
    let mut urls = Vec::new();
    let mut serve = |url: String, file: &FileInfo| {
        serve_at(shared, &url, file);
        urls.push((url.clone(), file.file_id.clone()));
        url
    };
    let name = segment(&main.name);
    let (main_url, media_url_https, variants) = match spec.kind {
        MediaKind::Photo => {
            let url = spec
                .url
                .clone()
                .unwrap_or_else(|| format!("{base}{TON_PREFIX}{dm_id}/{media_id}/{name}"));
            let url = serve(url, &main);
            (url.clone(), url, Vec::new())
        }
        MediaKind::Video => {
            let file = code(43);
            let best = spec
                .url
                .clone()
                .unwrap_or_else(|| format!("{base}/dm_video/{media_id}/vid/720x1280/{name}"));
            let best = serve(best, &main);
            let low_file = match &spec.low_file_id {
                Some(id) => known_file(shared, id)?,
                None => decoy(
                    shared,
                    format!("{file}.mp4"),
                    "video/mp4",
                    16 * 1024,
                    seed(&media_id, 2),
                ),
            };
            let low = serve(
                format!("{base}/dm_video/{media_id}/vid/180x320/{file}.mp4"),
                &low_file,
            );
            let playlist = text_decoy(
                shared,
                format!("{file}.m3u8"),
                "application/x-mpegURL",
                format!(
                    "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH={LOW_BITRATE},BANDWIDTH={LOW_BITRATE},RESOLUTION=180x320,CODECS=\"mp4a.40.2,avc1.4d001e\"\n/dm_video/{media_id}/pl/180x320/{file}.m3u8\n#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH={HIGH_BITRATE},BANDWIDTH={HIGH_BITRATE},RESOLUTION=720x1280,CODECS=\"mp4a.40.2,avc1.640020\"\n/dm_video/{media_id}/pl/720x1280/{file}.m3u8\n"
                ),
            );
            let hls = serve(
                format!("{base}/dm_video/{media_id}/pl/{file}.m3u8"),
                &playlist,
            );
            let preview = decoy(
                shared,
                format!("{file}.jpg"),
                "image/jpeg",
                2048,
                seed(&media_id, 3),
            );
            let preview = serve(
                format!("{base}/dm_video_preview/{media_id}/img/{file}.jpg"),
                &preview,
            );
            // The highest bitrate is in the middle: neither the first nor the last variant.
            let variants = vec![
                Variant {
                    bitrate: Some(LOW_BITRATE),
                    content_type: "video/mp4".into(),
                    url: low,
                },
                Variant {
                    bitrate: Some(HIGH_BITRATE),
                    content_type: "video/mp4".into(),
                    url: best.clone(),
                },
                Variant {
                    bitrate: None,
                    content_type: "application/x-mpegURL".into(),
                    url: hls,
                },
            ];
            (best, preview, variants)
        }
        MediaKind::AnimatedGif => {
            let file = code(43);
            let mp4 = spec
                .url
                .clone()
                .unwrap_or_else(|| format!("{base}/dm_gif/{media_id}/{name}"));
            let mp4 = serve(mp4, &main);
            let preview = decoy(
                shared,
                format!("{file}.jpg"),
                "image/jpeg",
                2048,
                seed(&media_id, 4),
            );
            let preview = serve(
                format!("{base}/dm_gif_preview/{media_id}/{file}.jpg"),
                &preview,
            );
            let variants = vec![Variant {
                bitrate: Some(0),
                content_type: "video/mp4".into(),
                url: mp4.clone(),
            }];
            (mp4, preview, variants)
        }
    };
    let tco_url = format!("https://t.co/{}", code(10));
    let resolved = ResolvedMedia {
        kind: spec.kind,
        media_id: media_id.clone(),
        tco_url: tco_url.clone(),
        media_url_https,
        aspect_ratio: match spec.kind {
            MediaKind::Photo | MediaKind::AnimatedGif => [1, 1],
            MediaKind::Video => [9, 16],
        },
        duration_millis: (spec.kind == MediaKind::Video).then_some(5_000),
        variants,
    };
    let delivered = DeliveredMedia {
        kind: spec.kind,
        media_id,
        tco_url,
        url: main_url,
        file_id: main.file_id,
        size: main.size,
        sha256: main.sha256,
        content_type: main.content_type,
        urls,
    };
    Ok((resolved, delivered))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_become_single_path_segments() {
        assert_eq!(segment("receipt.jpg"), "receipt.jpg");
        assert_eq!(segment("my photo/ñ.png"), "my%20photo%2F%C3%B1.png");
        assert_eq!(segment(""), "media");
    }
}
