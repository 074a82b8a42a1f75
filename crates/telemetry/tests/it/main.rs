//! Integration tests of the traces crate: real exports over loopback HTTP.

mod export;
