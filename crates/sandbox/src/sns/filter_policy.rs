//! Subscription filter policies as SNS evaluates them on message attributes (scope
//! `MessageAttributes`, SNS's default), for the operators the sandbox implements: exact strings,
//! `anything-but` (a string or a list of strings), `exists` (true/false) and `$or`. Written from
//! SNS's documentation (Amazon SNS Developer Guide, "Subscription filter policies", "AND/OR
//! logic", "Key matching"):
//!
//! * a message matches when **every** key of the policy names one of its attributes and at least
//!   one of that key's conditions matches the attribute's value — an absent attribute matches
//!   nothing, `anything-but` included — except `{"exists": false}`, which matches an absent key;
//! * `{"exists": false}` only matches when the message has at least one attribute: a message
//!   without attributes matches no attribute policy;
//! * `"$or": [policy, policy, …]` (at least two) matches when one of its policies does; it combines
//!   with the other keys by AND;
//! * a `String.Array` attribute matches when one of its elements does; `Binary` ones never.
//!
//! Strict, as the brief of a test double should be: any other operator (`prefix`, `suffix`,
//! `numeric`, `cidr`, `equals-ignore-case`, numbers, nested objects, scope `MessageBody`) is
//! refused when the policy is set, like an invalid policy, rather than evaluated wrongly. SNS's
//! limits are checked too: at most 5 keys per policy (per `$or` branch) and 150 combinations of
//! values over all branches, 256 KiB of text.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::sns::message::MessageAttribute;

/// SNS's `FilterPolicyScope` values.
pub const SCOPE_MESSAGE_ATTRIBUTES: &str = "MessageAttributes";
const SCOPE_MESSAGE_BODY: &str = "MessageBody";

/// SNS's limits on a filter policy.
const MAX_KEYS: usize = 5;
const MAX_COMBINATIONS: usize = 150;
const MAX_BYTES: usize = 256 * 1024;

/// Why a filter policy is refused (SNS answers `InvalidParameter`, "Invalid parameter:
/// FilterPolicy: …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterPolicyError {
    /// Not a policy SNS accepts.
    #[error("{0}")]
    Invalid(String),
    /// A policy SNS may accept, with an operator the sandbox does not evaluate.
    #[error("{0} (not evaluated by the sandbox, which refuses it rather than ignore it)")]
    Unsupported(String),
}

/// One condition of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Exact(String),
    AnythingBut(Vec<String>),
    Exists(bool),
}

/// One `$or` branch: every key must match.
type Branch = Vec<(String, Vec<Condition>)>;

/// A parsed filter policy: its text (as set) and its branches (any one must match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPolicy {
    text: String,
    branches: Vec<Branch>,
}

impl FilterPolicy {
    /// Parses `text` for `scope` (`None`: `MessageAttributes`).
    pub fn parse(text: &str, scope: Option<&str>) -> Result<Self, FilterPolicyError> {
        match scope.unwrap_or(SCOPE_MESSAGE_ATTRIBUTES) {
            SCOPE_MESSAGE_ATTRIBUTES => {}
            SCOPE_MESSAGE_BODY => {
                return Err(FilterPolicyError::Unsupported(
                    "FilterPolicyScope MessageBody".into(),
                ));
            }
            other => {
                return Err(FilterPolicyError::Invalid(format!(
                    "FilterPolicyScope must be MessageAttributes or MessageBody, not {other:?}"
                )));
            }
        }
        if text.len() > MAX_BYTES {
            return Err(FilterPolicyError::Invalid(
                "Filter policy is too large".into(),
            ));
        }
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| FilterPolicyError::Invalid(format!("failed to parse JSON. {e}")))?;
        let Value::Object(obj) = doc else {
            return Err(FilterPolicyError::Invalid(
                "Filter policy must be a JSON object".into(),
            ));
        };
        let branches = parse_object(&obj)?;
        let mut combinations = 0usize;
        for branch in &branches {
            if branch.len() > MAX_KEYS {
                return Err(FilterPolicyError::Invalid(format!(
                    "Filter policy can not have more than {MAX_KEYS} keys"
                )));
            }
            let product = branch
                .iter()
                .fold(1usize, |n, (_, conds)| n.saturating_mul(conds.len()));
            combinations = combinations.saturating_add(product);
        }
        if combinations > MAX_COMBINATIONS {
            return Err(FilterPolicyError::Invalid(
                "Filter policy is too complex".into(),
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            branches,
        })
    }

