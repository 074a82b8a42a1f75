//! Integration tests of the SQLite store: the shared conformance suite on a real database file,
//! and what only SQLite has (the file, its schema version, its locking).

mod conformance;
mod sqlite;
