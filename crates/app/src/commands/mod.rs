//! One module per subcommand of the binary.

pub mod demo;
pub mod doctor;
pub mod inbox;
pub mod sandbox;
pub mod serve;
pub mod setup;
pub mod x;
