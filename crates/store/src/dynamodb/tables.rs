//! The five tables: names, key schemas, indexes and TTL, and creating or checking them.
//! `docs/aws-tables.md` describes the same design for the deploy template; keep them in step.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use futures_util::future::try_join_all;

use super::items::{
    ACCEPTED_KEY, ENDED_GROUP, EXPIRES_AT, EXPIRES_AT_MS, EXPIRY_GROUP, FINISHED_QUEUE, KEY,
    OPEN_QUEUE, PK, QUEUE_STATE, UPDATED_AT_MS, USER_ID,
};

/// `sessions` index: ended sessions by `updated_at_ms` (purge).
pub(crate) const ENDED_BY_AGE: &str = "ended_by_age";
/// `profiles` index: profiles by `expires_at_ms` (purge).
pub(crate) const BY_EXPIRY: &str = "by_expiry";
/// `jobs` index: jobs by `(queue, state)`, oldest accepted first (listing, release_claims).
pub(crate) const BY_STATE: &str = "by_state";
/// `jobs` index: done and failed jobs by `updated_at_ms` (purge).
pub(crate) const FINISHED_BY_AGE: &str = "finished_by_age";
/// `lanes` index: the lanes of a queue that have open jobs (lane_heads).
pub(crate) const OPEN_LANES: &str = "open_lanes";

/// The names of the store's tables: `{prefix}sessions`, `{prefix}profiles`, `{prefix}jobs`,
/// `{prefix}lanes` and `{prefix}records`, where the prefix is the `XDM_STORE=dynamodb:PREFIX`
/// setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub sessions: String,
    pub profiles: String,
    pub jobs: String,
    pub lanes: String,
    pub records: String,
}

impl TableNames {
    pub fn new(prefix: &str) -> Self {
        Self {
            sessions: format!("{prefix}sessions"),
            profiles: format!("{prefix}profiles"),
            jobs: format!("{prefix}jobs"),
            lanes: format!("{prefix}lanes"),
            records: format!("{prefix}records"),
        }
    }

    pub(crate) fn specs(&self) -> [(&str, &'static TableSpec); 5] {
        [
            (self.sessions.as_str(), &SESSIONS),
            (self.profiles.as_str(), &PROFILES),
            (self.jobs.as_str(), &JOBS),
            (self.lanes.as_str(), &LANES),
            (self.records.as_str(), &RECORDS),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    S,
    N,
}

#[derive(Debug)]
pub(crate) struct IndexSpec {
    pub name: &'static str,
    pub hash: (&'static str, Kind),
    pub range: Option<(&'static str, Kind)>,
    /// `true`: ALL attributes are projected (the store reads them from the index);
    /// `false`: KEYS_ONLY (the store reads the keys and fetches the items from the table).
    pub all: bool,
}

#[derive(Debug)]
pub(crate) struct TableSpec {
    /// The partition key (a string); no table has a sort key.
    pub hash: &'static str,
    pub indexes: &'static [IndexSpec],
}

const SESSIONS: TableSpec = TableSpec {
    hash: PK,
    indexes: &[IndexSpec {
        name: ENDED_BY_AGE,
        hash: (ENDED_GROUP, Kind::S),
        range: Some((UPDATED_AT_MS, Kind::N)),
        all: false,
    }],
};

const PROFILES: TableSpec = TableSpec {
    hash: USER_ID,
    indexes: &[IndexSpec {
        name: BY_EXPIRY,
        hash: (EXPIRY_GROUP, Kind::S),
        range: Some((EXPIRES_AT_MS, Kind::N)),
        all: false,
    }],
};

const JOBS: TableSpec = TableSpec {
    hash: PK,
    indexes: &[
        IndexSpec {
            name: BY_STATE,
            hash: (QUEUE_STATE, Kind::S),
            range: Some((ACCEPTED_KEY, Kind::S)),
            all: false,
        },
        IndexSpec {
            name: FINISHED_BY_AGE,
            hash: (FINISHED_QUEUE, Kind::S),
            range: Some((UPDATED_AT_MS, Kind::N)),
            all: false,
        },
    ],
};

const LANES: TableSpec = TableSpec {
    hash: PK,
    indexes: &[IndexSpec {
        name: OPEN_LANES,
        hash: (OPEN_QUEUE, Kind::S),
        range: None,
        all: true,
    }],
};

/// Records are few and read by key (or all of a prefix, by a Scan): no index.
const RECORDS: TableSpec = TableSpec {
    hash: KEY,
    indexes: &[],
};

/// Why the tables could not be created or are not usable.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(
        "the DynamoDB table {table} does not exist; create the tables as docs/aws-tables.md describes (the deploy template does)"
    )]
    Missing { table: String },
    #[error(
        "the DynamoDB table {table} does not match what this build expects: {problem} (see docs/aws-tables.md)"
    )]
    Mismatch { table: String, problem: String },
    #[error("the DynamoDB table {table} did not become ACTIVE within {seconds} s")]
    NotActive { table: String, seconds: u64 },
    #[error("DynamoDB {op} on the table {table} failed: {message}")]
    Call {
        table: String,
        op: &'static str,
        message: String,
    },
}

