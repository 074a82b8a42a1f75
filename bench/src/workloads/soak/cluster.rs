//! The soak's cluster: 3 × `updraft scheduler`, 2 × `updraft api-server` and 2 × `updraft
//! worker` (each pulling from both API servers over HTTP), in one home on its fresh database.
//! Any process can be SIGKILLed and started again with the same arguments (an API server on
//! the same port, so that the workers find it again); each start logs to a file of its own.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cluster::{api_url_in, end_lingering, tail, wait_stopped};
use crate::metadata::{Metadata, PostgresMetadata};
use crate::procfs;
use crate::updraft::{Home, Updraft};

/// How long the cluster may take to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an API server may take to say where it listens.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts of a restarted API server while its port is still held.
const LISTEN_ATTEMPTS: usize = 5;
/// A worker drains its running tasks before it exits; schedulers hand over their runs.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// Lines of a log quoted in an error.
const TAIL_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scheduler,
    ApiServer,
    Worker,
}

impl Kind {
    fn command(self) -> &'static str {
        match self {
            Kind::Scheduler => "scheduler",
            Kind::ApiServer => "api-server",
            Kind::Worker => "worker",
        }
    }
}

/// How many processes of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub schedulers: usize,
    pub api_servers: usize,
    pub workers: usize,
    pub worker_concurrency: u64,
}

/// One process of the cluster, in its current start.
pub struct Process {
    pub name: String,
    pub kind: Kind,
    args: Vec<String>,
    child: Child,
    /// The log of the current start: `<home>/soak-logs/<name>.<start>.log`.
    log: PathBuf,
    /// How many times it was started.
    starts: usize,
    /// `http://HOST:PORT` of an API server.
    api_url: Option<String>,
    stopped: bool,
}

impl Process {
    pub fn pid(&self) -> i32 {
        // A pid always fits; `Child::id` is u32 only by convention.
        self.child.id() as i32
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, TAIL_LINES)
    }

    /// The exit status if it exited (reaped), else `None`.
    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot poll {}", self.name))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct SoakCluster<'a> {
    updraft: &'a Updraft,
    home: &'a Home,
    /// Settings of every process beyond the home's (`UPDRAFT_…` variables).
    env: Vec<(String, String)>,
    pub processes: Vec<Process>,
}

