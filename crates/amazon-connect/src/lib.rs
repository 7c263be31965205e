//! xdm-amazon-connect: the Amazon Connect adapter of xdm-connect.
//!
//! * [`ConnectClient`] implements `xdm_core::ports::ConnectApi`: the control plane
//!   (StartChatContact, StartContactStreaming, StopContact — [`contact_client`], hand-signed with
//!   `aws-sigv4`) and the participant API (SendMessage and SendEvent over reqwest —
//!   [`participant_send`]; CreateParticipantConnection, DisconnectParticipant —
//!   [`participant_client`], `aws-sdk-connectparticipant`) and chat
//!   attachments ([`attachments`]: StartAttachmentUpload → S3 PUT → CompleteAttachmentUpload,
//!   GetAttachment → S3 GET, streamed both ways).
//! * [`profiles_client`]: Customer Profiles (SearchProfiles, CreateProfile, UpdateProfile,
//!   hand-signed): the customer's profile, keyed on the X user id, for StartChatContact's
//!   `CustomerId`.
//! * [`sns`]: SNS envelopes (HTTP subscription and Lambda shapes), signature verification,
//!   subscription confirmation, streamed chat items → `xdm_core::chat_item::ChatItem`.
//! * [`errors`]: every failure classified into `xdm_core::ports::ConnectError`.
//! * [`signing`]: a credentials cache and the SigV4 signer for hand-signed AWS calls.

pub mod attachments;
pub mod client;
pub mod config;
pub mod contact_client;
pub mod endpoints;
pub mod errors;
pub mod participant_client;
pub mod participant_send;
pub mod profiles_client;
mod rest_json;
mod signed_client;
pub mod signing;
pub mod sns;

pub use attachments::{Attachments, attachment_name};
pub use client::ConnectClient;
pub use config::{ConfigError, ConnectConfig};
pub use contact_client::{ContactClient, ContactFlowInfo, DescribeError, InstanceInfo};
pub use endpoints::{
    resolve_connect_endpoint, resolve_participant_endpoint, resolve_profiles_endpoint,
};
pub use participant_client::{ParticipantClient, iso8601_to_ms};
pub use participant_send::{ParticipantSendClient, SentMessage};
pub use profiles_client::ProfilesClient;
pub use sns::{SnsMessage, SnsVerifier};
