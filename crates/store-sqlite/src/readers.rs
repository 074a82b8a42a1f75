//! Read-only connections for the read methods: in WAL mode readers never wait for the writer
//! (nor it for them), so reads of the public API use the second core while the engine writes.
//! One is opened with the store (a read never waits for a connection to open on the engine's
//! path), the others on demand, at most [`MAX_READERS`]; each read is its own transaction, begun after
//! any write this process committed before it, so reads see their own process's writes.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use rusqlite::{Connection, OpenFlags};
use updraft_store::{Result, StoreError};

use crate::{db_err, BUSY_TIMEOUT};

/// Enough to keep two cores busy with reads while a third waits for its turn.
pub(crate) const MAX_READERS: usize = 4;

pub(crate) struct Readers {
    path: PathBuf,
    pool: Mutex<Pool>,
    returned: Condvar,
}

struct Pool {
    idle: Vec<Connection>,
    /// Connections open, idle or in use.
    open: usize,
}

impl Readers {
    pub fn new(path: &Path) -> Result<Self> {
        let readers = Readers {
            path: path.to_path_buf(),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        };
        let first = readers.open()?;
        readers.give_back(first);
        readers.lock()?.open = 1;
        Ok(readers)
    }

    /// Runs `f` on a read-only connection (blocking: call from a blocking thread).
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let out = f(&conn);
        self.give_back(conn);
        out
    }

    fn take(&self) -> Result<Connection> {
        let mut pool = self.lock()?;
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                return self.open().inspect_err(|_| {
                    if let Ok(mut pool) = self.lock() {
                        pool.open -= 1;
                        // A waiter may open the connection this one could not.
                        self.returned.notify_one();
                    }
                });
            }
            pool = self
                .returned
                .wait(pool)
                .map_err(|_| StoreError::database("reader pool lock poisoned"))?;
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut pool) = self.lock() {
            pool.idle.push(conn);
            self.returned.notify_one();
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Pool>> {
        self.pool
            .lock()
            .map_err(|_| StoreError::database("reader pool lock poisoned"))
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            StoreError::database(format!("cannot open {} to read: {e}", self.path.display()))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        Ok(conn)
    }
}
