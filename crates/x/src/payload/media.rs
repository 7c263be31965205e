//! Choosing the file of a DM attachment (docs/protocols.md A2 "Choosing the file"):
//! photo → `media_url_https` (a TON URL, fetched OAuth 1.0a-signed); video → the highest-bitrate
//! `video/mp4` variant (HLS `application/x-mpegURL` and DASH variants carry no bitrate and are
//! skipped; an mp4 without a bitrate is used only when no mp4 states one); animated GIF → its mp4
//! variant (bitrate 0). The AWS sample took the first variant whatever its bitrate (docs/aws.md, Migrating from the AWS sample).

use xdm_core::inbound::{InboundMedia, MediaKind};

use super::model::{Media, Variant};

/// The media to download, or why it cannot be read.
pub(super) fn choose(media: &Media) -> Result<InboundMedia, &'static str> {
    let kind = match media.kind.as_deref() {
        Some("photo") => MediaKind::Photo,
        Some("video") => MediaKind::Video,
        Some("animated_gif") => MediaKind::AnimatedGif,
        Some(_) => return Err("unknown media type"),
        None => return Err("media without a type"),
    };
    let media_id = media
        .id_str
        .as_deref()
        .or(media.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("media without an id")?
        .to_owned();
    let (url, content_type) = match kind {
        MediaKind::Photo => {
            let url = media
                .media_url_https
                .as_deref()
                .or(media.media_url.as_deref())
                .filter(|u| !u.is_empty())
                .ok_or("photo without media_url_https")?;
            (url.to_owned(), None)
        }
        MediaKind::Video | MediaKind::AnimatedGif => {
            let variants = media
                .video_info
                .as_ref()
                .map(|v| v.variants.as_slice())
                .unwrap_or_default();
            let best = best_mp4(variants).ok_or("no mp4 variant")?;
            (
                best.url.clone().unwrap_or_default(),
                best.content_type.clone(),
            )
        }
    };
    Ok(InboundMedia {
        kind,
        media_id,
        url,
        content_type,
        sealed: None,
    })
}

fn is_mp4(v: &Variant) -> bool {
    let essence = v
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    essence.is_some_and(|c| c.eq_ignore_ascii_case("video/mp4"))
        && v.url.as_deref().is_some_and(|u| !u.is_empty())
}