fn call_error<E>(table: &str, op: &'static str, e: E) -> TableError
where
    E: std::error::Error + 'static,
{
    TableError::Call {
        table: table.to_owned(),
        op,
        message: DisplayErrorContext(&e).to_string(),
    }
}

fn scalar(kind: Kind) -> ScalarAttributeType {
    match kind {
        Kind::S => ScalarAttributeType::S,
        Kind::N => ScalarAttributeType::N,
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, TableError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| call_error(name, "CreateTable", e))
}

/// How long `create_tables` waits for a table (and its indexes) to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Creates the missing tables, checks the existing ones, waits until all are ACTIVE and makes
/// sure TTL is enabled on `expires_at`. Idempotent, and safe to run from several processes.
pub(crate) async fn create_tables(client: &Client, names: &TableNames) -> Result<(), TableError> {
    try_join_all(
        names
            .specs()
            .into_iter()
            .map(|(table, spec)| create_table(client, table, spec)),
    )
    .await?;
    Ok(())
}

/// Checks that every table exists, is usable and has the expected keys and indexes.
pub(crate) async fn check_tables(client: &Client, names: &TableNames) -> Result<(), TableError> {
    try_join_all(names.specs().into_iter().map(|(table, spec)| async move {
        match describe(client, table).await? {
            None => Err(TableError::Missing {
                table: table.to_owned(),
            }),
            Some(desc) => {
                check_schema(table, spec, &desc)?;
                if ready(&desc) {
                    Ok(())
                } else {
                    Err(TableError::Mismatch {
                        table: table.to_owned(),
                        problem: "the table or one of its indexes is not ACTIVE yet".to_owned(),
                    })
                }
            }
        }
    }))
    .await?;
    Ok(())
}

async fn create_table(client: &Client, table: &str, spec: &TableSpec) -> Result<(), TableError> {
    // CreateTable first: for the usual case (tests, a new environment) that is the only call
    // before waiting; an existing table answers ResourceInUseException and is checked instead.
    let mut definitions = vec![(spec.hash, Kind::S)];
    for index in spec.indexes {
        definitions.push(index.hash);
        definitions.extend(index.range);
    }
    definitions.sort_by_key(|(name, _)| *name);
    definitions.dedup_by_key(|(name, _)| *name);
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    for (name, kind) in definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(scalar(kind))
                .build()
                .map_err(|e| call_error(table, "CreateTable", e))?,
        );
    }
    for index in spec.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .key_schema(key(index.hash.0, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(if index.all {
                        ProjectionType::All
                    } else {
                        ProjectionType::KeysOnly
                    })
                    .build(),
            );
        if let Some((range, _)) = index.range {
            gsi = gsi.key_schema(key(range, KeyType::Range)?);
        }
        request = request.global_secondary_indexes(
            gsi.build()
                .map_err(|e| call_error(table, "CreateTable", e))?,
        );
    }
    match request.send().await {
        Ok(out) => {
            tracing::info!(table, "DynamoDB table created");
            // DynamoDB answers CREATING and needs a wait; emulators are often ACTIVE at once.
            let active = out.table_description().is_some_and(ready);
            if !active {
                wait_active(client, table, spec).await?;
            }
        }
        // It exists already (or another process is creating it): check it.
        Err(e) if e.code() == Some("ResourceInUseException") => {
            wait_active(client, table, spec).await?;
        }
        Err(e) => return Err(call_error(table, "CreateTable", e)),
    }
    enable_ttl(client, table).await
}

