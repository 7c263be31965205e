//! One module per subcommand of the binary.

#[cfg(feature = "sandbox")]
pub mod demo;
#[cfg(feature = "sandbox")]
pub mod demo_chat_customer;
#[cfg(feature = "sandbox")]
pub mod demo_web;
#[cfg(feature = "sandbox")]
mod demo_world;
pub mod doctor;
pub mod inbox;
#[cfg(not(feature = "sandbox"))]
pub mod no_sandbox;
pub mod private_file;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod serve;
pub mod setup;
pub mod x;
