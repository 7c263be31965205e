//! What a simulated customer's DM is made of, as `deliver_dm` takes it ([`DmSpec`]): text, URL
//! entities, a media attachment ([`MediaSpec`]) and the envelope the webhook gets
//! ([`PayloadShape`]).

use serde::{Deserialize, Serialize};

use crate::ids;

/// Which envelope a webhook event uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadShape {
    /// Account Activity API (top-level `for_user_id`, legacy `users` map) — docs/protocols.md A2.
    #[default]
    Aaa,
    /// X Activity API (`data.payload`, v2 user objects) — docs/protocols.md A8.3.
    Xaa,
}

/// A DM from a customer to the business account, as `deliver_dm` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DmSpec {
    pub sender_id: String,
    pub text: String,
    /// Default: the business account (the webhook's `for_user_id`).
    pub recipient_id: Option<String>,
    /// Default: a fresh, increasing 19-digit snowflake.
    pub event_id: Option<String>,
    /// Default: now.
    pub created_timestamp_ms: Option<i64>,
    pub shape: PayloadShape,
    /// Include the `users` map (default true).
    pub include_users: bool,
    /// Extra URL entities; a URL missing from `text` is appended to it.
    pub urls: Vec<UrlSpec>,
    /// A media attachment; its t.co link is appended to the text, as X does.
    pub media: Option<MediaSpec>,
}

impl Default for DmSpec {
    fn default() -> Self {
        Self {
            sender_id: String::new(),
            text: String::new(),
            recipient_id: None,
            event_id: None,
            created_timestamp_ms: None,
            shape: PayloadShape::Aaa,
            include_users: true,
            urls: Vec::new(),
            media: None,
        }
    }
}

impl DmSpec {
    pub fn text(sender_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            sender_id: sender_id.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn with_event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }

    pub fn with_timestamp_ms(mut self, ms: i64) -> Self {
        self.created_timestamp_ms = Some(ms);
        self
    }

    pub fn with_shape(mut self, shape: PayloadShape) -> Self {
        self.shape = shape;
        self
    }

    pub fn without_users(mut self) -> Self {
        self.include_users = false;
        self
    }

    pub fn with_url(mut self, url: UrlSpec) -> Self {
        self.urls.push(url);
        self
    }

    pub fn with_media(mut self, media: MediaSpec) -> Self {
        self.media = Some(media);
        self
    }

    /// Adds a shortened link to `expanded_url` (appended to the text, with its URL entity).
    pub fn with_link(self, expanded_url: impl Into<String>) -> Self {
        self.with_url(UrlSpec::link(expanded_url))
    }
}

/// A URL entity (`message_data.entities.urls[]`). In JSON, `url` and `display_url` may be left
/// out: a t.co URL and the display form are made up (like [`UrlSpec::link`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlSpec {
    /// The t.co form that appears in the text.
    #[serde(default)]
    pub url: String,
    pub expanded_url: String,
    #[serde(default)]
    pub display_url: String,
}

impl UrlSpec {
    /// A link as X shortens it: a fresh `https://t.co/…` URL for `expanded_url`, displayed
    /// without its scheme (`example.com/a`).
    pub fn link(expanded_url: impl Into<String>) -> Self {
        let expanded_url = expanded_url.into();
        let display_url = Self::display(&expanded_url);
        Self {
            url: new_tco_url(),
            expanded_url,
            display_url,
        }
    }

    /// Fills a missing `url` / `display_url`.
    pub(crate) fn completed(mut self) -> Self {
        if self.url.is_empty() {
            self.url = new_tco_url();
        }
        if self.display_url.is_empty() {
            self.display_url = Self::display(&self.expanded_url);
        }
        self
    }

    /// `example.com/a`, cut after 25 characters like X.
    fn display(expanded_url: &str) -> String {
        let bare = expanded_url
            .split_once("://")
            .map_or(expanded_url, |(_, rest)| rest);
        if bare.chars().count() > 26 {
            format!("{}…", bare.chars().take(25).collect::<String>())
        } else {
            bare.to_owned()
        }
    }
}

/// A fresh `https://t.co/…` link (ten random URL-safe characters).
fn new_tco_url() -> String {
    let code: String = ids::short_code(1).chars().take(10).collect();
    format!("https://t.co/{code}")
}

/// Kinds of DM media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    #[default]
    Photo,
    Video,
    AnimatedGif,
}

/// A media attachment of a delivered DM (docs/protocols.md A2). Its URLs are served by the sandbox's
/// listener: photos at a TON path (OAuth 1.0a required), videos and GIFs at twimg-style paths.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaSpec {
    pub kind: MediaKind,
    /// Default: a fresh snowflake.
    pub media_id: Option<String>,
    /// The registered file ([`crate::SandboxHandle::add_file`]) the DM carries: the photo, the
    /// highest-bitrate mp4 variant of a video, the mp4 of a GIF. Default: a small generated file.
    pub file_id: Option<String>,
    /// A video's lower-bitrate mp4 variant. Default: a small generated decoy (so fetching the
    /// wrong variant shows in the hash).
    pub low_file_id: Option<String>,
    /// Overrides the URL of `file_id` (photo: `media_url_https`; video: the highest-bitrate
    /// variant; GIF: the mp4 variant). A URL on this sandbox's port under any host name (e.g.
    /// `http://localhost:PORT/elsewhere/x.jpg`, see `SandboxHandle::alt_base_url`) is still served
    /// — and recorded — by the sandbox, which makes "never fetched" checkable.
    pub url: Option<String>,
}

impl MediaSpec {
    /// A photo (TON URL) carrying `file_id`.
    pub fn photo(file_id: impl Into<String>) -> Self {
        Self::of(MediaKind::Photo, file_id)
    }

    /// A video with three variants (two mp4 bitrates + an HLS playlist); `file_id` is the
    /// highest-bitrate mp4, listed between the other two.
    pub fn video(file_id: impl Into<String>) -> Self {
        Self::of(MediaKind::Video, file_id)
    }

    /// An animated GIF: one mp4 variant (`bitrate: 0`) carrying `file_id`.
    pub fn animated_gif(file_id: impl Into<String>) -> Self {
        Self::of(MediaKind::AnimatedGif, file_id)
    }

    fn of(kind: MediaKind, file_id: impl Into<String>) -> Self {
        Self {
            kind,
            file_id: Some(file_id.into()),
            ..Self::default()
        }
    }

    pub fn with_media_id(mut self, media_id: impl Into<String>) -> Self {
        self.media_id = Some(media_id.into());
        self
    }

    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    pub fn with_low_file(mut self, file_id: impl Into<String>) -> Self {
        self.low_file_id = Some(file_id.into());
        self
    }
}
