//! Which `media_type` a `media_category` takes (images but GIF for `dm_image`, `image/gif` for
//! `dm_gif`, videos for `dm_video`), and the file extension a stored upload gets.

use crate::x::records::MediaCategory;

/// Whether `media_type` fits `category` (images for `dm_image`, `image/gif` for `dm_gif`,
/// videos for `dm_video`).
pub(super) fn type_fits(category: MediaCategory, media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match category {
        MediaCategory::DmImage => essence.starts_with("image/") && essence != "image/gif",
        MediaCategory::DmGif => essence == "image/gif",
        MediaCategory::DmVideo => essence.starts_with("video/"),
    }
}

pub(super) fn extension(media_type: &str) -> &'static str {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        t if t.starts_with("image/") => "jpg",
        _ => "bin",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn media_types_must_fit_their_category() {
        assert!(type_fits(MediaCategory::DmImage, "image/png"));
        assert!(type_fits(MediaCategory::DmImage, "IMAGE/JPEG"));
        assert!(!type_fits(MediaCategory::DmImage, "image/gif"));
        assert!(type_fits(MediaCategory::DmGif, "image/gif"));
        assert!(type_fits(MediaCategory::DmVideo, "video/mp4"));
        assert!(!type_fits(MediaCategory::DmVideo, "application/pdf"));
    }
}
