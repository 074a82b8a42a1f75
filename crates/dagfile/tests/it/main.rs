//! Integration tests of updraft-dagfile: one binary, a module per area.

mod folder;
mod hostile;
mod parse;
mod schema_file;
