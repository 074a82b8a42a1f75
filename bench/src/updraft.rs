//! The `updraft` binary under test and the throwaway `$UPDRAFT_HOME` each repetition runs in.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::postgres::{random_hex, FreshDatabase};

/// The workspace this harness belongs to (where `target/` and `.git` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The binary being measured, and the settings it runs with beyond the defaults.
#[derive(Debug, Clone)]
pub struct Updraft {
    binary: PathBuf,
    /// `(key, value)` as given to `--set`, and the `UPDRAFT_…` variable that carries each.
    settings: Vec<Setting>,
}

/// One `--set section.key=value`.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// Parses `section.key=value`.
    pub fn parse(text: &str) -> Result<Setting> {
        let (key, value) = text.split_once('=').context("expected SECTION.KEY=VALUE")?;
        let well_formed = key.split_once('.').is_some_and(|(section, name)| {
            let word =
                |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            word(section) && word(name)
        });
        anyhow::ensure!(
            well_formed,
            "the key must be SECTION.KEY, as `updraft config list` shows it (e.g. worker.direct_exec)"
        );
        Ok(Setting {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The variable that overrides this key: `UPDRAFT_<SECTION>__<KEY>`.
    fn variable(&self) -> String {
        format!(
            "UPDRAFT_{}",
            self.key.replace('.', "__").to_ascii_uppercase()
        )
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl Updraft {
    /// `explicit` as given, or this workspace's `target/release/updraft` (built first when
    /// `build` is set: a no-op when it is up to date, and it never measures a stale binary).
    pub fn locate(explicit: Option<PathBuf>, build: bool) -> Result<Updraft> {
        let binary = match explicit {
            Some(path) => path,
            None => {
                let root = workspace_root();
                if build {
                    eprintln!("updraft-bench: cargo build --release -p updraft");
                    let status = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
                        .args(["build", "--release", "-p", "updraft"])
                        .env_remove("CARGO_TARGET_DIR")
                        .current_dir(&root)
                        .status()
                        .context("cannot run cargo to build updraft (use --updraft PATH)")?;
                    if !status.success() {
                        bail!("`cargo build --release -p updraft` failed (or pass --updraft PATH / --no-build)");
                    }
                }
                root.join("target/release/updraft")
            }
        };
        if !binary.is_file() {
            bail!(
                "no updraft binary at {}: build it with `cargo build --release -p updraft` or pass --updraft PATH",
                binary.display()
            );
        }
        let binary = binary
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", binary.display()))?;
        Ok(Updraft {
            binary,
            settings: Vec::new(),
        })
    }

    /// Runs every updraft process with these settings instead of the defaults.
    pub fn with_settings(mut self, settings: Vec<Setting>) -> Updraft {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `updraft ARGS` in `home`, with no `UPDRAFT_*` setting leaking in from our environment
    /// (only `--set`'s), dying with the harness.
    pub fn command(&self, home: &Home) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("UPDRAFT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("UPDRAFT_HOME", home.path())
            .envs(self.settings.iter().map(|s| (s.variable(), &s.value)))
            .envs(home.env.iter().map(|(k, v)| (k, v)))
            .current_dir(home.path())
            .stdin(Stdio::null());
        dies_with_harness(&mut cmd);
        cmd
    }

    /// Runs `updraft ARGS` to completion; stdout on success, an error with stderr otherwise.
    pub fn cli(&self, home: &Home, args: &[&str]) -> Result<String> {
        let out = self
            .command(home)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        if !out.status.success() {
            bail!(
                "`updraft {}` exited with {}: {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        String::from_utf8(out.stdout).context("updraft printed invalid UTF-8")
    }

    /// `updraft ARGS --output json`, parsed.
    pub fn cli_json(&self, home: &Home, args: &[&str]) -> Result<Value> {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let text = self.cli(home, &args)?;
        serde_json::from_str(&text)
            .with_context(|| format!("`updraft {}` printed no JSON: {text}", args.join(" ")))
    }

    /// Triggers a run of `dag_id`; with `wait`, returns once it finished (an error if it
    /// failed). Returns the run id.
    pub fn trigger(&self, home: &Home, dag_id: &str, wait: bool) -> Result<String> {
        let mut args = vec!["dags", "trigger", dag_id];
        if wait {
            args.push("--wait");
        }
        let value = self.cli_json(home, &args)?;
        value
            .get(0)
            .and_then(|run| run.get("run_id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no run_id in the output of `dags trigger`: {value}"))
    }

    /// The `core.parallelism` a fresh home gets (what every workload runs with).
    pub fn default_parallelism(&self) -> Result<u64> {
        let home = Home::new()?;
        let config = self.cli_json(&home, &["config", "list"])?;
        config
            .pointer("/core/parallelism")
            .and_then(Value::as_u64)
            .context("`updraft config list` shows no core.parallelism")
    }
}

/// Homes whose repetition is over, removed by [`RemoveHomesAtExit`].
static FINISHED_HOMES: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());

/// Removes the homes of every finished repetition when dropped, at the end of the run.
///
/// Removing a repetition's home (tens of thousands of log files after W5) right before the next
/// repetition would charge that repetition for the harness's own clean-up: ext4 without a
/// journal (these VMs' disks) will not reuse an inode freed in the last 60 s (300 s while its
/// inode table block is not written back), and allocating a file then scans past every such
/// inode of the block group; that scan was 40 % of updraft's CPU in W5. Runs of the harness
/// one after another still see each other's clean-up (see `bench/RESULTS.md`).
pub struct RemoveHomesAtExit;

impl Drop for RemoveHomesAtExit {
    fn drop(&mut self) {
        let homes = match FINISHED_HOMES.lock() {
            Ok(mut homes) => std::mem::take(&mut *homes),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        drop(homes);
        remove_abandoned_homes();
    }
}

/// Homes are named `updraft-bench-<harness pid>-<random>`.
const HOME_PREFIX: &str = "updraft-bench-";

/// Removes the homes that harness runs which died (killed, or interrupted with Ctrl-C) left
/// in the temporary directory: those whose harness process no longer exists.
fn remove_abandoned_homes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let harness = name
            .to_str()
            .and_then(|n| n.strip_prefix(HOME_PREFIX)?.split_once('-'))
            .and_then(|(pid, _random)| pid.parse::<i32>().ok());
        if harness.is_some_and(|pid| !crate::procfs::is_alive(pid)) {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                eprintln!(
                    "updraft-bench: warning: cannot remove the abandoned {}: {e}",
                    entry.path().display()
                );
            }
        }
    }
}

/// Makes an updraft process (a standalone, a cluster role, a CLI call) die with the harness,
/// however the harness dies: no updraft process outlives an interrupted run. (The harness
/// then forks instead of `posix_spawn`ing: a fraction of a millisecond for its small address
/// space, inside W4's and W6's process timings.)
fn dies_with_harness(command: &mut Command) {
    let harness = std::process::id();
    // SAFETY: between fork and exec the closure calls only the async-signal-safe `prctl`
    // and `getppid`, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The harness died before the prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(harness) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A fresh `$UPDRAFT_HOME` in a temporary directory, removed at the end of the run (see
/// [`RemoveHomesAtExit`]); its DAG folder is the default `$UPDRAFT_HOME/dags`. On PostgreSQL
/// it also owns the repetition's fresh database (dropped with the home) and the settings every
/// updraft command gets.
pub struct Home {
    path: PathBuf,
    /// Always `Some` until dropped, when it moves to [`FINISHED_HOMES`].
    dir: Option<tempfile::TempDir>,
    /// `UPDRAFT_*` variables of every command run in this home.
    env: Vec<(String, String)>,
    postgres: Option<FreshDatabase>,
}

impl Drop for Home {
    fn drop(&mut self) {
        if let (Some(dir), Ok(mut finished)) = (self.dir.take(), FINISHED_HOMES.lock()) {
            finished.push(dir);
        }
    }
}

impl Home {
    /// A home on the default database, SQLite in `$UPDRAFT_HOME/updraft.db`.
    pub fn new() -> Result<Home> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{HOME_PREFIX}{}-", std::process::id()))
            .tempdir()
            .context("cannot create a temporary UPDRAFT_HOME")?;
        std::fs::create_dir_all(dir.path().join("dags")).context("cannot create the DAG folder")?;
        Ok(Home {
            path: dir.path().to_owned(),
            dir: Some(dir),
            env: Vec::new(),
            postgres: None,
        })
    }

    /// A home whose commands use `database` (`UPDRAFT_DATABASE__URL`) and a random worker
    /// token (`UPDRAFT_API__WORKER_TOKEN`, which the API server and the worker share).
    pub fn on_postgres(database: FreshDatabase) -> Result<Home> {
        let mut home = Home::new()?;
        home.env = vec![
            ("UPDRAFT_DATABASE__URL".into(), database.url().to_owned()),
            ("UPDRAFT_API__WORKER_TOKEN".into(), random_hex(24)?),
        ];
        home.postgres = Some(database);
        Ok(home)
    }

    /// The URL of this home's PostgreSQL database, if it has one.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(FreshDatabase::url)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dags(&self) -> PathBuf {
        self.path().join("dags")
    }

    /// The SQLite file of the default `database.url`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.path().join("updraft.db")
    }
}