    /// The policy as it was set.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a message with `attributes` is delivered.
    pub fn matches(&self, attributes: &BTreeMap<String, MessageAttribute>) -> bool {
        !attributes.is_empty()
            && self.branches.iter().any(|branch| {
                branch
                    .iter()
                    .all(|(key, conds)| conds.iter().any(|c| c.matches(attributes.get(key))))
            })
    }
}

impl Condition {
    fn matches(&self, attribute: Option<&MessageAttribute>) -> bool {
        let values = attribute.map(values).unwrap_or_default();
        match self {
            Self::Exists(wanted) => *wanted == attribute.is_some_and(|a| !a.value.is_empty()),
            Self::Exact(s) => values.iter().any(|v| v == s),
            Self::AnythingBut(list) => values.iter().any(|v| !list.contains(v)),
        }
    }
}

/// The values an attribute offers to string conditions.
fn values(attribute: &MessageAttribute) -> Vec<String> {
    match attribute.data_type.as_str() {
        t if t.starts_with("String.Array") => serde_json::from_str::<Vec<Value>>(&attribute.value)
            .map(|list| {
                list.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        t if t.starts_with("Binary") => Vec::new(),
        _ => vec![attribute.value.clone()],
    }
}

/// A policy object → its branches (the keys AND-ed, each `$or` multiplying the branches).
fn parse_object(obj: &Map<String, Value>) -> Result<Vec<Branch>, FilterPolicyError> {
    if obj.is_empty() {
        return Err(FilterPolicyError::Invalid(
            "Filter policy can not be empty".into(),
        ));
    }
    let mut branches: Vec<Branch> = vec![Vec::new()];
    for (key, value) in obj {
        if key == "$or" {
            let Value::Array(alternatives) = value else {
                return Err(FilterPolicyError::Invalid(
                    "\"$or\" must be an array of objects".into(),
                ));
            };
            if alternatives.len() < 2 {
                return Err(FilterPolicyError::Invalid(
                    "\"$or\" needs at least two policies".into(),
                ));
            }
            let mut options: Vec<Branch> = Vec::new();
            for alternative in alternatives {
                let Value::Object(inner) = alternative else {
                    return Err(FilterPolicyError::Invalid(
                        "\"$or\" must be an array of objects".into(),
                    ));
                };
                options.extend(parse_object(inner)?);
            }
            branches = branches
                .iter()
                .flat_map(|b| {
                    options.iter().map(move |o| {
                        let mut merged = b.clone();
                        merged.extend(o.iter().cloned());
                        merged
                    })
                })
                .collect();
            if branches.len() > MAX_COMBINATIONS {
                return Err(FilterPolicyError::Invalid(
                    "Filter policy is too complex".into(),
                ));
            }
        } else {
            let conditions = parse_conditions(key, value)?;
            for branch in &mut branches {
                branch.push((key.clone(), conditions.clone()));
            }
        }
    }
    Ok(branches)
}

fn parse_conditions(key: &str, value: &Value) -> Result<Vec<Condition>, FilterPolicyError> {
    let list = match value {
        Value::Array(list) if !list.is_empty() => list,
        Value::Array(_) => {
            return Err(FilterPolicyError::Invalid(format!(
                "Empty arrays are not allowed: {key}"
            )));
        }
        Value::Object(_) => {
            return Err(FilterPolicyError::Invalid(format!(
                "{key}: nested keys are only allowed with FilterPolicyScope MessageBody"
            )));
        }
        _ => {
            return Err(FilterPolicyError::Invalid(format!(
                "{key}: the value of a key must be an array"
            )));
        }
    };
    list.iter().map(|c| parse_condition(key, c)).collect()
}

fn parse_condition(key: &str, value: &Value) -> Result<Condition, FilterPolicyError> {
    match value {
        Value::String(s) => Ok(Condition::Exact(s.clone())),
        Value::Number(_) => Err(FilterPolicyError::Unsupported(format!(
            "{key}: numeric matching"
        ))),
        Value::Object(op) => {
            let mut entries = op.iter();
            let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
                return Err(FilterPolicyError::Invalid(format!(
                    "{key}: an operator object must have exactly one key"
                )));
            };
            match name.as_str() {
                "exists" => match arg {
                    Value::Bool(b) => Ok(Condition::Exists(*b)),
                    _ => Err(FilterPolicyError::Invalid(format!(
                        "{key}: exists match pattern must be either true or false"
                    ))),
                },
                "anything-but" => match arg {
                    Value::String(s) => Ok(Condition::AnythingBut(vec![s.clone()])),
                    Value::Array(list) if !list.is_empty() => list
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Ok(s.clone()),
                            Value::Number(_) => Err(FilterPolicyError::Unsupported(format!(
                                "{key}: anything-but with numbers"
                            ))),
                            _ => Err(FilterPolicyError::Invalid(format!(
                                "{key}: anything-but takes strings or numbers"
                            ))),
                        })
                        .collect::<Result<_, _>>()
                        .map(Condition::AnythingBut),
                    Value::Array(_) => Err(FilterPolicyError::Invalid(format!(
                        "{key}: Empty arrays are not allowed"
                    ))),
                    Value::Object(_) | Value::Number(_) => Err(FilterPolicyError::Unsupported(
                        format!("{key}: anything-but with {arg}"),
                    )),
                    _ => Err(FilterPolicyError::Invalid(format!(
                        "{key}: anything-but takes a string, a number or a list"
                    ))),
                },
                "prefix" | "suffix" | "numeric" | "cidr" | "equals-ignore-case" => Err(
                    FilterPolicyError::Unsupported(format!("{key}: the {name} operator")),
                ),
                other => Err(FilterPolicyError::Invalid(format!(
                    "{key}: Unrecognized match type {other}"
                ))),
            }
        }
        _ => Err(FilterPolicyError::Invalid(format!(
            "{key}: Match value must be String, number, true, false, or null"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The policy the bridge subscribes with (written out here: the sandbox imports no crate of
    /// the bridge).
    const NO_CUSTOMER: &str = r#"{"$or":[{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]},{"ParticipantRole":[{"exists":false}]}]}"#;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, MessageAttribute> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), MessageAttribute::string(*v)))
            .collect()
    }

    fn policy(text: &str) -> FilterPolicy {
        FilterPolicy::parse(text, None).unwrap()
    }

    #[test]
    fn the_customers_own_messages_are_dropped_the_rest_delivered() {
        let p = policy(NO_CUSTOMER);
        let base = [("ContactId", "c"), ("Type", "MESSAGE")];
        let with_role = |role| {
            let mut a = attrs(&base);
            a.insert("ParticipantRole".into(), MessageAttribute::string(role));
            a
        };
        assert!(!p.matches(&with_role("CUSTOMER")));
        assert!(p.matches(&with_role("AGENT")));
        assert!(p.matches(&with_role("SYSTEM")));
        // chat.ended and other system events without a role.
        assert!(p.matches(&attrs(&base)));
        // No attributes at all: no attribute policy matches.
        assert!(!p.matches(&BTreeMap::new()));
    }

    #[test]
    fn anything_but_alone_does_not_match_an_absent_attribute() {
        let p = policy(r#"{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]}"#);
        assert!(!p.matches(&attrs(&[("ContactId", "c")])));
        assert!(p.matches(&attrs(&[("ParticipantRole", "AGENT")])));
        let single = policy(r#"{"ParticipantRole":[{"anything-but":"CUSTOMER"}]}"#);
        assert!(!single.matches(&attrs(&[("ParticipantRole", "CUSTOMER")])));
    }

    #[test]
    fn keys_are_anded_values_ored() {
        let p = policy(r#"{"Type":["MESSAGE","ATTACHMENT"],"MessageVisibility":["ALL"]}"#);
        assert!(p.matches(&attrs(&[
            ("Type", "ATTACHMENT"),
            ("MessageVisibility", "ALL")
        ])));
        assert!(!p.matches(&attrs(&[("Type", "EVENT"), ("MessageVisibility", "ALL")])));
        assert!(!p.matches(&attrs(&[("Type", "MESSAGE")])));
        let exists = policy(r#"{"Type":[{"exists":true}]}"#);
        assert!(exists.matches(&attrs(&[("Type", "EVENT")])));
        assert!(!exists.matches(&attrs(&[("ContactId", "c")])));
        let arrays = policy(r#"{"tags":["b"]}"#);
        let mut a = BTreeMap::new();
        a.insert(
            "tags".to_owned(),
            MessageAttribute {
                data_type: "String.Array".into(),
                value: r#"["a","b"]"#.into(),
            },
        );
        assert!(arrays.matches(&a));
    }

    #[test]
    fn or_combines_with_the_other_keys() {
        let p = policy(
            r#"{"Type":["MESSAGE"],"$or":[{"ParticipantRole":["AGENT"]},{"MessageVisibility":["ALL"]}]}"#,
        );
        assert!(p.matches(&attrs(&[("Type", "MESSAGE"), ("ParticipantRole", "AGENT")])));
        assert!(p.matches(&attrs(&[("Type", "MESSAGE"), ("MessageVisibility", "ALL")])));
        assert!(!p.matches(&attrs(&[("Type", "EVENT"), ("ParticipantRole", "AGENT")])));
        assert!(!p.matches(&attrs(&[
            ("Type", "MESSAGE"),
            ("ParticipantRole", "CUSTOMER")
        ])));
    }

    #[test]
    fn invalid_and_unsupported_policies_are_refused() {
        use FilterPolicyError::{Invalid, Unsupported};
        let refused = |text: &str| FilterPolicy::parse(text, None).unwrap_err();
        for text in [
            "not json",
            "[]",
            "{}",
            r#"{"a":"b"}"#,
            r#"{"a":[]}"#,
            r#"{"a":[{"exists":"yes"}]}"#,
            r#"{"a":[{"exists":true,"anything-but":["x"]}]}"#,
            r#"{"a":[{"no-such-op":1}]}"#,
            r#"{"a":[true]}"#,
            r#"{"a":{"b":["c"]}}"#,
            r#"{"$or":[{"a":["b"]}]}"#,
            r#"{"$or":{"a":["b"]}}"#,
            r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
        ] {
            assert!(matches!(refused(text), Invalid(_)), "{text}");
        }
        for text in [
            r#"{"a":[1]}"#,
            r#"{"a":[{"prefix":"x"}]}"#,
            r#"{"a":[{"numeric":[">",1]}]}"#,
            r#"{"a":[{"anything-but":{"prefix":"x"}}]}"#,
            r#"{"a":[{"equals-ignore-case":"x"}]}"#,
        ] {
            assert!(matches!(refused(text), Unsupported(_)), "{text}");
        }
        // 151 combinations.
        let many: Vec<String> = (0..151).map(|i| format!("\"v{i}\"")).collect();
        let too_complex = format!(r#"{{"a":[{}]}}"#, many.join(","));
        assert!(matches!(refused(&too_complex), Invalid(_)));
        assert!(matches!(
            FilterPolicy::parse(NO_CUSTOMER, Some("MessageBody")),
            Err(Unsupported(_))
        ));
        assert!(matches!(
            FilterPolicy::parse(NO_CUSTOMER, Some("Body")),
            Err(Invalid(_))
        ));
        assert!(FilterPolicy::parse(NO_CUSTOMER, Some("MessageAttributes")).is_ok());
    }
}
