//! DynamoDB expressions (update, condition, key condition, filter) built with placeholders for
//! every attribute name and value.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A DynamoDB expression with its attribute-name and value placeholders. Every attribute
/// goes through a `#name` placeholder, so reserved words (`status`, `state`, `key`, `open`…)
/// need no special care.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    delete: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The placeholder of an attribute name.
    pub(crate) fn n(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// The placeholder of a value, `:label`.
    pub(crate) fn v(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The condition `attr = value`, the value's placeholder being `:label`.
    pub(crate) fn eq(&mut self, attr: &str, label: &str, value: AttributeValue) -> String {
        format!("{} = {}", self.n(attr), self.v(label, value))
    }

    /// `SET attr = value`.
    pub(crate) fn set(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.n(attr), self.v(attr, value));
        self.set.push(format!("{n} = {v}"));
        self
    }

    /// A `SET` clause written out, its names and values made with [`n`](Self::n) and
    /// [`v`](Self::v).
    pub(crate) fn set_raw(&mut self, clause: String) -> &mut Self {
        self.set.push(clause);
        self
    }

    /// `SET attr = if_not_exists(attr, value)`: keeps a value already there.
    pub(crate) fn set_if_absent(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.n(attr), self.v(attr, value));
        self.set.push(format!("{n} = if_not_exists({n}, {v})"));
        self
    }

    /// `SET attr = attr + by`.
    pub(crate) fn increment(&mut self, attr: &str, by: i64) -> &mut Self {
        let n = self.n(attr);
        let v = self.v(&format!("{attr}_by"), super::items::n(by));
        self.set.push(format!("{n} = {n} + {v}"));
        self
    }

    pub(crate) fn remove(&mut self, attr: &str) -> &mut Self {
        let n = self.n(attr);
        self.remove.push(n);
        self
    }

    /// `ADD attr value` (a number to add, or set members to add).
    pub(crate) fn add(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.n(attr), self.v(&format!("{attr}_add"), value));
        self.add.push(format!("{n} {v}"));
        self
    }

    /// `DELETE attr members`.
    pub(crate) fn delete(&mut self, attr: &str, members: AttributeValue) -> &mut Self {
        let (n, v) = (self.n(attr), self.v(&format!("{attr}_del"), members));
        self.delete.push(format!("{n} {v}"));
        self
    }

    /// The update expression of the clauses added so far.
    pub(crate) fn update(&self) -> String {
        let mut parts = Vec::new();
        for (keyword, clauses) in [
            ("SET", &self.set),
            ("REMOVE", &self.remove),
            ("ADD", &self.add),
            ("DELETE", &self.delete),
        ] {
            if !clauses.is_empty() {
                parts.push(format!("{keyword} {}", clauses.join(", ")));
            }
        }
        parts.join(" ")
    }

    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::items::{n, s};

    #[test]
    fn expressions_use_placeholders_for_every_name_and_value() {
        let mut e = Expr::new();
        e.set("state", s("done"))
            .increment("attempts", 1)
            .remove("expires_at")
            .add("open", AttributeValue::Ss(vec!["m".into()]))
            .add("ver", n(1))
            .delete("gone", AttributeValue::Ss(vec!["x".into()]));
        assert_eq!(
            e.update(),
            "SET #state = :state, #attempts = #attempts + :attempts_by REMOVE #expires_at \
             ADD #open :open_add, #ver :ver_add DELETE #gone :gone_del"
        );
        let cond = format!("{} = {}", e.n("status"), e.v("ended", s("ended")));
        assert_eq!(cond, "#status = :ended");
        let names = e.names().unwrap_or_default();
        assert_eq!(names.get("#status").map(String::as_str), Some("status"));
        assert_eq!(names.len(), 7);
        assert_eq!(e.values().map(|v| v.len()), Some(6));
        assert_eq!(Expr::new().names(), None);
        assert_eq!(Expr::new().values(), None);
        assert_eq!(Expr::new().update(), "");
    }
}
