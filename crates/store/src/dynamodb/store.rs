//! The DynamoDB store type: its options, building it on a client, its tables, and what every
//! concern module shares (the TTLs it writes, the consistent reads that treat expired items as
//! absent, the condition of a Put that creates an item, the race retry bound).

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use xdm_core::jobs::{Job, JobKey, JobQueue};
use xdm_core::ports::{Clock, StoreError, SystemClock};

use super::calls::Calls;
use super::expr::Expr;
use super::items::{
    EXPIRES_AT, Item, PK, is_expired, job_from_item, job_pk, key_of, n, ttl_seconds,
};
use super::tables::{self, TableError, TableNames};

/// How long finished jobs and ended sessions stay before DynamoDB's TTL deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamoOptions {
    /// Done and failed jobs (and so their deduplication) are kept this long after they
    /// finished. Default: 7 days (`xdm_core::jobs::JOB_RETENTION_MS`, which the replay bounds
    /// are checked against: keep it).
    pub job_retention: Duration,
    /// Ended sessions are kept this long after they ended (late streamed items still find
    /// their customer). Default: 30 days.
    pub session_retention: Duration,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        Self {
            job_retention: Duration::from_millis(xdm_core::jobs::JOB_RETENTION_MS.unsigned_abs()),
            session_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Attempts at an operation that keeps losing races against other writers (the state it read
/// changed before its conditional write).
pub(super) const RACE_ATTEMPTS: usize = 5;

/// The `Store` on DynamoDB tables (see the documentation of the `dynamodb` module, `mod.rs`, for
/// the design).
#[derive(Clone)]
pub struct DynamoStore {
    pub(super) calls: Calls,
    prefix: Arc<str>,
    pub(super) tables: Arc<TableNames>,
    options: DynamoOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("prefix", &self.prefix)
            .field("tables", &self.tables)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on the tables `{table_prefix}sessions`, `…profiles`, `…jobs`, `…lanes` and
    /// `…records`, with
    /// one DynamoDB client built from `sdk` (credentials, region, endpoint). Makes no call.
    pub fn new(sdk: &SdkConfig, table_prefix: &str) -> Self {
        Self::from_client(Client::new(sdk), table_prefix)
    }

    /// A store using an existing client.
    pub fn from_client(client: Client, table_prefix: &str) -> Self {
        Self {
            calls: Calls { client },
            prefix: Arc::from(table_prefix),
            tables: Arc::new(TableNames::new(table_prefix)),
            options: DynamoOptions::default(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_options(mut self, options: DynamoOptions) -> Self {
        self.options = options;
        self
    }

    /// The clock that sets and checks retention TTLs (tests move it to see items expire).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The table prefix (`XDM_STORE=dynamodb:PREFIX`).
    pub fn table_prefix(&self) -> &str {
        &self.prefix
    }

    pub fn table_names(&self) -> &TableNames {
        &self.tables
    }

    pub fn client(&self) -> &Client {
        &self.calls.client
    }

    /// Creates the tables that do not exist (with their indexes, on-demand billing), waits until
    /// they are ACTIVE and enables TTL on `expires_at`. Existing tables are checked, not changed.
    /// Idempotent, and safe to run from several processes at once. For tests, local development
    /// and admin commands: production tables come from the deploy template.
    pub async fn create_tables(&self) -> Result<(), TableError> {
        tables::create_tables(&self.calls.client, &self.tables).await
    }

    /// Checks that the tables exist with the keys and indexes this build uses (DescribeTable
    /// only: the calls a running store makes need no more permissions than that).
    pub async fn check_tables(&self) -> Result<(), TableError> {
        tables::check_tables(&self.calls.client, &self.tables).await
    }

    // -- TTL: shared by the concern modules ---------------------------------------------------

    pub(super) fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The TTL (epoch seconds) of an item kept `retention` from now.
    fn ttl_after(&self, retention: Duration) -> i64 {
        let ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        ttl_seconds(self.clock.now_ms().saturating_add(ms))
    }

    /// The TTL of a job that finishes now (and of a lane left empty now).
    pub(super) fn job_ttl(&self) -> i64 {
        self.ttl_after(self.options.job_retention)
    }

    /// The TTL of a session that ends now (or is written while ended).
    pub(super) fn session_ttl(&self) -> i64 {
        self.ttl_after(self.options.session_retention)
    }

    /// A strongly consistent GetItem that treats an item whose TTL has passed as absent.
    pub(super) async fn get_live(
        &self,
        op: &'static str,
        table: &str,
        key: Item,
    ) -> Result<Option<Item>, StoreError> {
        let item = self.calls.get(op, table, key).await?;
        Ok(item.filter(|item| !is_expired(item, self.now_s())))
    }

    /// The job, read consistently; one that has expired is absent.
    pub(super) async fn get_job(
        &self,
        op: &'static str,
        queue: JobQueue,
        key: &JobKey,
    ) -> Result<Option<Job>, StoreError> {
        let item = self
            .get_live(
                op,
                &self.tables.jobs,
                key_of(PK, job_pk(queue, key.as_str())),
            )
            .await?;
        item.map(|item| job_from_item(&item)).transpose()
    }
}

/// The condition of a Put that creates an item: no item has its key, or the one that has it
/// expired at `now_s` (it no longer exists, whether or not DynamoDB has deleted it yet).
pub(super) fn absent_or_expired(e: &mut Expr, now_s: i64) -> String {
    format!(
        "attribute_not_exists({}) OR {} <= {}",
        e.n(PK),
        e.n(EXPIRES_AT),
        e.v("now_s", n(now_s))
    )
}
