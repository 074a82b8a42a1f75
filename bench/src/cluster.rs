//! A running cluster on PostgreSQL: N × `updraft scheduler`, one `updraft api-server` and one
//! `updraft worker` that reaches it over HTTP, all in one home and on its fresh database;
//! awaited until every role is up, measured through `/proc`, and always stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::metadata::{Metadata, PostgresMetadata};
use crate::procfs::{self, Usage};
use crate::updraft::{Home, Updraft};

/// How long start-up may take before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often start-up is checked: the start-up figure is this coarse.
const READY_POLL: Duration = Duration::from_millis(10);
/// A worker drains (waits for its running tasks) before it exits; nothing runs by then.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The shape of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterShape {
    pub schedulers: usize,
    /// The worker's `--concurrency`: the task processes it runs at once.
    pub worker_concurrency: u64,
}

pub struct Cluster {
    schedulers: Vec<Role>,
    api_server: Role,
    /// Started once the API server has said where it listens.
    worker: Option<Role>,
    shape: ClusterShape,
    spawned_at: Instant,
}

impl Cluster {
    /// Spawns the schedulers (on `home`'s DAG folder) and the API server; the worker follows
    /// in [`wait_ready`](Self::wait_ready) once the API server's address is known.
    pub fn start(updraft: &Updraft, home: &Home, shape: ClusterShape) -> Result<Cluster> {
        anyhow::ensure!(
            home.postgres_url().is_some(),
            "a cluster needs a home on PostgreSQL"
        );
        anyhow::ensure!(shape.schedulers >= 1, "--schedulers must be at least 1");
        let spawned_at = Instant::now();
        let dags = home.dags();
        let dags = dags.to_string_lossy();
        let schedulers = (1..=shape.schedulers)
            .map(|i| {
                Role::spawn(
                    updraft,
                    home,
                    &format!("scheduler-{i}"),
                    &["scheduler", "--dags-folder", &dags],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let api_server = Role::spawn(
            updraft,
            home,
            "api-server",
            &["api-server", "--host", "127.0.0.1", "--port", "0"],
        )?;
        Ok(Cluster {
            schedulers,
            api_server,
            worker: None,
            shape,
            spawned_at,
        })
    }

    /// Waits until the API server listens, the worker is started, `expected_dags` DAGs are
    /// published, and every scheduler and the worker beat in the database; then confirms
    /// that with the CLI, as an operator would (`jobs check`, `worker list`). Returns the
    /// time since the first process was spawned.
    pub fn wait_ready(
        &mut self,
        updraft: &Updraft,
        home: &Home,
        expected_dags: usize,
    ) -> Result<Duration> {
        let metadata = PostgresMetadata::open(home)?;
        loop {
            self.check_alive()?;
            if self.ready(updraft, home, &metadata, expected_dags)? {
                break;
            }
            if self.spawned_at.elapsed() > READY_TIMEOUT {
                bail!(
                    "cluster not ready ({} scheduler(s), a worker, {expected_dags} DAGs) after {:?}: {}",
                    self.shape.schedulers,
                    READY_TIMEOUT,
                    self.log_tails()
                );
            }
            // Each look queries PostgreSQL and reads a log: looking more often would take
            // CPU from the processes whose start-up is being timed.
            std::thread::sleep(READY_POLL);
        }
        let ready = self.spawned_at.elapsed();
        self.confirm_with_cli(updraft, home)?;
        Ok(ready)
    }

    fn ready(
        &mut self,
        updraft: &Updraft,
        home: &Home,
        metadata: &PostgresMetadata,
        expected_dags: usize,
    ) -> Result<bool> {
        if self.worker.is_none() {
            let Some(url) = self.api_server.announced_api_url() else {
                return Ok(false);
            };
            let concurrency = self.shape.worker_concurrency.to_string();
            self.worker = Some(Role::spawn(
                updraft,
                home,
                "worker",
                &[
                    "worker",
                    "--server",
                    &url,
                    "--queues",
                    "default",
                    "--concurrency",
                    &concurrency,
                ],
            )?);
        }
        Ok(metadata.active_dag_count()? == expected_dags
            && metadata.live_jobs("scheduler")? >= self.shape.schedulers
            && metadata.live_jobs("api-server")? >= 1
            && metadata.live_jobs("worker")? >= 1)
    }

    fn confirm_with_cli(&self, updraft: &Updraft, home: &Home) -> Result<()> {
        let limit = self.shape.schedulers.to_string();
        updraft
            .cli(
                home,
                &[
                    "jobs",
                    "check",
                    "--job-type",
                    "scheduler",
                    "--limit",
                    &limit,
                ],
            )
            .context("the schedulers beat in the database, but `jobs check` disagrees")?;
        let workers = updraft.cli_json(home, &["worker", "list"])?;
        let listed = workers.as_array().map_or(0, Vec::len);
        if listed != 1 {
            bail!("`worker list` shows {listed} workers, expected 1: {workers}");
        }
        let queues = &workers[0]["queues"];
        if !queues
            .as_array()
            .is_some_and(|q| q.iter().any(|q| q.as_str() == Some("default")))
        {
            bail!("the worker does not serve the default queue: {workers}");
        }
        Ok(())
    }

    /// `http://HOST:PORT` of the API server, once it has said where it listens.
    pub fn api_url(&self) -> Option<String> {
        self.api_server.announced_api_url()
    }

    fn roles(&self) -> impl Iterator<Item = &Role> {
        self.schedulers
            .iter()
            .chain(std::iter::once(&self.api_server))
            .chain(self.worker.as_ref())
    }

    /// The updraft processes: every role and its children running this binary (the worker's
    /// reaper), not the task processes.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for role in self.roles() {
            pids.push(role.pid());
            pids.extend(procfs::children_running_same_exe(role.pid()));
        }
        pids
    }

    /// CPU and memory of the updraft processes now; the task processes are the worker's
    /// children.
    pub fn usage(&self) -> Result<Usage> {
        let worker = self.worker.as_ref().map_or(0, Role::pid);
        Usage::of(&self.pids(), worker)
    }

    /// An error (with the end of its log) if any process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for role in self
            .schedulers
            .iter_mut()
            .chain(std::iter::once(&mut self.api_server))
            .chain(self.worker.as_mut())
        {
            role.check_alive()?;
        }
        Ok(())
    }

