//! The web UI (the DAG views' parts that need no page skeleton yet).

pub mod code;
pub mod grid;
pub mod svg;
pub mod trigger_form;
