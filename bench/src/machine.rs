//! What the figures were measured on: the machine, the load it carried, the commit, the date.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

const EXT4_WITHOUT_JOURNAL: &str = "ext4 without a journal";

/// The type of the file system `path` is on (from `/proc/self/mountinfo`: the mount with the
/// longest mount point above it), its device, and for ext4 whether it keeps a journal (a
/// `jbd2` journal thread is listed under `/proc/fs/jbd2/<device>-…`).
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = Path::new(fields.get(4)?);
            let (_, after) = line.split_once(" - ")?;
            let mut rest = after.split(' ');
            let (fstype, source) = (rest.next()?, rest.next()?);
            path.starts_with(mount_point).then(|| {
                (
                    mount_point.as_os_str().len(),
                    fstype.to_owned(),
                    source.to_owned(),
                )
            })
        })
        .max_by_key(|(length, _, _)| *length);
    let Some((_, fstype, source)) = mount else {
        return "unknown".to_owned();
    };
    if fstype != "ext4" {
        return format!("{fstype} ({source})");
    }
    let device = source.rsplit('/').next().unwrap_or_default().to_owned();
    let journaled = std::fs::read_dir("/proc/fs/jbd2").is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(&format!("{device}-")))
        })
    });
    if journaled {
        format!("ext4 ({source})")
    } else {
        format!("{EXT4_WITHOUT_JOURNAL} ({source})")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_mib: u64,
    pub cpu_model: String,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages when the harness started (before it built updraft) and
    /// when it ended: other work on the machine shows here.
    pub load_average_start: [f64; 3],
    pub load_average_end: [f64; 3],
    /// The file system of the temporary directory the homes (SQLite files, task logs) are
    /// made in, e.g. `ext4 without a journal (/dev/vda)`: see `bench/RESULTS.md` on why that
    /// matters.
    pub homes_filesystem: String,
}

impl Machine {
    pub fn current() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib: memory_kib / 1024,
            cpu_model,
            kernel,
            load_average_start: load_average(),
            load_average_end: load_average(),
            homes_filesystem: filesystem_of(&std::env::temp_dir()),
        }
    }

    /// Whether the homes are on ext4 without a journal, where files deleted in the last
    /// minutes slow down creating new ones.
    pub fn homes_on_ext4_without_journal(&self) -> bool {
        self.homes_filesystem.starts_with(EXT4_WITHOUT_JOURNAL)
    }
}

pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    let mut next = || values.next().unwrap_or(f64::NAN);
    [next(), next(), next()]
}

/// `git rev-parse HEAD` of the workspace, with `-dirty` when tracked files differ from it.
/// Never takes git's index lock (`--no-optional-locks`).
pub fn commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("--no-optional-locks")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
