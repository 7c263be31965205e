//! The DynamoDB calls the store makes, with their error mapping and retries, and the items of
//! its transactions.
//!
//! The SDK already retries throttling and transient errors (standard retry mode). What it does
//! not retry are conflicts with concurrent transactions (`TransactionConflictException` on a
//! single-item write, `TransactionConflict` as a cancellation reason): they are retried here,
//! with a short jittered back-off, because they say "try again", not "your condition failed".
//! This is the one place calls are retried. The loops of the concern modules bounded by
//! `RACE_ATTEMPTS` are not retries of a call: each round reads again and decides again, because
//! another writer changed what the last round read.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use xdm_core::ports::StoreError;

use super::expr::Expr;
use super::items::{Item, s};

/// Attempts at a write that keeps meeting concurrent transactions.
const CONFLICT_ATTEMPTS: u32 = 8;
/// Attempts at fetching the keys a BatchGetItem left unprocessed.
const UNPROCESSED_ATTEMPTS: u32 = 8;
/// BatchGetItem takes at most 100 keys.
pub(crate) const BATCH_GET_MAX: usize = 100;
/// Items a page of a Query with a `max` asks for at most.
const QUERY_PAGE_MAX: i32 = 1_000;
/// Single-item writes [`count_written`] runs at once.
const WRITE_CONCURRENCY: usize = 16;

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
async fn back_off(attempt: u32) {
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

    /// A conditional UpdateItem of the item `key` of `table`: the clauses of `e`, applied only
    /// while `cond` (built in `e`) holds; retried on conflicts.
    pub(crate) async fn update(
        &self,
        op: &'static str,
        table: &str,
        key: Item,
        e: &Expr,
        cond: String,
    ) -> Result<Written, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(e.update())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        let out = write_retrying(
            op,
            table,
            || request.clone().send(),
            UpdateItemError::is_conditional_check_failed_exception,
        )
        .await?;
        Ok(out.map_or(Written::ConditionFailed, |_| Written::Yes))
    }

    /// An UpdateItem like [`update`](Self::update), its condition optional, that returns the
    /// attributes `returning` names (`UPDATED_NEW`: those it updated, new values; `ALL_NEW`: the
    /// whole item after it). `Ok(None)`: the condition did not hold, nothing was written.
    pub(crate) async fn update_returning(
        &self,
        op: &'static str,
        table: &str,
        key: Item,
        e: &Expr,
        cond: Option<String>,
        returning: ReturnValue,
    ) -> Result<Option<Item>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(e.update())
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(returning);
        let out = write_retrying(
            op,
            table,
            || request.clone().send(),
            UpdateItemError::is_conditional_check_failed_exception,
        )
        .await?;
        Ok(out.map(|out| out.attributes.unwrap_or_default()))
    }

    /// A DeleteItem of the item `key` of `table`, only while `cond` (built in `e`) holds;
    /// retried on conflicts.
    pub(crate) async fn delete(
        &self,
        op: &'static str,
        table: &str,
        key: Item,
        e: &Expr,
        cond: String,
    ) -> Result<Written, StoreError> {
        let request = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
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

    /// The items of a strongly consistent Scan of `table`, kept by `filter` (built in `e`) when
    /// given, page after page until there are no more.
    pub(crate) async fn scan(
        &self,
        op: &'static str,
        table: &str,
        e: &Expr,
        filter: Option<String>,
    ) -> Result<Vec<Item>, StoreError> {
        let request = self
            .client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_filter_expression(filter)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        pages(op, table, None, |start| {
            let request = request.clone().set_exclusive_start_key(start);
            async move {
                let out = request.send().await?;
                Ok((out.items, out.last_evaluated_key))
            }
        })
        .await
    }

    /// The items of the index `index` of `table` whose keys match `cond` (built in `e`), page
    /// after page, until there are no more or `max` were read (then each page asks for at most
    /// `max` items, and at most 1,000).
    pub(crate) async fn query(
        &self,
        op: &'static str,
        table: &str,
        index: &str,
        e: &Expr,
        cond: String,
        max: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let page =
            max.map(|max| i32::try_from(max).map_or(QUERY_PAGE_MAX, |m| m.min(QUERY_PAGE_MAX)));
        let request = self
            .client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_limit(page);
        pages(op, table, max, |start| {
            let request = request.clone().set_exclusive_start_key(start);
            async move {
                let out = request.send().await?;
                Ok((out.items, out.last_evaluated_key))
            }
        })
        .await
    }
}

/// The items of a paged read: `send` reads the page that starts at the key it is given (the
/// first page for `None`) and answers its items and the key after it. Reads until there are no
/// more pages, or `max` items were read.
async fn pages<F, Fut, E, R>(
    op: &str,
    table: &str,
    max: Option<usize>,
    mut send: F,
) -> Result<Vec<Item>, StoreError>
where
    F: FnMut(Option<Item>) -> Fut,
    Fut: Future<Output = Result<(Option<Vec<Item>>, Option<Item>), SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let (page, next) = send(start.take())
            .await
            .map_err(|e| sdk_error(op, table, e))?;
        items.extend(page.unwrap_or_default());
        if max.is_some_and(|max| items.len() >= max) {
            return Ok(items);
        }
        match next {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

/// Runs the conditional single-item `writes`, a few at a time ([`WRITE_CONCURRENCY`]); returns
/// how many of them wrote (the others' conditions did not hold). Stops at the first error.
pub(crate) async fn count_written<F>(writes: impl IntoIterator<Item = F>) -> Result<u64, StoreError>
where
    F: Future<Output = Result<Written, StoreError>>,
{
    let written: Vec<Written> = stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(written.iter().filter(|w| **w == Written::Yes).count() as u64)
}

// -- transaction items -----------------------------------------------------------------------
// Each takes the expression its condition (and, for an update, its clauses) was built in.

/// A Put of `item` into `table`, only while `cond` holds.
pub(crate) fn tx_put(
    table: &str,
    item: Item,
    e: &Expr,
    cond: String,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(cond)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// An Update of the item `key` of `table` writing the clauses of `e`, only while `cond` holds
/// (when given).
pub(crate) fn tx_update(
    table: &str,
    key: Item,
    e: &Expr,
    cond: Option<String>,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(e.update())
        .set_condition_expression(cond)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A ConditionCheck: the transaction commits only while `cond` holds for the item `key` of
/// `table`.
pub(crate) fn tx_check(
    table: &str,
    key: Item,
    e: &Expr,
    cond: String,
) -> Result<TransactWriteItem, StoreError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(cond)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A Delete of the item `key` of `table`, only while `cond` holds.
pub(crate) fn tx_delete(
    table: &str,
    key: Item,
    e: &Expr,
    cond: String,
) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(cond)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn build_error(e: BuildError) -> StoreError {
    StoreError::Unavailable(format!("dynamodb: cannot build a request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_codes_name_the_failed_items() {
        let codes = vec!["None".to_owned(), "ConditionalCheckFailed".to_owned()];
        assert!(!Tx::failed(&codes, 0));
        assert!(Tx::failed(&codes, 1));
        assert!(!Tx::failed(&codes, 2));
    }
}
