//! The `data` object of upload answers (finalize, STATUS, one-shot): id, key, size, expiry,
//! `processing_info` while a GIF or video is processed, and the image or video type.

use serde_json::{Value, json};

use crate::state::Shared;
use crate::x::records::{MediaCategory, ProcessingState};
use crate::x::uploads::Upload;

/// `processing_info`: the state, `check_after_secs` while pending or in progress, the progress.
pub(super) fn processing_info(
    state: ProcessingState,
    check_after: u64,
    progress: Option<u32>,
) -> Value {
    let mut info = json!({"state": state.as_str()});
    if let Value::Object(obj) = &mut info {
        if matches!(
            state,
            ProcessingState::Pending | ProcessingState::InProgress
        ) {
            obj.insert("check_after_secs".into(), json!(check_after));
        }
        if let Some(p) = progress {
            obj.insert("progress_percent".into(), json!(p));
        }
    }
    info
}

/// The `data` of finalize and STATUS answers.
pub(super) fn media_data(shared: &Shared, upload: &Upload, processing: Option<Value>) -> Value {
    let mut data = json!({
        "id": upload.view.media_id,
        "media_key": upload.view.media_key,
        "size": upload.view.received_bytes,
        "expires_after_secs": shared.cfg.x.media.expires_after_secs,
    });
    if let Value::Object(obj) = &mut data {
        if let Some(processing) = processing {
            obj.insert("processing_info".into(), processing);
        }
        if upload.view.category == MediaCategory::DmImage {
            obj.insert(
                "image".into(),
                json!({"image_type": upload.view.media_type}),
            );
        } else {
            obj.insert(
                "video".into(),
                json!({"video_type": upload.view.media_type}),
            );
        }
    }
    json!({"data": data})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn processing_info_shapes() {
        assert_eq!(
            processing_info(ProcessingState::Pending, 1, None),
            json!({"state": "pending", "check_after_secs": 1})
        );
        assert_eq!(
            processing_info(ProcessingState::Succeeded, 1, Some(100)),
            json!({"state": "succeeded", "progress_percent": 100})
        );
    }
}
