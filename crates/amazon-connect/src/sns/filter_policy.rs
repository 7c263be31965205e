//! The subscription filter policy that keeps the customer's own messages off the bridge's SNS
//! subscription (no echo traffic), and doctor's test of a subscription's policy.
//!
//! Connect streams every item of a chat to the topic, the customer's own messages included,
//! which the bridge relays into the chat itself and would only drop again (`ChatItem::is_for_customer`).
//! The policy, on the message attributes Connect sets, delivers an item unless its
//! `ParticipantRole` is `CUSTOMER`. An absent attribute never matches `anything-but` in SNS
//! (every key of a policy must name an attribute of the message), and some system events
//! (`chat.ended`) carry no `ParticipantRole`, hence the `$or` with `exists: false`.
//! `MessageVisibility` is left out: the bridge treats an item without it as visible, so a
//! policy on it would need a second `$or` branch for a small saving (agent-only items are rare).
//!
//! This is the only spelling of the policy in the code: `setup`/`doctor` name it, the demo, the
//! tests and the load generator subscribe with it, `deploy/template.yaml` and docs/setup.md carry
//! the same JSON.

use serde_json::Value;

/// The filter policy (scope `MessageAttributes`, SNS's default) of the bridge's subscription.
pub const ECHO_FILTER_POLICY: &str = r#"{"$or":[{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]},{"ParticipantRole":[{"exists":false}]}]}"#;

/// The `FilterPolicyScope` the policy is written for.
pub const ECHO_FILTER_POLICY_SCOPE: &str = "MessageAttributes";

/// Whether `policy` (a subscription's `FilterPolicy` attribute) is [`ECHO_FILTER_POLICY`], as
/// JSON (whitespace and key order do not matter).
pub fn is_echo_filter_policy(policy: &str) -> bool {
    match (
        serde_json::from_str::<Value>(policy),
        serde_json::from_str::<Value>(ECHO_FILTER_POLICY),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_json_and_compares_as_json() {
        assert!(serde_json::from_str::<Value>(ECHO_FILTER_POLICY).is_ok());
        assert!(is_echo_filter_policy(ECHO_FILTER_POLICY));
        assert!(is_echo_filter_policy(
            r#"{ "$or": [ { "ParticipantRole": [ { "anything-but": [ "CUSTOMER" ] } ] },
                 { "ParticipantRole": [ { "exists": false } ] } ] }"#
        ));
        assert!(!is_echo_filter_policy(
            r#"{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]}"#
        ));
        assert!(!is_echo_filter_policy("not json"));
    }

    /// The places outside the code that spell the policy: the `aws sns set-subscription-attributes`
    /// commands of the docs verbatim, the SAM template as YAML (its two `$or` branches).
    #[test]
    fn the_docs_and_the_template_spell_the_same_policy() {
        let setup = include_str!("../../../../docs/setup.md");
        let aws = include_str!("../../../../docs/aws.md");
        let quoted = format!("--attribute-value '{ECHO_FILTER_POLICY}'");
        assert!(setup.contains(&quoted), "docs/setup.md");
        assert!(aws.contains(&quoted), "docs/aws.md");
        let template: Vec<&str> = include_str!("../../../../deploy/template.yaml")
            .lines()
            .map(str::trim)
            .collect();
        for line in [
            "FilterPolicyScope: MessageAttributes",
            "$or:",
            "- ParticipantRole: [{ anything-but: [CUSTOMER] }]",
            "- ParticipantRole: [{ exists: false }]",
        ] {
            assert!(template.contains(&line), "deploy/template.yaml: {line}");
        }
    }
}
