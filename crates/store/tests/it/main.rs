//! The one integration-test binary of xdm-store.
//!
//! `conformance` holds the contract of the core's `Store` port as generic async functions; each
//! backend runs all of them through one `conformance_suite!` line below, with a factory that
//! gives a fresh, empty store. `sqlite_specific` covers what only the SQLite backend has
//! (files, reopening, crashes, several connections, corrupt rows), `sqlite_start_up` what opening
//! a file checks and the instance lock; `dynamodb_specific` what only
//! the DynamoDB backend has (TTL, several stores on one set of tables, opening by URL). The
//! DynamoDB tests run against the moto emulator, which `moto` starts (see there).

#[macro_use]
mod conformance;
mod backends;
mod dynamodb_specific;
mod fixtures;
mod sqlite_specific;
mod sqlite_start_up;
mod token_keeper;

// One line per backend.
mod memory {
    conformance_suite!(crate::backends::memory);
}
mod sqlite {
    conformance_suite!(crate::backends::sqlite_file);
}
mod any_sqlite_in_memory {
    conformance_suite!(crate::backends::any_sqlite_in_memory);
}
mod dynamodb {
    conformance_suite!(crate::backends::dynamodb);
}
