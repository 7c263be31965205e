//! Test support for xdm-connect's crates (a dev-dependency only): the local AWS emulator.

pub mod moto;