    /// SIGTERM to the worker first (it drains: nothing is running by then), then to the
    /// schedulers (they hand their runs over) and the API server; an error unless every one
    /// exits cleanly within [`STOP_TIMEOUT`].
    pub fn stop(mut self) -> Result<()> {
        self.check_alive()?;
        let children: Vec<i32> = self
            .roles()
            .flat_map(|r| procfs::children_running_same_exe(r.pid()))
            .collect();
        if let Some(worker) = self.worker.as_mut() {
            worker.terminate()?;
            worker.wait_stopped(STOP_TIMEOUT)?;
        }
        for role in self.schedulers.iter().chain([&self.api_server]) {
            role.terminate()?;
        }
        for role in self
            .schedulers
            .iter_mut()
            .chain(std::iter::once(&mut self.api_server))
        {
            role.wait_stopped(STOP_TIMEOUT)?;
        }
        end_lingering(children);
        Ok(())
    }

    fn log_tails(&self) -> String {
        self.roles()
            .map(Role::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits until `child` (sent SIGTERM) exits, at most `timeout`; an error, with the end of its
/// log, unless it exited cleanly.
pub(crate) fn wait_stopped(
    child: &mut Child,
    name: &str,
    timeout: Duration,
    log_tail: impl Fn() -> String,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("cannot poll {name}"))?
        {
            break status;
        }
        if Instant::now() > deadline {
            bail!(
                "{name} did not stop within {timeout:?} of SIGTERM:\n{}",
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        bail!("{name} exited with {status} on SIGTERM:\n{}", log_tail());
    }
    Ok(())
}

/// Gives the stopped processes' `children` (their reapers, which end when their parent's pipe
/// closes) a few seconds, then SIGKILLs any that linger.
pub(crate) fn end_lingering(children: Vec<i32>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|&p| procfs::is_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for pid in children.into_iter().filter(|&p| procfs::is_alive(p)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// One process of the cluster; stdout and stderr go to `home/<name>.log`.
struct Role {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Role {
    fn spawn(updraft: &Updraft, home: &Home, name: &str, args: &[&str]) -> Result<Role> {
        let log = home.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("cannot share the log file")?;
        let child = updraft
            .command(home)
            .args(args)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("cannot start {}", updraft.binary().display()))?;
        Ok(Role {
            name: name.to_owned(),
            child,
            log,
            stopped: false,
        })
    }

    fn pid(&self) -> i32 {
        // A pid always fits; `Child::id` is u32 only by convention.
        self.child.id() as i32
    }

    /// The `api: http://HOST:PORT` line the API server prints once it listens.
    fn announced_api_url(&self) -> Option<String> {
        api_url_in(&std::fs::read_to_string(&self.log).ok()?)
    }

    fn check_alive(&mut self) -> Result<()> {
        if self.stopped {
            bail!("{} has stopped", self.name);
        }
        if let Some(status) = self
            .child
            .try_wait()
            .with_context(|| format!("cannot poll {}", self.name))?
        {
            self.stopped = true;
            bail!("{} exited with {status}: {}", self.name, self.log_tail());
        }
        Ok(())
    }

    fn terminate(&self) -> Result<()> {
        kill(Pid::from_raw(self.pid()), Signal::SIGTERM)
            .with_context(|| format!("cannot signal {}", self.name))
    }

    fn wait_stopped(&mut self, timeout: Duration) -> Result<()> {
        let log = self.log.clone();
        let stopped = wait_stopped(&mut self.child, &self.name, timeout, || tail(&log, 15));
        self.stopped = true;
        stopped
    }

    fn log_tail(&self) -> String {
        tail(&self.log, 15)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `lines` lines of a log, introduced by its path.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!("last lines of {}:\n{tail}", path.display())
}

/// The address in the `api: http://HOST:PORT` line an API server prints once it listens.
pub fn api_url_in(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("api: "))
        .map(str::trim)
        .find(|url| url.starts_with("http://"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::api_url_in;

    #[test]
    fn the_api_servers_address_is_read_from_its_announcement() {
        let text = "updraft api-server is running\n  api: http://127.0.0.1:41234\n  health: http://127.0.0.1:41234/api/v2/monitor/health\n";
        assert_eq!(api_url_in(text).as_deref(), Some("http://127.0.0.1:41234"));
        assert_eq!(api_url_in("2026 INFO starting\n"), None);
    }
}
