//! The one integration-test binary of xdm-store.
//!
//! `conformance` holds the contract of the core's `Store` port as generic async functions; each
//! backend runs all of them through one `conformance_suite!` line below, with a factory that
//! gives a fresh, empty store. `sqlite_specific` covers what only the SQLite backend has
//! (files, reopening, crashes, several connections, corrupt rows).

#[macro_use]
mod conformance;
mod backends;
mod fixtures;
mod sqlite_specific;

// One line per backend (a DynamoDB backend adds `mod dynamodb { conformance_suite!(…); }`).
mod memory {
    conformance_suite!(crate::backends::memory);
}
mod sqlite {
    conformance_suite!(crate::backends::sqlite_file);
}
mod any_sqlite_in_memory {
    conformance_suite!(crate::backends::any_sqlite_in_memory);
}
