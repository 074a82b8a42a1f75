//! The public REST API.
