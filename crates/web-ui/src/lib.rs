//! The web UI (the DAG views' parts that need no page skeleton yet).

pub mod svg;
