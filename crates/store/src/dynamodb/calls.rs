//! The DynamoDB calls the store makes, with their error mapping and retries.
//!
//! The SDK already retries throttling and transient errors (standard retry mode). What it does
//! not retry are conflicts with concurrent transactions (`TransactionConflictException` on a
//! single-item write, `TransactionConflict` as a cancellation reason): they are retried here,
//! with a short jittered back-off, because they say "try again", not "your condition failed".

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use xdm_core::ports::StoreError;

use super::items::{Item, s};

/// Attempts at a write that keeps meeting concurrent transactions.
const CONFLICT_ATTEMPTS: u32 = 8;
/// Attempts at fetching the keys a BatchGetItem left unprocessed.
const UNPROCESSED_ATTEMPTS: u32 = 8;
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;

/// An SDK error as `StoreError::Unavailable`, naming the call and the table.
pub(crate) fn sdk_error<E, R>(op: &str, table: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    if e.code() == Some("ResourceNotFoundException") {
        return StoreError::Unavailable(format!(
            "dynamodb {op}: the table {table} (or its index) does not exist; create the tables as docs/aws-tables.md describes"
        ));
    }
    StoreError::Unavailable(format!(
        "dynamodb {op} on {table}: {}",
        DisplayErrorContext(&e)
    ))
}

fn is_conflict<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("TransactionConflictException")
}

