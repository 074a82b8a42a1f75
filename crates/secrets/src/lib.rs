//! Secrets: Fernet encryption at rest, connection URIs and environment connections, masking.
