//! Records: small named values with a version, one item each in the `records` table; every
//! write is a compare-and-set on `version` (see "Records" in `mod.rs`). Values may hold secrets:
//! never logged.

use aws_sdk_dynamodb::types::ReturnValue;
use xdm_core::ports::StoreError;
use xdm_core::records::{Expect, Record};

use super::calls::Written;
use super::expr::Expr;
use super::items::{KEY, Reader, UPDATED_AT_MS, VALUE, VERSION, key_of, n, record_from_item, s};
use super::store::DynamoStore;

pub(super) async fn record(store: &DynamoStore, key: &str) -> Result<Option<Record>, StoreError> {
    let item = store
        .calls
        .get("record", &store.tables.records, key_of(KEY, key))
        .await?;
    item.map(|item| record_from_item(&item)).transpose()
}

/// One conditional UpdateItem that returns the new version.
pub(super) async fn put_record(
    store: &DynamoStore,
    key: &str,
    value: &str,
    expect: Expect,
    now_ms: i64,
) -> Result<Option<u64>, StoreError> {
    const OP: &str = "put_record";
    let mut e = Expr::new();
    e.set(VALUE, s(value)).set(UPDATED_AT_MS, n(now_ms));
    let version = e.n(VERSION);
    let one = e.v("one", n(1));
    let condition = match expect {
        Expect::Absent => {
            e.set_raw(format!("{version} = {one}"));
            Some(format!("attribute_not_exists({})", e.n(KEY)))
        }
        Expect::Version(v) => {
            // No stored version is above i64::MAX: the condition cannot hold.
            let Ok(v) = i64::try_from(v) else {
                return Ok(None);
            };
            e.set_raw(format!("{version} = {version} + {one}"));
            Some(e.eq(VERSION, "expected", n(v)))
        }
        Expect::Any => {
            let zero = e.v("zero", n(0));
            e.set_raw(format!(
                "{version} = if_not_exists({version}, {zero}) + {one}"
            ));
            None
        }
    };
    let Some(new) = store
        .calls
        .update_returning(
            OP,
            &store.tables.records,
            key_of(KEY, key),
            &e,
            condition,
            ReturnValue::UpdatedNew,
        )
        .await?
    else {
        return Ok(None);
    };
    let version = Reader::new(&new, "record").n(VERSION)?;
    u64::try_from(version).map(Some).map_err(|_| {
        StoreError::Corrupt(format!(
            "dynamodb {OP}: record {key:?}: version out of range: {version}"
        ))
    })
}

/// One conditional DeleteItem.
pub(super) async fn delete_record(
    store: &DynamoStore,
    key: &str,
    expect: Expect,
) -> Result<bool, StoreError> {
    let mut e = Expr::new();
    let condition = match expect {
        Expect::Absent => return Ok(false),
        Expect::Version(v) => {
            let Ok(v) = i64::try_from(v) else {
                return Ok(false);
            };
            e.eq(VERSION, "expected", n(v))
        }
        // Conditioned on existing, so that the answer says whether something was deleted.
        Expect::Any => format!("attribute_exists({})", e.n(KEY)),
    };
    let written = store
        .calls
        .delete(
            "delete_record",
            &store.tables.records,
            key_of(KEY, key),
            &e,
            condition,
        )
        .await?;
    Ok(written == Written::Yes)
}

/// A strongly consistent Scan (paged) filtered by `begins_with`: records are few.
pub(super) async fn records(store: &DynamoStore, prefix: &str) -> Result<Vec<Record>, StoreError> {
    let mut e = Expr::new();
    let filter = (!prefix.is_empty())
        .then(|| format!("begins_with({}, {})", e.n(KEY), e.v("prefix", s(prefix))));
    let items = store
        .calls
        .scan("records", &store.tables.records, &e, filter)
        .await?;
    let mut records = items
        .iter()
        .map(record_from_item)
        .collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(records)
}
