//! The crate's one integration-test binary (each binary links hundreds of MB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod connect_client;
mod doctor_checks;
mod lambda_record;
mod sns_confirm;
mod sns_vectors;
