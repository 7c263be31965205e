//! Media both ways, below the platforms: files (literal or generated content, hashed as it
//! streams), the registry that stores and routes them, and the streaming helpers the X upload and
//! download routes and the Connect attachment routes share.

pub mod files;
pub mod registry;
pub(crate) mod stream;
