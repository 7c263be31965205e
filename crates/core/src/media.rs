//! Media between the platforms: the file handle the adapters pass around (a stream, never a
//! whole file in memory) and the policies of what each platform accepts.

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;

/// A file's bytes, as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// A file on its way from one platform to the other. `length` is exact: both Connect's
/// StartAttachmentUpload and X's media `initialize` need the size before the first byte.
pub struct MediaStream {
    pub file_name: String,
    pub content_type: String,
    pub length: u64,
    pub body: ByteStream,
}

impl fmt::Debug for MediaStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaStream")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// X's DM media categories (media upload v2 `media_category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XMediaCategory {
    DmImage,
    DmGif,
    DmVideo,
}

impl XMediaCategory {
    /// What a file of this category is, in the bridge's words.
    pub fn media_kind(self) -> crate::inbound::MediaKind {
        match self {
            XMediaCategory::DmImage => crate::inbound::MediaKind::Photo,
            XMediaCategory::DmGif => crate::inbound::MediaKind::AnimatedGif,
            XMediaCategory::DmVideo => crate::inbound::MediaKind::Video,
        }
    }

    /// The category for a MIME type, or `None` when X DMs cannot carry it (documents, audio…).
    pub fn for_content_type(content_type: &str) -> Option<Self> {
        match essence(content_type).as_str() {
            "image/jpeg" | "image/png" | "image/webp" | "image/bmp" | "image/tiff" => {
                Some(Self::DmImage)
            }
            "image/gif" => Some(Self::DmGif),
            "video/mp4" | "video/quicktime" => Some(Self::DmVideo),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DmImage => "dm_image",
            Self::DmGif => "dm_gif",
            Self::DmVideo => "dm_video",
        }
    }

    /// X's size limits (docs/protocols.md A5): images 5 MB, GIFs 15 MB, videos 512 MB.
    pub fn max_bytes(self) -> u64 {
        match self {
            Self::DmImage => 5 * MB,
            Self::DmGif => 15 * MB,
            Self::DmVideo => 512 * MB,
        }
    }

    /// "an image", "a GIF", "a video".
    pub fn with_article(self) -> &'static str {
        match self {
            Self::DmImage => "an image",
            Self::DmGif => "a GIF",
            Self::DmVideo => "a video",
        }
    }
}

const MB: u64 = 1024 * 1024;

/// What Amazon Connect chat attachments accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// MIME types (lower case, no parameters).
    pub allowed_types: Vec<String>,
    pub max_bytes: u64,
}

/// Connect's documented attachment types (.csv .doc .docx .jpeg .jpg .pdf .png .ppt .pptx .txt
/// .wav .xls .xlsx) plus the video types newer instances accept (.mp4 .mov) — the list is an
/// instance setting in practice, so it is configurable (`XDM_CONNECT_ATTACHMENT_TYPES`), and a
/// type Connect refuses anyway produces a note to the agent, never a lost message.
pub const DEFAULT_ATTACHMENT_TYPES: &[&str] = &[
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "image/jpeg",
    "application/pdf",
    "image/png",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text/plain",
    "audio/wav",
    "audio/x-wav",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "video/mp4",
    "video/quicktime",
];

/// Connect's per-attachment limit: 20 MB.
pub const CONNECT_MAX_ATTACHMENT_BYTES: u64 = 20 * MB;

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            allowed_types: DEFAULT_ATTACHMENT_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_bytes: CONNECT_MAX_ATTACHMENT_BYTES,
        }
    }
}

impl AttachmentPolicy {
    pub fn allows(&self, content_type: &str) -> bool {
        let ct = essence(content_type);
        self.allowed_types.contains(&ct)
    }
}

/// The MIME type without parameters, lower case (`Image/JPEG; q=1` → `image/jpeg`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A file name extension for a MIME type (`image/jpeg` → `jpg`).
pub fn extension_for(content_type: &str) -> Option<&'static str> {
    Some(match essence(content_type).as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "audio/wav" | "audio/x-wav" => "wav",
        _ => return None,
    })
}

/// A MIME type from a file name's extension (`T7xt1pvd.jpg` → `image/jpeg`).
pub fn content_type_for(file_name: &str) -> Option<&'static str> {
    let ext = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "wav" => "audio/wav",
        _ => return None,
    })
}

/// Human size: "25.3 MB", "812 KB".
pub fn human_size(bytes: u64) -> String {
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_mime_type() {
        assert_eq!(
            XMediaCategory::for_content_type("image/png"),
            Some(XMediaCategory::DmImage)
        );
        assert_eq!(
            XMediaCategory::for_content_type("IMAGE/GIF"),
            Some(XMediaCategory::DmGif)
        );
        assert_eq!(
            XMediaCategory::for_content_type("video/mp4; codecs=avc1"),
            Some(XMediaCategory::DmVideo)
        );
        assert_eq!(XMediaCategory::for_content_type("application/pdf"), None);
        assert_eq!(XMediaCategory::for_content_type("audio/wav"), None);
        assert_eq!(XMediaCategory::DmImage.as_str(), "dm_image");
        assert_eq!(XMediaCategory::DmVideo.max_bytes(), 512 * 1024 * 1024);
    }

    #[test]
    fn connect_policy() {
        let p = AttachmentPolicy::default();
        assert!(p.allows("image/jpeg") && p.allows("application/pdf") && p.allows("Video/MP4"));
        assert!(!p.allows("image/gif"));
        assert_eq!(p.max_bytes, 20 * 1024 * 1024);
    }

    #[test]
    fn names_and_types() {
        assert_eq!(content_type_for("T7xt1pvd.jpg"), Some("image/jpeg"));
        assert_eq!(content_type_for("clip.MP4"), Some("video/mp4"));
        assert_eq!(content_type_for("noext"), None);
        assert_eq!(extension_for("image/jpeg"), Some("jpg"));
        assert_eq!(human_size(25 * 1024 * 1024 + 300 * 1024), "25.3 MB");
        assert_eq!(human_size(1000), "1 KB");
    }
}
