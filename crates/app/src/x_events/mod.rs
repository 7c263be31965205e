//! How X's events reach `serve` besides the webhook: the activity stream (no inbound port), the
//! catch-up that reads missed DMs back after a gap, the watch that re-enables a webhook X marked
//! invalid, and the record of the last DM seen per business account that tells the catch-up
//! where to start. Every path ends in the same
//! accept (`Bridge::accept_inbound`: stored before it is processed, deduplicated by event id,
//! delivered in order per customer).

pub mod catch_up;
pub mod seen;
pub mod stream;
pub mod webhook_watch;
