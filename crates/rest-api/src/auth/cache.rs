//! A short-lived cache of who a token acts as, so that a busy client does not cost two
//! database reads (the token's revocation, the user and its role) per request.
//!
//! The database stays the truth: an entry lives [`TTL`] at most, and a change this server
//! learns of drops entries at once — a logout here drops its token, and any change the store
//! announces as "everything" ([`Store::watch`]: users created, changed or deleted through
//! this process, a CLI command's wake-up on SQLite) drops them all. A user changed or a token
//! revoked by another process (another api-server, the CLI on PostgreSQL) is honoured here
//! within the TTL. Only accepted tokens are kept: a refusal is always read afresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;
use updraft_store::{Change, Store};

use super::Role;

/// How long a decision is reused.
pub const TTL: Duration = Duration::from_secs(3);

/// Beyond this many tokens, expired entries are dropped (and all of them if none had expired).
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct AuthCache {
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    /// By token id.
    entries: HashMap<String, Entry>,
    changes: Receiver<Change>,
    /// Counts the times entries were dropped, so that a decision read from the database
    /// before a drop is not stored after it (a logout racing a request of the same token).
    generation: u64,
}

struct Entry {
    username: String,
    role: Role,
    until: Instant,
}

impl AuthCache {
    pub fn new(store: &dyn Store, ttl: Duration) -> Self {
        AuthCache {
            ttl,
            state: Mutex::new(State {
                entries: HashMap::new(),
                changes: store.watch(),
                generation: 0,
            }),
        }
    }

    /// The role `username` had when token `token_id` was last accepted, if that was recent
    /// and nothing changed since.
    pub fn get(&self, token_id: &str, username: &str) -> Option<Role> {
        let mut state = self.state.lock().ok()?;
        state.forget_changed();
        let entry = state.entries.get(token_id)?;
        (entry.until > Instant::now() && entry.username == username).then_some(entry.role)
    }

    /// What [`put`](Self::put) checks: read it before reading the decision from the database.
    pub fn generation(&self) -> Option<u64> {
        let mut state = self.state.lock().ok()?;
        state.forget_changed();
        Some(state.generation)
    }

    /// Remembers that token `token_id` of `username` was accepted with `role`, as read from
    /// the database after [`generation`](Self::generation) answered `seen`; nothing if
    /// entries were dropped since (the decision may be one a logout just revoked).
    pub fn put(&self, token_id: &str, username: &str, role: Role, seen: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.forget_changed();
        if state.generation != seen {
            return;
        }
        let now = Instant::now();
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.retain(|_, e| e.until > now);
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
        }
        state.entries.insert(
            token_id.to_string(),
            Entry {
                username: username.to_string(),
                role,
                until: now + self.ttl,
            },
        );
    }

    /// Drops what is known of a token (it was revoked here).
    pub fn forget_token(&self, token_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.entries.remove(token_id);
            state.generation += 1;
        }
    }

    /// Drops what is known of a user's tokens (the user was changed or deleted here).
    pub fn forget_user(&self, username: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.entries.retain(|_, e| e.username != username);
            state.generation += 1;
        }
    }
}

impl State {
    /// Drops every entry if the store announced a change that may concern users.
    fn forget_changed(&mut self) {
        loop {
            match self.changes.try_recv() {
                Ok(Change::Everything) | Err(TryRecvError::Lagged(_)) => {
                    self.entries.clear();
                    self.generation += 1;
                }
                Ok(
                    Change::Runs(_)
                    | Change::TriesFinished { .. }
                    | Change::PlacesFree
                    | Change::WorkQueued(_)
                    | Change::Dags(_)
                    | Change::Jobs,
                ) => {}
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => {
                    self.entries.clear();
                    self.generation += 1;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        cache: AuthCache,
        tx: tokio::sync::broadcast::Sender<Change>,
    }

    impl Fixture {
        fn now(&self) -> u64 {
            self.cache.generation().unwrap()
        }
    }

    fn fixture(ttl: Duration) -> Fixture {
        let (tx, rx) = tokio::sync::broadcast::channel(4);
        Fixture {
            cache: AuthCache {
                ttl,
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    changes: rx,
                    generation: 0,
                }),
            },
            tx,
        }
    }

    #[test]
    fn an_accepted_token_is_reused_for_its_user_only() {
        let f = fixture(TTL);
        assert_eq!(f.cache.get("t1", "ann"), None);
        f.cache.put("t1", "ann", Role::Op, f.now());
        assert_eq!(f.cache.get("t1", "ann"), Some(Role::Op));
        assert_eq!(f.cache.get("t1", "bob"), None);
        assert_eq!(f.cache.get("t2", "ann"), None);
    }

    #[test]
    fn entries_expire() {
        let f = fixture(Duration::ZERO);
        f.cache.put("t1", "ann", Role::Op, f.now());
        assert_eq!(f.cache.get("t1", "ann"), None);
    }

    #[test]
    fn logouts_user_changes_and_announced_changes_drop_entries() {
        let f = fixture(TTL);
        f.cache.put("t1", "ann", Role::Op, f.now());
        f.cache.put("t2", "ann", Role::Op, f.now());
        f.cache.put("t3", "bob", Role::Viewer, f.now());
        f.cache.forget_token("t1");
        assert_eq!(f.cache.get("t1", "ann"), None);
        assert_eq!(f.cache.get("t2", "ann"), Some(Role::Op));
        f.cache.forget_user("ann");
        assert_eq!(f.cache.get("t2", "ann"), None);
        assert_eq!(f.cache.get("t3", "bob"), Some(Role::Viewer));

        // Task instances changing concern no user; "everything" may.
        f.tx.send(Change::Runs(vec![1])).unwrap();
        assert_eq!(f.cache.get("t3", "bob"), Some(Role::Viewer));
        f.tx.send(Change::Everything).unwrap();
        assert_eq!(f.cache.get("t3", "bob"), None);

        // Missed changes (the receiver lagged) may have been anything.
        f.cache.put("t3", "bob", Role::Viewer, f.now());
        for id in 0..10 {
            f.tx.send(Change::Runs(vec![id])).unwrap();
        }
        assert_eq!(f.cache.get("t3", "bob"), None);
    }

    #[test]
    fn a_decision_read_before_a_logout_is_not_kept_after_it() {
        let f = fixture(TTL);
        // A request reads the generation, then the database (token not revoked yet)…
        let seen = f.now();
        // …a logout of that token lands meanwhile…
        f.cache.forget_token("t1");
        // …and the request's decision must not outlive it.
        f.cache.put("t1", "ann", Role::Op, seen);
        assert_eq!(f.cache.get("t1", "ann"), None);
        let seen = f.now();
        f.tx.send(Change::Everything).unwrap();
        f.cache.put("t1", "ann", Role::Op, seen);
        assert_eq!(f.cache.get("t1", "ann"), None);
        f.cache.put("t1", "ann", Role::Op, f.now());
        assert_eq!(f.cache.get("t1", "ann"), Some(Role::Op));
    }
}
