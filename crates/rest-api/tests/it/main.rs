//! Contract tests of the public REST API against a real server on a SQLite file.

mod connections;
mod fixture;
mod permissions;
mod variables;
mod version;
