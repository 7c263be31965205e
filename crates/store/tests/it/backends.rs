//! Factories of fresh, empty stores, one per backend under test.

use std::ops::Deref;
use std::sync::Arc;

use xdm_core::ports::Store;
use xdm_store::{AnyStore, DynamoStore, MemoryStore, SqliteStore, StoreUrl};

/// A fresh store and whatever must outlive it (the temporary directory of a database file).
#[derive(Debug)]
pub struct Fresh<S> {
    store: Arc<S>,
    _dir: Option<tempfile::TempDir>,
}

impl<S: Store> Fresh<S> {
    /// A handle for concurrent tasks; the files stay until `self` is dropped.
    pub fn shared(&self) -> Arc<S> {
        Arc::clone(&self.store)
    }
}

impl<S> Deref for Fresh<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.store
    }
}

pub async fn memory() -> Fresh<MemoryStore> {
    Fresh {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

/// File-backed, so concurrent calls really go through SQLite's locking.
pub async fn sqlite_file() -> Fresh<SqliteStore> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let store = SqliteStore::open(dir.path().join("conformance.db"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Fresh {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Through the factory and the enum, as the application opens it.
pub async fn any_sqlite_in_memory() -> Fresh<AnyStore> {
    let url = StoreUrl::parse("sqlite::memory:").unwrap_or_else(|e| panic!("{e}"));
    let store = xdm_store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Fresh {
        store: Arc::new(store),
        _dir: None,
    }
}

/// Fresh tables (a unique prefix) in the DynamoDB emulator (`moto.rs`).
pub async fn dynamodb() -> Fresh<DynamoStore> {
    Fresh {
        store: Arc::new(fresh_dynamodb().await),
        _dir: None,
    }
}

/// A `DynamoStore` on freshly created tables with a unique prefix.
pub async fn fresh_dynamodb() -> DynamoStore {
    let prefix = format!("xdm-test-{}.", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::new(&xdm_testkit::moto::sdk_config(), &prefix);
    store
        .create_tables()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
}
