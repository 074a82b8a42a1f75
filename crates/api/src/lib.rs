//! The task-execution API: how remote workers reach the cluster without database credentials.
//!
//! - **Server** ([`router`], [`serve`]): stateless API servers, any number of them behind a load
//!   balancer, all on one shared database. Routes under `/execution/v1/` (bearer token) serve
//!   the [`TaskExecution`](updraft_store::TaskExecution) operations straight on the store.
//!   The public API, health included, is `updraft-rest-api`'s, merged beside it.
//! - **Client** ([`HttpExecution`]): implements [`TaskExecution`](updraft_store::TaskExecution)
//!   over HTTP for a remote worker, failing over between the API servers it was given.
//!
//! The request and response bodies are in [`wire`], and what the server checks in a request
//! body in [`validate`]. Instants that bound a lease are computed by the server's clock: the
//! client sends durations, since workers' clocks may be skewed.
//!
//! Features: `server` and `client` (both default). Without them the crate is [`wire`] and
//! [`validate`] alone, with no HTTP stack: what the fuzz targets (`fuzz/`) build on.

#[cfg(feature = "server")]
mod auth;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod execution;
#[cfg(feature = "server")]
mod server;
pub mod validate;
#[cfg(feature = "server")]
mod wake;
pub mod wire;

#[cfg(feature = "client")]
pub use client::{HttpExecution, HttpExecutionOptions};
#[cfg(feature = "server")]
pub use server::{router, serve, serve_with, ApiState};

/// Why an API server or client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The worker token is empty: the server would accept anyone, so it refuses to start.
    #[error("the worker token is empty: set a secret token that workers must present")]
    EmptyToken,
    /// The worker token cannot be sent in an HTTP header (control characters).
    #[error("the worker token contains characters that cannot be sent in an HTTP header")]
    InvalidToken,
    #[error("no API server URL was given")]
    NoServers,
    #[error("invalid API server URL {url:?}: {reason}")]
    InvalidServerUrl { url: String, reason: String },
    /// The router was built outside a tokio runtime (it spawns its wake-up tasks).
    #[error("the API router must be built inside a tokio runtime")]
    NoRuntime,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("API server I/O error: {0}")]
    Io(#[from] std::io::Error),
}
