//! Media both ways: the file registry (literal or generated content, hashed as it streams), DM
//! media downloads (TON + twimg paths) and the streaming helpers the X upload and the Connect
//! attachment routes share.

pub(crate) mod download;
pub mod files;
pub mod registry;
pub(crate) mod stream;
