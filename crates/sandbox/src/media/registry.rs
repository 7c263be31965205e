//! The media registry: the stored files (registered, decoys, X uploads, Connect uploads), the URL
//! paths that serve them, and the record of media GETs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::media::files::{FileInfo, FileOrigin, Hashed, ServeOptions, Source, StoredFile};

/// Who may fetch a media path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaRequestKind {
    /// `/1.1/ton/data/dm/…`: OAuth 1.0a required.
    Ton,
    /// twimg-style paths (videos, GIFs, previews) and other registered URLs: no auth.
    Public,
    /// The target of a `redirect_to` answer.
    Redirected,
}

/// One GET (or HEAD) of a media URL, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRequestRecord {
    pub kind: MediaRequestKind,
    pub method: String,
    pub path: String,
    /// The `Host` header (`127.0.0.1:PORT`, `localhost:PORT`…).
    pub host: Option<String>,
    pub status: u16,
    /// The file served (or that would have been).
    pub file_id: Option<String>,
    /// Why it was refused (e.g. the OAuth base string the sandbox expected).
    pub rejection: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone)]
pub(crate) struct MediaRoute {
    pub file_id: String,
    pub kind: MediaRequestKind,
}

#[derive(Debug, Default)]
pub(crate) struct MediaState {
    /// `file-N` is `files[N - 1]`.
    files: Vec<StoredFile>,
    routes: HashMap<String, MediaRoute>,
    pub requests: Vec<MediaRequestRecord>,
}

fn index_of(file_id: &str) -> Option<usize> {
    file_id
        .strip_prefix("file-")?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

impl MediaState {
    fn next_id(&self) -> String {
        format!("file-{}", self.files.len() + 1)
    }

    pub(crate) fn get(&self, file_id: &str) -> Option<&StoredFile> {
        self.files.get(index_of(file_id)?)
    }

    pub(crate) fn infos(&self) -> Vec<FileInfo> {
        self.files.iter().map(|f| f.info.clone()).collect()
    }

    /// Stores a file made with [`StoredFile::from_spec`] (hashed before taking the lock: a
    /// generated file may be hundreds of MB) under the next file id.
    pub(crate) fn add(&mut self, mut stored: StoredFile) -> FileInfo {
        stored.info.file_id = self.next_id();
        let info = stored.info.clone();
        self.files.push(stored);
        info
    }

    /// Stores what an upload streamed. Content that is not kept but has the size and hash of a
    /// retained file is served from that file's source (so a relayed generated file stays
    /// servable without being held).
    pub(crate) fn store_upload(
        &mut self,
        name: &str,
        content_type: &str,
        hashed: Hashed,
        origin: FileOrigin,
    ) -> FileInfo {
        let (source, generated) = match hashed.bytes {
            Some(bytes) => (Source::Bytes(bytes), None),
            None => self
                .files
                .iter()
                .find(|f| {
                    f.info.retained && f.info.size == hashed.size && f.info.sha256 == hashed.sha256
                })
                .map(|f| (f.source.clone(), f.info.generated))
                .unwrap_or((Source::HashOnly, None)),
        };
        let info = FileInfo {
            file_id: self.next_id(),
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size: hashed.size,
            sha256: hashed.sha256,
            origin,
            generated,
            retained: !matches!(source, Source::HashOnly),
            serve: ServeOptions::default(),
        };
        self.files.push(StoredFile {
            info: info.clone(),
            source,
        });
        info
    }

    pub(crate) fn set_serve_options(
        &mut self,
        file_id: &str,
        serve: ServeOptions,
    ) -> Option<FileInfo> {
        let file = self.files.get_mut(index_of(file_id)?)?;
        file.info.serve = serve;
        Some(file.info.clone())
    }

    /// Makes `path` (as it appears in a request line, percent-encoded) serve `file_id`.
    pub(crate) fn register_path(&mut self, path: &str, file_id: &str, kind: MediaRequestKind) {
        self.routes.insert(
            path.to_owned(),
            MediaRoute {
                file_id: file_id.to_owned(),
                kind,
            },
        );
    }

    pub(crate) fn route(&self, path: &str) -> Option<MediaRoute> {
        self.routes.get(path).cloned()
    }

    pub(crate) fn record_request(&mut self, record: MediaRequestRecord) {
        tracing::debug!(path = %record.path, status = record.status, "media request");
        self.requests.push(record);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_index_the_registry() {
        assert_eq!(index_of("file-1"), Some(0));
        assert_eq!(index_of("file-0"), None);
        assert_eq!(index_of("nope"), None);
    }
}
