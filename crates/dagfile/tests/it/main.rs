//! Integration tests of updraft-dagfile: one binary, a module per area.

mod assets;
mod folder;
mod hostile;
mod mapping;
mod parse;
mod run_dependencies;
mod schema_file;
