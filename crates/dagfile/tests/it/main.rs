//! Integration tests of updraft-dagfile: one binary, a module per area.

mod assets;
mod cross_dag;
mod folder;
mod fuzz_corpus;
mod hostile;
mod mapping;
mod notifications;
mod parse;
mod parse_keys;
mod run_dependencies;
mod schema_file;
mod sensors;
