//! The reaper: a small helper process that outlives its worker only to kill the worker's task
//! process groups. It holds the list of live process groups and, when its input reaches
//! end-of-file (the worker is gone, whatever killed it), SIGKILLs every group still listed, so
//! no task runs on unobserved. It is the worker's only protection against its own crash: task
//! processes are started without `PR_SET_PDEATHSIG` (that needs a `pre_exec` hook, which would
//! make every spawn a full fork of the worker).
//!
//! The reaper is forked ([`Reaper::fork`], by a process that still has one thread) or started
//! as a program ([`Reaper::spawn`], which calls [`reaper_main`]); its input is a pipe from the
//! worker (the program's stdin). Protocol on it, one line each: `+PGID` (a task started),
//! `-PGID` (it ended); `+docker NAME [URL]` / `-docker NAME [URL]` for a Docker task's
//! container, which the daemon runs outside every process group and which is killed through
//! the docker CLI.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{ForkResult, Pid};

/// The worker's end: registers and releases process groups.
pub struct Reaper {
    /// The reaper's input.
    input: Mutex<File>,
    /// The reaper when spawned as a program ([`Reaper::spawn`]); a forked one has no handle.
    _child: Option<Child>,
}

impl Reaper {
    /// Starts `program args…`, which must call [`reaper_main`], in its own process group (a
    /// Ctrl-C to the worker's terminal must not take the reaper down first).
    pub fn spawn(program: &Path, args: &[&str]) -> std::io::Result<Reaper> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("reaper has no stdin"))?;
        Ok(Reaper {
            input: Mutex::new(File::from(OwnedFd::from(stdin))),
            _child: Some(child),
        })
    }

    /// Forks the reaper off this process, in its own process group. Cheaper than
    /// [`Reaper::spawn`] of this program: the child shares the parent's pages instead of
    /// loading, relocating and paging in a second copy of the binary (a reaper exec'd from
    /// `updraft` held 8.8 MiB resident, most of it the binary's own pages).
    ///
    /// # Safety
    ///
    /// The process must have one thread: the child runs Rust code that allocates, and a lock
    /// held by another thread at the fork would be held forever in the child.
    pub unsafe fn fork() -> std::io::Result<Reaper> {
        let (read, write) = nix::unistd::pipe()?;
        // SAFETY: the caller guarantees a single thread (see above).
        match unsafe { nix::unistd::fork() }? {
            ForkResult::Child => {
                drop(write);
                forked_reaper_main(read)
            }
            ForkResult::Parent { child } => {
                drop(read);
                // The child moves itself too; whichever runs first, a Ctrl-C to the worker's
                // terminal never finds the reaper in the worker's group.
                let _ = nix::unistd::setpgid(child, child);
                // The parent's tasks must not inherit the write end: the reaper would then
                // never see end-of-file while one of them lives.
                let write = File::from(write);
                nix::fcntl::fcntl(
                    write.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                )?;
                Ok(Reaper {
                    input: Mutex::new(write),
                    _child: None,
                })
            }
        }
    }

    /// Registers `pgid` until the returned guard is dropped.
    pub(super) fn guard(&self, pgid: Pid) -> Registration<'_> {
        self.register(pgid.as_raw());
        Registration { reaper: self, pgid }
    }

    pub fn register(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    pub fn release(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// Registers the container `name` (of the daemon at `docker_url`) until the returned guard
    /// is dropped.
    pub fn guard_container(
        &self,
        name: &str,
        docker_url: Option<&str>,
    ) -> ContainerRegistration<'_> {
        let line = match docker_url.filter(|u| !u.is_empty() && !u.contains(char::is_whitespace)) {
            Some(url) => format!("docker {name} {url}\n"),
            None => format!("docker {name}\n"),
        };
        self.send(&format!("+{line}"));
        ContainerRegistration { reaper: self, line }
    }

    fn send(&self, line: &str) {
        if let Ok(mut input) = self.input.lock() {
            if let Err(e) = input.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "the reaper is gone; task processes may outlive a crash");
            }
        }
    }
}

/// Keeps a process group on the reaper's list for as long as it lives.
pub(super) struct Registration<'a> {
    reaper: &'a Reaper,
    pgid: Pid,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.reaper.release(self.pgid.as_raw());
    }
}

/// Keeps a container on the reaper's list for as long as its task runs.
pub struct ContainerRegistration<'a> {
    reaper: &'a Reaper,
    line: String,
}

impl Drop for ContainerRegistration<'_> {
    fn drop(&mut self) {
        self.reaper.send(&format!("-{}", self.line));
    }
}

/// The reaper process: track groups from stdin; at end-of-file kill those left and return.
pub fn reaper_main() {
    serve(std::io::stdin().lock());
}

/// The forked reaper: its own process group and no standard output, as [`Reaper::spawn`]
/// starts one, then [`serve`] on `input`; it never returns into the worker's code.
fn forked_reaper_main(input: OwnedFd) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Its command line is the worker's; its name (`ps -C`, `top`) tells it apart.
    let _ = nix::sys::prctl::set_name(c"updraft-reaper");
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), nix::libc::STDOUT_FILENO);
    }
    serve(BufReader::new(File::from(input)));
    // SAFETY: `_exit` ends the process at once; the worker's exit handlers and destructors
    // belong to the worker, not to its forked copy.
    unsafe { nix::libc::_exit(0) }
}

/// Tracks groups from `input`; at end-of-file kills those left.
fn serve(input: impl BufRead) {
    let mut groups: HashSet<i32> = HashSet::new();
    let mut containers: HashSet<String> = HashSet::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        if let Some(container) = number.strip_prefix("docker ") {
            match sign {
                "+" => containers.insert(container.to_owned()),
                _ => containers.remove(container),
            };
            continue;
        }
        let Ok(pgid) = number.trim().parse::<i32>() else {
            continue;
        };
        if pgid <= 1 {
            continue;
        }
        match sign {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    for container in containers {
        let mut words = container.split_whitespace();
        if let Some(name) = words.next() {
            super::kill_containers(&[name.to_owned()], words.next());
        }
    }
}
