//! How values are written to SQLite columns: the encoding every backend shares
//! ([`updraft_store::codec`]).

pub use updraft_store::codec::*;
