//! Contract tests of the public REST API against a real server on a SQLite file.

mod fixture;
mod openapi_file;
mod permissions;
mod version;