impl<'a> SoakCluster<'a> {
    /// Starts every process and waits until the schedulers, API servers and workers beat in
    /// the database and `dags` DAGs are published.
    pub fn start(
        updraft: &'a Updraft,
        home: &'a Home,
        shape: Shape,
        env: Vec<(String, String)>,
        dags: usize,
    ) -> Result<SoakCluster<'a>> {
        std::fs::create_dir_all(home.path().join("soak-logs"))
            .context("cannot create the soak's log folder")?;
        let mut cluster = SoakCluster {
            updraft,
            home,
            env,
            processes: Vec::new(),
        };
        let spawned = Instant::now();
        let dags_folder = home.dags().to_string_lossy().into_owned();
        for i in 1..=shape.schedulers {
            cluster.add(
                Kind::Scheduler,
                format!("scheduler-{i}"),
                vec![
                    "scheduler".into(),
                    "--dags-folder".into(),
                    dags_folder.clone(),
                ],
            )?;
        }
        for i in 1..=shape.api_servers {
            let args = ["api-server", "--host", "127.0.0.1", "--port", "0"].map(String::from);
            cluster.add(Kind::ApiServer, format!("api-server-{i}"), args.to_vec())?;
        }
        let servers = cluster.api_urls().join(",");
        for i in 1..=shape.workers {
            let args = vec![
                "worker".into(),
                "--server".into(),
                servers.clone(),
                "--queues".into(),
                "default".into(),
                "--concurrency".into(),
                shape.worker_concurrency.to_string(),
            ];
            cluster.add(Kind::Worker, format!("worker-{i}"), args)?;
        }
        let metadata = PostgresMetadata::open(home)?;
        loop {
            cluster.check_alive()?;
            let up = metadata.active_dag_count()? == dags
                && metadata.live_jobs(Kind::Scheduler.command())? >= shape.schedulers
                && metadata.live_jobs(Kind::ApiServer.command())? >= shape.api_servers
                && metadata.live_jobs(Kind::Worker.command())? >= shape.workers;
            if up {
                return Ok(cluster);
            }
            if spawned.elapsed() > READY_TIMEOUT {
                bail!(
                    "the soak's cluster is not up after {READY_TIMEOUT:?}:\n{}",
                    cluster.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://HOST:PORT` of every API server.
    pub fn api_urls(&self) -> Vec<String> {
        self.processes
            .iter()
            .filter_map(|p| p.api_url.clone())
            .collect()
    }

    fn add(&mut self, kind: Kind, name: String, args: Vec<String>) -> Result<()> {
        let process = self.spawn(kind, name, args, 1)?;
        self.processes.push(process);
        Ok(())
    }

    fn spawn(&self, kind: Kind, name: String, args: Vec<String>, starts: usize) -> Result<Process> {
        let attempts = if kind == Kind::ApiServer {
            LISTEN_ATTEMPTS
        } else {
            1
        };
        let mut last_error = None;
        for attempt in 0..attempts {
            let log = self
                .home
                .path()
                .join("soak-logs")
                .join(format!("{name}.{starts}.{}.log", attempt + 1));
            let out = std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            let err = out.try_clone().context("cannot share the log file")?;
            let child = self
                .updraft
                .command(self.home)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .args(&args)
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .with_context(|| format!("cannot start {}", self.updraft.binary().display()))?;
            let mut process = Process {
                name: name.clone(),
                kind,
                args: args.clone(),
                child,
                log,
                starts,
                api_url: None,
                stopped: false,
            };
            if kind != Kind::ApiServer {
                return Ok(process);
            }
            match wait_listening(&mut process) {
                Ok(url) => {
                    process.api_url = Some(url);
                    return Ok(process);
                }
                Err(e) => {
                    last_error = Some(e);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{name} did not start")))
    }

    /// SIGKILLs process `index` and starts it again at once with the same arguments (an API
    /// server on the port it had). Returns the new pid.
    pub fn kill_and_restart(&mut self, index: usize) -> Result<i32> {
        let process = &mut self.processes[index];
        kill(Pid::from_raw(process.pid()), Signal::SIGKILL)
            .with_context(|| format!("cannot kill {}", process.name))?;
        process
            .child
            .wait()
            .with_context(|| format!("cannot reap {}", process.name))?;
        process.stopped = true;
        self.restart(index)
    }

    /// Starts the (exited) process `index` again.
    fn restart(&mut self, index: usize) -> Result<i32> {
        let old = &self.processes[index];
        let mut args = old.args.clone();
        if let Some(port) = old.api_url.as_deref().and_then(|u| u.rsplit(':').next()) {
            if let Some(i) = args.iter().position(|a| a == "--port") {
                args[i + 1] = port.to_owned();
            }
        }
        let new = self.spawn(old.kind, old.name.clone(), args, old.starts + 1)?;
        let pid = new.pid();
        self.processes[index] = new;
        Ok(pid)
    }

    /// Processes that exited although nobody killed them, each with the end of its log; each
    /// is started again.
    pub fn restart_crashed(&mut self) -> Result<Vec<String>> {
        let mut crashed = Vec::new();
        for index in 0..self.processes.len() {
            let process = &mut self.processes[index];
            if let Some(status) = process.exited()? {
                process.stopped = true;
                crashed.push(format!(
                    "{} (pid {}) exited by itself with {status}:\n{}",
                    process.name,
                    process.pid(),
                    process.log_tail()
                ));
                self.restart(index)?;
            }
        }
        Ok(crashed)
    }

    fn check_alive(&mut self) -> Result<()> {
        for process in &mut self.processes {
            if let Some(status) = process.exited()? {
                process.stopped = true;
                bail!(
                    "{} exited with {status}:\n{}",
                    process.name,
                    process.log_tail()
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to the workers first (they drain), then to the schedulers and API servers; an
    /// error unless every process exits cleanly in time.
    pub fn stop(mut self) -> Result<()> {
        self.check_alive()?;
        let children: Vec<i32> = self
            .processes
            .iter()
            .flat_map(|p| procfs::children_running_same_exe(p.pid()))
            .collect();
        for kinds in [&[Kind::Worker][..], &[Kind::Scheduler, Kind::ApiServer]] {
            let stopping: Vec<usize> = (0..self.processes.len())
                .filter(|&i| kinds.contains(&self.processes[i].kind))
                .collect();
            for &i in &stopping {
                let process = &self.processes[i];
                kill(Pid::from_raw(process.pid()), Signal::SIGTERM)
                    .with_context(|| format!("cannot signal {}", process.name))?;
            }
            for &i in &stopping {
                let process = &mut self.processes[i];
                let log = process.log.clone();
                let stopped = wait_stopped(&mut process.child, &process.name, STOP_TIMEOUT, || {
                    tail(&log, TAIL_LINES)
                });
                process.stopped = true;
                stopped?;
            }
        }
        end_lingering(children);
        Ok(())
    }

    pub fn log_tails(&self) -> String {
        self.processes
            .iter()
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits until an API server prints where it listens; an error if it exits first.
fn wait_listening(process: &mut Process) -> Result<String> {
    let started = Instant::now();
    loop {
        if let Some(url) = std::fs::read_to_string(&process.log)
            .ok()
            .and_then(|text| api_url_in(&text))
        {
            return Ok(url);
        }
        if let Some(status) = process.exited()? {
            process.stopped = true;
            bail!(
                "{} exited with {status} before listening:\n{}",
                process.name,
                process.log_tail()
            );
        }
        if started.elapsed() > LISTEN_TIMEOUT {
            bail!(
                "{} did not listen within {LISTEN_TIMEOUT:?}:\n{}",
                process.name,
                process.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
