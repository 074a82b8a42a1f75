//! Who may do what: Airflow's roles, the permission every operation needs, and the one
//! function that decides every request ([`allows`]). Authentication (tokens, passwords,
//! logins) lives in the submodules.

mod cache;
pub mod cookies;
pub mod login;
mod middleware;
pub mod password;
pub mod tokens;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use updraft_store::Store;

use crate::{ApiError, RestConfig};

pub(crate) use middleware::{authorize, with_challenge, OperationAccess};
pub use middleware::{CSRF_COOKIE, CSRF_HEADER, TOKEN_COOKIE};
pub use tokens::Claims;

/// Airflow's roles, each allowed what the one before it is and more.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Role {
    /// Reads everything but connections, variables, config and users.
    Viewer,
    /// Also triggers, clears, marks, pauses and edits notes.
    User,
    /// Also manages variables, pools, connections and XComs.
    Op,
    /// Also users and the configuration.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::User, Role::Op, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::User => "User",
            Role::Op => "Op",
            Role::Admin => "Admin",
        }
    }

    /// Parses a role name, case-insensitively.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Edit,
    Delete,
}

/// What an operation acts on (Airflow's resource names, roughly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Dag,
    DagRun,
    TaskInstance,
    TaskLog,
    XCom,
    Variable,
    Pool,
    Connection,
    ImportError,
    Job,
    EventLog,
    Config,
    User,
    /// Assets, their events and queued events.
    Asset,
    /// Health, version: anything every signed-in user may read.
    Website,
}

/// The access an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health, the OpenAPI document, logging in).
    Public,
    /// A valid token, whatever the role (logging out, the user's own identity).
    Authenticated,
    Require(Action, Resource),
}

/// The principal a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// The token's id, to revoke it on logout.
    pub token_id: String,
    /// When the token expires (seconds since the epoch).
    pub expires_at: i64,
}

/// Whether `role` may do `action` on `resource` — for `dag_id` when the operation concerns
/// one DAG. Every request is decided here, so per-DAG access can be added in this one place.
pub fn allows(role: Role, action: Action, resource: Resource, dag_id: Option<&str>) -> bool {
    let _ = dag_id; // every DAG is open to every role, for now
    let needed = match (resource, action) {
        (Resource::Config | Resource::User, _) => Role::Admin,
        (Resource::Variable | Resource::Connection, _) => Role::Op,
        (Resource::Pool | Resource::XCom, Action::Read) => Role::Viewer,
        (Resource::Pool | Resource::XCom, _) => Role::Op,
        (_, Action::Read) => Role::Viewer,
        (
            Resource::Dag | Resource::DagRun | Resource::TaskInstance | Resource::Asset,
            Action::Create | Action::Edit | Action::Delete,
        ) => Role::User,
        (_, _) => Role::Admin,
    };
    role >= needed
}

pub use cache::TTL as AUTH_CACHE_TTL;

/// The authentication of a server: tokens it signs and checks, passwords, failed logins.
pub struct Auth {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: tokens::TokenService,
    /// Who recently accepted tokens act as (see [`AUTH_CACHE_TTL`]).
    pub(crate) cache: cache::AuthCache,
}

impl Auth {
    pub fn new(store: Arc<dyn Store>, config: &RestConfig) -> Result<Self, ApiError> {
        Ok(Auth {
            tokens: tokens::TokenService::new(&config.jwt_secret, config.jwt_expiration)?,
            cache: cache::AuthCache::new(&*store, config.auth_cache_ttl),
            store,
        })
    }

    /// Forgets what this server knows of `username`'s tokens, so that a change of the user
    /// (role, password, deletion) made here takes effect on its next request. Changes the
    /// store announces (see [`updraft_store::Store::watch`]) do this by themselves.
    pub fn forget_user(&self, username: &str) {
        self.cache.forget_user(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_case_insensitively() {
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse(" Op "), Some(Role::Op));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn each_role_gets_what_the_issue_names() {
        use Action::*;
        use Resource::*;
        let cases = [
            (Read, Dag, Role::Viewer),
            (Edit, Dag, Role::User),
            (Create, DagRun, Role::User),
            (Edit, TaskInstance, Role::User),
            (Read, Variable, Role::Op),
            (Create, Pool, Role::Op),
            (Read, Pool, Role::Viewer),
            (Delete, Connection, Role::Op),
            (Read, Config, Role::Admin),
            (Create, User, Role::Admin),
            (Read, EventLog, Role::Viewer),
        ];
        for (action, resource, least) in cases {
            for role in Role::ALL {
                assert_eq!(
                    allows(role, action, resource, None),
                    role >= least,
                    "{role:?} {action:?} {resource:?}"
                );
            }
        }
    }
}
