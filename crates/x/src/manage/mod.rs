//! Managing X's delivery set-up: webhooks, replay jobs, X Activity API (XAA) subscriptions and
//! the Account Activity API (AAA) subscriptions kept for `--api aaa` while X serves it.
//!
//! * [`AppClient`] calls with the app bearer token (`XDM_X_BEARER_TOKEN`): `GET/POST/PUT/DELETE
//!   /2/webhooks`, `POST /2/webhooks/replay` (`webhooks`), listing, updating and deleting XAA
//!   subscriptions, listing and removing AAA subscriptions (`subscriptions`); it also opens the
//!   activity stream ([`crate::stream`]).
//! * Creating a subscription to private `dm.*` events needs the user's own context (X refuses the
//!   app bearer for them), so those calls are on [`XClient`](crate::XClient), made as the
//!   business account (`subscriptions`).
//! * Answers are read in every documented shape (`data` object or one-item list, `data` absent
//!   from an empty list: `wire`). Errors are a [`ManageError`]: one line built from the
//!   problem's detail, title or `errors[].message`, never raw JSON, with the recognised
//!   [`ManageReason`] so the CLI can explain it (a CRC failure) or accept it (a duplicate
//!   subscription is "already done").

mod app_client;
mod error;
mod subscriptions;
mod webhooks;
mod wire;

pub use app_client::AppClient;
pub use error::{ManageError, ManageReason, manage_error};
pub use subscriptions::{ActivitySubscription, NewSubscription};
pub use webhooks::{ReplayJob, Webhook, replay_timestamp};
