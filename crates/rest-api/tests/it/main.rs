//! Contract tests of the public REST API against a real server on a SQLite file.

mod auth;
mod fixture;
mod permissions;
mod version;