/// Sleeps a little longer at each attempt, with jitter so that racing writers spread out.
pub(crate) async fn back_off(attempt: u32) {
    let base = 5_u64 << attempt.min(6);
    let jitter = RandomState::new().build_hasher().finish() % base.max(1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// A conditional single-item write sent by `send`, retried with back-off while it meets
/// concurrent transactions. `Ok(None)`: the condition did not hold (`condition_failed` says
/// which service errors mean that), nothing was written.
async fn write_retrying<T, E, R, F>(
    op: &str,
    table: &str,
    mut send: impl FnMut() -> F,
    condition_failed: impl Fn(&E) -> bool,
) -> Result<Option<T>, StoreError>
where
    F: Future<Output = Result<T, SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Ok(out) => return Ok(Some(out)),
            Err(e) if e.as_service_error().is_some_and(&condition_failed) => return Ok(None),
            Err(e) if is_conflict(&e) && attempt + 1 < CONFLICT_ATTEMPTS => {
                back_off(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(sdk_error(op, table, e)),
        }
    }
}

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

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Written {
    Yes,
    /// The condition did not hold: nothing was written.
    ConditionFailed,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tx {
    Committed,
    /// Cancelled: one code per item, in request order (`"None"` for items that were fine,
    /// `"ConditionalCheckFailed"` for failed conditions).
    Cancelled(Vec<String>),
}

impl Tx {
    /// True when the condition of item `index` failed.
    pub(crate) fn failed(codes: &[String], index: usize) -> bool {
        codes
            .get(index)
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }
}

/// The calls, on one client.
#[derive(Debug, Clone)]
pub(crate) struct Calls {
    pub(crate) client: Client,
}

impl Calls {
    /// A strongly consistent GetItem.
    pub(crate) async fn get(
        &self,
        op: &'static str,
        table: &str,
        key: Item,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(op, table, e))?;
        Ok(out.item)
    }

    pub(crate) async fn put(
        &self,
        op: &'static str,
        table: &str,
        item: Item,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error(op, table, e))?;
        Ok(())
    }

    /// An UpdateItem built by `request` (whose table is `table`), retried on conflicts.
    pub(crate) async fn update(
        &self,
        op: &'static str,
        table: &str,
        request: UpdateItemFluentBuilder,
    ) -> Result<Written, StoreError> {
        let out = write_retrying(
            op,
            table,
            || request.clone().send(),
            UpdateItemError::is_conditional_check_failed_exception,
        )
        .await?;
        Ok(out.map_or(Written::ConditionFailed, |_| Written::Yes))
    }

    /// An UpdateItem built by `request` that returns attributes (its `ReturnValues`), retried
    /// on conflicts. `Ok(None)`: the condition did not hold, nothing was written.
    pub(crate) async fn update_returning(
        &self,
        op: &'static str,
        table: &str,
        request: UpdateItemFluentBuilder,
    ) -> Result<Option<Item>, StoreError> {
        let out = write_retrying(
            op,
            table,
            || request.clone().send(),
            UpdateItemError::is_conditional_check_failed_exception,
        )
        .await?;
        Ok(out.map(|out| out.attributes.unwrap_or_default()))
    }

    /// A DeleteItem built by `request`, retried on conflicts.
    pub(crate) async fn delete(
        &self,
        op: &'static str,
        table: &str,
        request: DeleteItemFluentBuilder,
    ) -> Result<Written, StoreError> {
        let out = write_retrying(
            op,
            table,
            || request.clone().send(),
            DeleteItemError::is_conditional_check_failed_exception,
        )
        .await?;
        Ok(out.map_or(Written::ConditionFailed, |_| Written::Yes))
    }

    /// TransactWriteItems. A cancellation caused only by conflicting concurrent transactions is
    /// retried; any other cancellation is returned with its per-item codes.
    pub(crate) async fn transact(
        &self,
        op: &'static str,
        tables: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Tx, StoreError> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(Tx::Committed),
                Err(e) => e,
            };
            let codes = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect::<Vec<_>>(),
                _ if is_conflict(&e) || e.code() == Some("TransactionInProgressException") => {
                    vec!["TransactionConflict".to_owned()]
                }
                _ => return Err(sdk_error(op, tables, e)),
            };
            let conflict_only = codes
                .iter()
                .all(|c| c == "None" || c == "TransactionConflict")
                && codes.iter().any(|c| c == "TransactionConflict");
            if !conflict_only {
                return Ok(Tx::Cancelled(codes));
            }
            if attempt + 1 >= CONFLICT_ATTEMPTS {
                return Err(StoreError::Unavailable(format!(
                    "dynamodb {op} on {tables}: still conflicting with concurrent transactions after {CONFLICT_ATTEMPTS} attempts"
                )));
            }
            back_off(attempt).await;
            attempt += 1;
        }
    }

    /// Strongly consistent BatchGetItem of the items whose string key `key_attr` is one of
    /// `keys`, by key. Missing items are simply absent from the map.
    pub(crate) async fn batch_get(
        &self,
        op: &'static str,
        table: &str,
        key_attr: &str,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut seen = HashSet::new();
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|k| HashMap::from([(key_attr.to_owned(), s(k.as_str()))]))
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("dynamodb {op}: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error(op, table, e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default()
                {
                    if let Some(AttributeValue::S(k)) = item.get(key_attr) {
                        found.insert(k.clone(), item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempt + 1 >= UNPROCESSED_ATTEMPTS {
                        return Err(StoreError::Unavailable(format!(
                            "dynamodb {op} on {table}: {} keys still unprocessed after {UNPROCESSED_ATTEMPTS} attempts",
                            pending.len()
                        )));
                    }
                    back_off(attempt).await;
                    attempt += 1;
                }
            }
        }
        Ok(found)
    }

    /// The items of a Scan, page after page, until there are no more.
    pub(crate) async fn scan(
        &self,
        op: &'static str,
        table: &str,
        request: ScanFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = request
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(op, table, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// The items of a Query, page after page, until there are no more or `max` were read.
    pub(crate) async fn query(
        &self,
        op: &'static str,
        table: &str,
        request: QueryFluentBuilder,
        max: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = request
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(op, table, e))?;
            items.extend(out.items.unwrap_or_default());
            if max.is_some_and(|max| items.len() >= max) {
                break;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::items::n;

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

    #[test]
    fn cancellation_codes_name_the_failed_items() {
        let codes = vec!["None".to_owned(), "ConditionalCheckFailed".to_owned()];
        assert!(!Tx::failed(&codes, 0));
        assert!(Tx::failed(&codes, 1));
        assert!(!Tx::failed(&codes, 2));
    }
}
