//! What the store makes of sqlx's errors, and a connection URL fit for messages.

use updraft_store::{DatabaseFailure, StoreError};

/// Every database failure, transient or not, is a [`StoreError::Database`]: callers retry.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    let failure = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DatabaseFailure::Unreachable,
        // serialization_failure, deadlock_detected, lock_not_available
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("40001" | "40P01" | "55P03")) =>
        {
            DatabaseFailure::Busy
        }
        // Connection exceptions (class 08) and a server shutting down or starting (57P01–03),
        // as in a failover.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")) =>
        {
            DatabaseFailure::Unreachable
        }
        _ => DatabaseFailure::Other,
    };
    // What may have broken a connection; the others (an error the server reported, a row
    // that would not decode, a full or closed pool) leave it usable.
    let pool_only = matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed);
    if (failure == DatabaseFailure::Unreachable && !pool_only)
        || matches!(e, sqlx::Error::Protocol(_))
    {
        crate::reuse::note_failure();
    }
    StoreError::database_failure(failure, e.to_string())
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("not a url"), "not a url");
    }
}
