//! X media uploads in memory: one [`Upload`] per media id, from `initialize` (or a one-shot
//! upload) to its processing verdict — the reported view, the running hash of the bytes appended,
//! and the STATUS polling bookkeeping.

use std::time::Instant;

use crate::media::files::HashSink;
use crate::x::records::{SentMedia, UploadedMedia};

/// An upload in progress or done.
#[derive(Debug)]
pub(crate) struct Upload {
    pub view: UploadedMedia,
    pub sink: HashSink,
    /// An `append` is streaming (the next one must wait for it).
    pub appending: bool,
    pub created_unix: i64,
    /// When the last answer told the client to check again.
    pub next_check_at: Option<Instant>,
    /// STATUS polls since `finalize`.
    pub polls_since_finalize: u32,
    /// Set at `finalize` by a `MediaProcessing` fault: processing ends `failed` with this message.
    pub failure: Option<String>,
}

impl Upload {
    /// An upload created at Unix second `created_unix`, hashing into `sink`, not appending, not
    /// polled.
    pub(crate) fn new(view: UploadedMedia, sink: HashSink, created_unix: i64) -> Self {
        Self {
            view,
            sink,
            appending: false,
            created_unix,
            next_check_at: None,
            polls_since_finalize: 0,
            failure: None,
        }
    }

    /// What a DM carrying this media records (once finalized).
    pub(crate) fn sent_media(&self) -> Option<SentMedia> {
        Some(SentMedia {
            media_id: self.view.media_id.clone(),
            media_key: self.view.media_key.clone(),
            category: self.view.category,
            media_type: self.view.media_type.clone(),
            size: self.view.received_bytes,
            sha256: self.view.sha256.clone()?,
            file_id: self.view.file_id.clone()?,
        })
    }

    /// The Unix second the media id stops being usable, media ids living `expires_after_secs`.
    pub(crate) fn expires_at(&self, expires_after_secs: u64) -> i64 {
        self.created_unix
            .saturating_add(i64::try_from(expires_after_secs).unwrap_or(0))
    }
}