async fn describe(client: &Client, table: &str) -> Result<Option<TableDescription>, TableError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error(table, "DescribeTable", e)),
    }
}

fn ready(desc: &TableDescription) -> bool {
    matches!(
        desc.table_status(),
        Some(TableStatus::Active | TableStatus::Updating)
    ) && desc
        .global_secondary_indexes()
        .iter()
        .all(|i| matches!(i.index_status(), Some(IndexStatus::Active) | None))
}

async fn wait_active(client: &Client, table: &str, spec: &TableSpec) -> Result<(), TableError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if let Some(desc) = describe(client, table).await?
            && ready(&desc)
        {
            return check_schema(table, spec, &desc);
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(TableError::NotActive {
                table: table.to_owned(),
                seconds: ACTIVE_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn check_schema(table: &str, spec: &TableSpec, desc: &TableDescription) -> Result<(), TableError> {
    let mismatch = |problem: String| TableError::Mismatch {
        table: table.to_owned(),
        problem,
    };
    let keys = |schema: &[KeySchemaElement]| -> (Option<String>, Option<String>) {
        let find = |t: KeyType| {
            schema
                .iter()
                .find(|k| *k.key_type() == t)
                .map(|k| k.attribute_name().to_owned())
        };
        (find(KeyType::Hash), find(KeyType::Range))
    };
    if keys(desc.key_schema()) != (Some(spec.hash.to_owned()), None) {
        return Err(mismatch(format!(
            "its key schema must be the partition key {} (a string) alone",
            spec.hash
        )));
    }
    for index in spec.indexes {
        let Some(found) = desc
            .global_secondary_indexes()
            .iter()
            .find(|g| g.index_name() == Some(index.name))
        else {
            return Err(mismatch(format!(
                "the global secondary index {} is missing",
                index.name
            )));
        };
        let want = (
            Some(index.hash.0.to_owned()),
            index.range.map(|(r, _)| r.to_owned()),
        );
        if keys(found.key_schema()) != want {
            return Err(mismatch(format!(
                "the index {} must be keyed by {}{}",
                index.name,
                index.hash.0,
                index
                    .range
                    .map(|(r, _)| format!(" and {r}"))
                    .unwrap_or_default()
            )));
        }
        if index.all
            && found.projection().and_then(|p| p.projection_type()) != Some(&ProjectionType::All)
        {
            return Err(mismatch(format!(
                "the index {} must project ALL attributes",
                index.name
            )));
        }
    }
    Ok(())
}

async fn enable_ttl(client: &Client, table: &str) -> Result<(), TableError> {
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(|e| call_error(table, "UpdateTimeToLive", e))?;
    let e = match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) if e.code() == Some("ValidationException") => e,
        Err(e) => return Err(call_error(table, "UpdateTimeToLive", e)),
    };
    // DynamoDB refuses to enable TTL twice ("TimeToLive is already enabled"): see on what.
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| call_error(table, "DescribeTimeToLive", e))?;
    let Some(ttl) = current.time_to_live_description().filter(|t| {
        matches!(
            t.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        )
    }) else {
        return Err(call_error(table, "UpdateTimeToLive", e));
    };
    match ttl.attribute_name() {
        Some(EXPIRES_AT) => Ok(()),
        other => Err(TableError::Mismatch {
            table: table.to_owned(),
            problem: format!(
                "TTL is enabled on {} instead of {EXPIRES_AT:?}",
                other.map_or_else(|| "another attribute".to_owned(), |a| format!("{a:?}"))
            ),
        }),
    }
}
