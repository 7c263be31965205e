//! Errors of the sandbox's Rust API (and of its HTTP control API, which maps them to statuses).

use std::net::SocketAddr;

/// What a sandbox control call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the SNS signing key or certificate: {0}")]
    Crypto(String),
    #[error("cannot build the sandbox's HTTP client: {0}")]
    HttpClient(String),
    #[error("no X webhook is registered (call set_webhook first)")]
    NoWebhook,
    #[error("the X webhook {url} is not valid: its CRC check failed")]
    WebhookInvalid { url: String },
    #[error("HTTP request to {url} failed: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("unknown contact {0}")]
    UnknownContact(String),
    #[error("contact {0} has already ended")]
    ContactEnded(String),
    #[error(
        "the customer of contact {0} has not connected yet (CreateParticipantConnection with ConnectParticipant=true)"
    )]
    CustomerNotConnected(String),
    #[error("no agent is in contact {0} (call agent_accept first)")]
    NoAgent(String),
    #[error("an agent is already in contact {0}")]
    AgentAlreadyJoined(String),
    #[error("a supervisor has already barged in to contact {0}")]
    SupervisorAlreadyJoined(String),
    #[error("no supervisor has barged in to contact {0} (call supervisor_barge first)")]
    NoSupervisor(String),
    #[error(
        "contact {0} has more than two active participants (a supervisor barged in): message receipts are not supported"
    )]
    ReceiptsRefused(String),
    #[error("invalid SNS filter policy: {0}")]
    FilterPolicy(#[from] crate::sns::filter_policy::FilterPolicyError),
    #[error("unknown SNS subscription {0}")]
    UnknownSubscription(String),
    #[error("unknown SNS message {0}")]
    UnknownMessage(String),
    #[error("unknown file {0}")]
    UnknownFile(String),
    #[error("timed out after {millis} ms waiting for {what}")]
    Timeout { what: String, millis: u128 },
}

impl SandboxError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
