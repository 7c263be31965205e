//! Text policies: splitting long customer messages for Connect, rendering agent content for X.

mod render;
mod split;

pub use render::render_for_x;
pub use split::{split_message, utf16_len};

/// Connect's limit for one `text/plain` or `text/markdown` chat message, in characters.
pub const CONNECT_MESSAGE_MAX_CHARS: usize = 1024;

/// The longest DM text the bridge sends to X in one message (X's historical DM limit; the v2
/// limit is not documented, docs/protocols.md A4.1).
pub const X_DM_MAX_CHARS: usize = 10_000;
