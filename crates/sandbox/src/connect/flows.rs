//! A contact flow of the Connect instance, as controls add it and DescribeContactFlow answers it
//! (the sandbox does not run flows; StartChatContact only needs the flow to exist).

use serde::{Deserialize, Serialize};

/// A contact flow of the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactFlowSpec {
    pub id: String,
    /// Default `Inbound chat`.
    pub name: String,
    /// `Type` (default `CONTACT_FLOW`, the inbound kind StartChatContact needs; also
    /// `CUSTOMER_QUEUE`, `AGENT_TRANSFER`, …).
    #[serde(rename = "type")]
    pub flow_type: String,
    /// `State`: `ACTIVE` (default) or `ARCHIVED`.
    pub state: String,
    /// `Status`: `PUBLISHED` (default) or `SAVED`. DescribeContactFlow of a `SAVED` flow answers
    /// 404 `ContactFlowNotPublishedException`, as Connect does for a flow never published.
    pub status: String,
    pub description: String,
    /// The flow language JSON, as a string (default: a minimal start → disconnect flow).
    pub content: String,
}

impl Default for ContactFlowSpec {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: "Inbound chat".into(),
            flow_type: "CONTACT_FLOW".into(),
            state: "ACTIVE".into(),
            status: "PUBLISHED".into(),
            description: String::new(),
            content: DEFAULT_CONTENT.into(),
        }
    }
}

/// A flow that only disconnects (the sandbox does not run flows).
const DEFAULT_CONTENT: &str = r#"{"Version":"2019-10-30","StartAction":"disconnect","Metadata":{},"Actions":[{"Identifier":"disconnect","Type":"DisconnectParticipant","Parameters":{},"Transitions":{}}]}"#;

impl ContactFlowSpec {
    /// A published, active inbound flow with this id.
    pub fn inbound(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }
}
