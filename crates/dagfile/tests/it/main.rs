//! Integration tests of updraft-dagfile: one binary, a module per area.

mod folder;
mod hostile;
mod mapping;
mod parse;
mod run_dependencies;
mod schema_file;
mod sensors;
