//! SNS topics as the Query API shows them: the topic record, SNS's default access policy (with the
//! statement that lets Amazon Connect publish), and the topic ARN shape.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// A topic as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicView {
    pub topic_arn: String,
    pub display_name: String,
    /// The access policy, a JSON document as a string.
    pub policy: String,
    /// The name ends in `.fifo`.
    pub fifo: bool,
}

impl TopicView {
    /// Topic `arn` of account `account_id`; `policy: None` gives it [`default_policy`].
    pub(crate) fn new(
        arn: &str,
        display_name: Option<String>,
        policy: Option<String>,
        account_id: &str,
    ) -> Self {
        Self {
            topic_arn: arn.to_owned(),
            display_name: display_name.unwrap_or_default(),
            policy: policy.unwrap_or_else(|| default_policy(arn, account_id)),
            fifo: arn.ends_with(".fifo"),
        }
    }
}

/// SNS's default topic policy plus the statement AWS documents for Connect chat streaming.
pub fn default_policy(topic_arn: &str, account_id: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                    "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic", "SNS:Publish"
                ],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}}
            },
            {
                "Sid": "AllowConnectToPublish",
                "Effect": "Allow",
                "Principal": {"Service": "connect.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}
            }
        ]
    })
    .to_string()
}

/// `arn:aws…:sns:REGION:ACCOUNT:NAME`.
pub(crate) fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws") && !region.is_empty() && !account.is_empty() && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns() {
        assert!(is_topic_arn("arn:aws:sns:us-east-1:123456789012:chat"));
        assert!(is_topic_arn(
            "arn:aws-cn:sns:cn-north-1:123456789012:chat.fifo"
        ));
        assert!(!is_topic_arn("arn:aws:sqs:us-east-1:123456789012:chat"));
        assert!(!is_topic_arn("arn:aws:sns:us-east-1:123456789012"));
        assert!(!is_topic_arn("chat"));
    }
}
