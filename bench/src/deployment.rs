//! What a workload runs against: one `updraft standalone` on SQLite, or a cluster on
//! PostgreSQL. The workloads see only this.

use std::time::Duration;

use anyhow::Result;

use crate::cluster::Cluster;
use crate::metadata::Database;
use crate::procfs::Usage;
use crate::standalone::Standalone;
use crate::updraft::Home;
use crate::workloads::Bench;

pub enum Deployment {
    Standalone(Standalone),
    Cluster(Cluster),
}

impl Deployment {
    /// Spawns the process(es) in `home`; [`wait_ready`](Self::wait_ready) waits for them.
    pub fn spawn(bench: &Bench, home: &Home) -> Result<Deployment> {
        Ok(match bench.database {
            Database::Sqlite => Deployment::Standalone(Standalone::start(bench.updraft, home)?),
            Database::Postgres => {
                Deployment::Cluster(Cluster::start(bench.updraft, home, bench.cluster)?)
            }
        })
    }

    /// Waits until it is up with `expected_dags` DAGs; returns the time since the (first)
    /// process was spawned.
    pub fn wait_ready(
        &mut self,
        bench: &Bench,
        home: &Home,
        expected_dags: usize,
    ) -> Result<Duration> {
        match self {
            Deployment::Standalone(s) => s.wait_ready(bench.database, home, expected_dags),
            Deployment::Cluster(c) => c.wait_ready(bench.updraft, home, expected_dags),
        }
    }

    /// `http://HOST:PORT` of the API: the standalone's, or the cluster's API server's.
    pub fn api_url(&self) -> Option<String> {
        match self {
            Deployment::Standalone(s) => Some(s.url()),
            Deployment::Cluster(c) => c.api_url(),
        }
    }

    /// The updraft processes (not the task processes).
    pub fn pids(&self) -> Vec<i32> {
        match self {
            Deployment::Standalone(s) => s.pids(),
            Deployment::Cluster(c) => c.pids(),
        }
    }

    /// CPU and memory of the updraft processes now, and of the tasks they ran.
    pub fn usage(&self) -> Result<Usage> {
        match self {
            Deployment::Standalone(s) => s.usage(),
            Deployment::Cluster(c) => c.usage(),
        }
    }

    /// An error (with the end of its log) if a process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self {
            Deployment::Standalone(s) => s.check_alive(),
            Deployment::Cluster(c) => c.check_alive(),
        }
    }

    /// SIGTERM, and an error unless every process exits cleanly.
    pub fn stop(self) -> Result<()> {
        match self {
            Deployment::Standalone(s) => s.stop(),
            Deployment::Cluster(c) => c.stop(),
        }
    }
}
