//! Secrets: Fernet encryption at rest, connection URIs and environment connections, masking.
//!
//! - [`FernetCipher`] is the [`updraft_store::Cipher`] the stores encrypt passwords, extras
//!   and variable values with: `core.fernet_key`, a comma-separated list of keys (encrypt
//!   with the first, decrypt with any), in the token format Airflow writes, so a database
//!   value Airflow encrypted with the same key reads back.
//! - [`SensitiveNames`] decides which names look secret (Airflow's `sensitive_var_conn_names`)
//!   and [`redact_json`] hides their values in API answers.
//! - [`Masker`] replaces known secret values in text (task logs) with `***`.
//! - [`uri`] reads and writes Airflow's connection URI and JSON forms; [`env`](mod@env) reads
//!   `AIRFLOW_CONN_<ID>` / `UPDRAFT_CONN_<ID>` connections from the environment.

pub mod env;
mod fernet_cipher;
mod mask;
mod sensitive;
pub mod uri;

pub use env::EnvConnections;
pub use fernet_cipher::{generate_fernet_key, FernetCipher, FernetKeyError};
pub use mask::{Masker, MIN_MASKED_LENGTH};
pub use sensitive::{redact_json, SensitiveNames, DEFAULT_SENSITIVE_NAMES, REDACTED};
pub use uri::ConnectionFormError;
