//! X media upload v2 (docs/protocols.md A5): `initialize` → `append` (segments 0, 1, 2… in order,
//! multipart or JSON base64) → `finalize` → `GET ?command=STATUS` polling for GIFs and videos, plus
//! the one-shot `POST /2/media/upload` for images. OAuth 1.0a verified like every X route (the
//! JSON and multipart bodies are not signed). Bytes are hashed as they stream: an upload is never
//! held whole (only uploads under `MediaConfig::keep_bytes_up_to` keep their bytes).

mod answer;
mod chunked;
mod media_type;
mod one_shot;
mod segment;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2/media/upload/initialize", post(chunked::initialize))
        .route("/2/media/upload/{id}/append", post(chunked::append))
        .route("/2/media/upload/{id}/finalize", post(chunked::finalize))
        .route(
            "/2/media/upload",
            get(status::status).post(one_shot::one_shot),
        )
        // Bodies are streamed and limited by the handlers themselves.
        .layer(DefaultBodyLimit::disable())
}