fn best_mp4(variants: &[Variant]) -> Option<&Variant> {
    let mp4s = || variants.iter().filter(|v| is_mp4(v));
    // `max_by_key` keeps the last of equals; prefer the first listed instead.
    let with_bitrate = mp4s()
        .filter_map(|v| v.bitrate.map(|b| (b, v)))
        .fold(None::<(u64, &Variant)>, |best, (b, v)| match best {
            Some((bb, _)) if bb >= b => best,
            _ => Some((b, v)),
        })
        .map(|(_, v)| v);
    with_bitrate.or_else(|| mp4s().next())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn media(json: &str) -> Media {
        serde_json::from_str(json).unwrap()
    }

    // docs/protocols.md A2, verbatim.
    const VIDEO: &str = r#"{"type":"video","id_str":"762671519986319360",
 "media_url_https":"https://pbs.twimg.com/dm_video_preview/762671519986319360/img/nwh2ABNgZSxOmqI9RhuxjKuZ3eN7wLg8lzABjeF41bk.jpg",
 "video_info":{"aspect_ratio":[9,16],"duration_millis":1291,"variants":[
   {"bitrate":320000,"content_type":"video/mp4","url":"https://video.twimg.com/dm_video/762671519986319360/vid/180x320/Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4"},
   {"bitrate":2176000,"content_type":"video/mp4","url":"https://video.twimg.com/dm_video/762671519986319360/vid/720x1280/cVTnZqWOdFPmGS_h9AjvW3m4NqWPkQCDsXc9VOx3kIQ.mp4"},
   {"content_type":"application/x-mpegURL","url":"https://video.twimg.com/dm_video/762671519986319360/pl/AvSQ9pxR_qV1nyCGkhMH07NllAdFjSaiWEsqSCHiJD8.m3u8"}]}}"#;
    const GIF: &str = r#"{"type":"animated_gif","id_str":"762712152901836804",
 "media_url_https":"https://pbs.twimg.com/dm_gif_preview/762712152901836804/D48bbEKGhPr2F3kDOH2mhzlD3fBZuxcngHkBwcSfLvgLLUbCOS.jpg",
 "video_info":{"aspect_ratio":[61,62],"variants":[{"bitrate":0,"content_type":"video/mp4",
   "url":"https://pbs.twimg.com/dm_gif/762712152901836804/D48bbEKGhPr2F3kDOH2mhzlD3fBZuxcngHkBwcSfLvgLLUbCOS.mp4"}]}}"#;

    #[test]
    fn video_takes_the_highest_bitrate_mp4() {
        let m = choose(&media(VIDEO)).unwrap();
        assert_eq!(m.kind, MediaKind::Video);
        assert_eq!(m.media_id, "762671519986319360");
        assert_eq!(
            m.url,
            "https://video.twimg.com/dm_video/762671519986319360/vid/720x1280/cVTnZqWOdFPmGS_h9AjvW3m4NqWPkQCDsXc9VOx3kIQ.mp4"
        );
        assert_eq!(m.content_type.as_deref(), Some("video/mp4"));
    }

    #[test]
    fn gif_takes_its_mp4() {
        let m = choose(&media(GIF)).unwrap();
        assert_eq!(m.kind, MediaKind::AnimatedGif);
        assert_eq!(
            m.url,
            "https://pbs.twimg.com/dm_gif/762712152901836804/D48bbEKGhPr2F3kDOH2mhzlD3fBZuxcngHkBwcSfLvgLLUbCOS.mp4"
        );
        assert_eq!(m.content_type.as_deref(), Some("video/mp4"));
    }

    #[test]
    fn variant_order_does_not_matter_and_hls_is_never_chosen() {
        let m = choose(&media(
            r#"{"type":"video","id":1,"video_info":{"variants":[
                {"content_type":"application/x-mpegURL","url":"https://v/pl.m3u8"},
                {"bitrate":9000000,"content_type":"application/dash+xml","url":"https://v/d.mpd"},
                {"bitrate":2176000,"content_type":"video/mp4","url":"https://v/hi.mp4"},
                {"bitrate":320000,"content_type":"video/mp4","url":"https://v/lo.mp4"}]}}"#,
        ))
        .unwrap();
        assert_eq!(m.url, "https://v/hi.mp4");
        assert_eq!(m.media_id, "1");
    }

    #[test]
    fn an_mp4_without_bitrate_is_the_last_resort() {
        let m = choose(&media(
            r#"{"type":"video","id_str":"1","video_info":{"variants":[
                {"content_type":"application/x-mpegURL","url":"https://v/pl.m3u8"},
                {"content_type":"video/mp4","url":"https://v/any.mp4"}]}}"#,
        ))
        .unwrap();
        assert_eq!(m.url, "https://v/any.mp4");
    }

    #[test]
    fn photo_takes_media_url_https() {
        let m = choose(&media(
            r#"{"type":"photo","id":1547580751654203394,"id_str":"1547580751654203394",
                "media_url":"http://ton.twitter.com/x.jpg","media_url_https":"https://ton.twitter.com/x.jpg"}"#,
        ))
        .unwrap();
        assert_eq!(m.kind, MediaKind::Photo);
        assert_eq!(m.media_id, "1547580751654203394");
        assert_eq!(m.url, "https://ton.twitter.com/x.jpg");
        assert_eq!(m.content_type, None);
    }

    #[test]
    fn unusable_media_says_why() {
        assert!(choose(&media(r#"{"type":"sticker","id_str":"1"}"#)).is_err());
        assert!(choose(&media(r#"{"id_str":"1"}"#)).is_err());
        assert!(choose(&media(r#"{"type":"photo"}"#)).is_err());
        assert!(choose(&media(r#"{"type":"video","id_str":"1"}"#)).is_err());
        assert!(
            choose(&media(
                r#"{"type":"video","id_str":"1","video_info":{"variants":[{"content_type":"application/x-mpegURL","url":"u"}]}}"#
            ))
            .is_err()
        );
    }
}
