//! CPU time, resident memory and open file descriptors of processes, read from Linux's
//! `/proc`.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

/// The CPU and memory of a set of processes at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// How many processes were measured.
    pub processes: usize,
    /// Their own user + system time, in seconds.
    pub cpu_s: f64,
    /// User + system time of the waited-for children of the main process (the task
    /// processes), in seconds.
    pub children_cpu_s: f64,
    /// Sum of their current resident sets (VmRSS), in MiB.
    pub rss_mib: f64,
    /// Sum of their peak resident sets (VmHWM), in MiB.
    pub peak_rss_mib: f64,
}

impl Usage {
    /// Measures `pids`; `main` is the one whose children's CPU time is the tasks'.
    pub fn of(pids: &[i32], main: i32) -> Result<Usage> {
        let tick = clock_ticks_per_second();
        let mut usage = Usage {
            processes: pids.len(),
            cpu_s: 0.0,
            children_cpu_s: 0.0,
            rss_mib: 0.0,
            peak_rss_mib: 0.0,
        };
        for &pid in pids {
            let stat = Stat::read(pid)?;
            usage.cpu_s += (stat.utime + stat.stime) as f64 / tick;
            if pid == main {
                usage.children_cpu_s += (stat.cutime + stat.cstime) as f64 / tick;
            }
            let (rss_kib, hwm_kib) = memory_kib(pid)?;
            usage.rss_mib += rss_kib as f64 / 1024.0;
            usage.peak_rss_mib += hwm_kib as f64 / 1024.0;
        }
        Ok(usage)
    }
}

/// The fields of `/proc/PID/stat` the harness uses (times in clock ticks).
struct Stat {
    ppid: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl Stat {
    fn read(pid: i32) -> Result<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
        Stat::parse(&text).with_context(|| format!("unexpected /proc/{pid}/stat: {text}"))
    }

    /// The command name is in parentheses and may contain spaces; fields follow the last `)`.
    fn parse(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `fields[0]` is field 3 (state) of proc(5).
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        Some(Stat {
            ppid: fields.get(1)?.parse().ok()?,
            utime: field(14)?,
            stime: field(15)?,
            cutime: field(16)?,
            cstime: field(17)?,
        })
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
fn memory_kib(pid: i32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Ok((value("VmRSS:").unwrap_or(0), value("VmHWM:").unwrap_or(0)))
}

/// The resident set (VmRSS) of one process, in KiB.
pub fn resident_kib(pid: i32) -> Result<u64> {
    Ok(memory_kib(pid)?.0)
}

/// How many file descriptors one process holds open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: i32) -> Result<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?;
    Ok(entries.filter(|e| e.is_ok()).count())
}

/// One process's established TCP connections, as two counts.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Established {
    /// Accepted on one of the process's listening ports: held open by its clients
    /// (keep-alive), which choose when to close them.
    pub inbound: usize,
    /// Opened by the process to the given remote port.
    pub to_port: usize,
}

/// One process's established TCP connections: those it accepted, and those it opened to
/// `remote_port`. A connection the process failed to close after its peer did is in
/// CLOSE-WAIT, not established, and counted in neither.
pub fn established(pid: i32, remote_port: u16) -> Result<Established> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?;
    let inodes: HashSet<u64> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| socket_inode(&target.to_string_lossy()))
        .collect();
    let mut sockets = Vec::new();
    for table in ["tcp", "tcp6"] {
        // A host without IPv6 has no tcp6 table.
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            sockets.extend(text.lines().skip(1).filter_map(TcpSocket::parse));
        }
    }
    Ok(count_established(&sockets, &inodes, remote_port))
}

/// `socket:[INODE]`, the target of a socket's `/proc/PID/fd` link.
fn socket_inode(link_target: &str) -> Option<u64> {
    link_target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The fields of one line of `/proc/net/tcp` the harness uses.
#[derive(Debug, PartialEq)]
struct TcpSocket {
    local_port: u16,
    remote_port: u16,
    /// `st`: 01 established, 0A listening (include/net/tcp_states.h).
    state: u8,
    inode: u64,
}

const TCP_ESTABLISHED: u8 = 0x01;
const TCP_LISTEN: u8 = 0x0A;

impl TcpSocket {
    /// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
    /// inode ...`, addresses as `HEXADDR:HEXPORT`.
    fn parse(line: &str) -> Option<TcpSocket> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |field: usize| {
            let (_, port) = fields.get(field)?.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        };
        Some(TcpSocket {
            local_port: port(1)?,
            remote_port: port(2)?,
            state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
            inode: fields.get(9)?.parse().ok()?,
        })
    }
}

/// The established sockets among `inodes`: inbound when their local port is one a socket
/// among `inodes` listens on, else counted when they lead to `remote_port`.
fn count_established(
    sockets: &[TcpSocket],
    inodes: &HashSet<u64>,
    remote_port: u16,
) -> Established {
    let own: Vec<&TcpSocket> = sockets
        .iter()
        .filter(|s| inodes.contains(&s.inode))
        .collect();
    let listening: HashSet<u16> = own
        .iter()
        .filter(|s| s.state == TCP_LISTEN)
        .map(|s| s.local_port)
        .collect();
    let mut counts = Established::default();
    for socket in own.iter().filter(|s| s.state == TCP_ESTABLISHED) {
        if listening.contains(&socket.local_port) {
            counts.inbound += 1;
        } else if socket.remote_port == remote_port {
            counts.to_port += 1;
        }
    }
    counts
}

/// CPU time the whole machine spent busy since boot (every core: user, nice, system, irq,
/// softirq, steal), in seconds: with nothing else running, the work of updraft, its task
/// processes and its database together.
pub fn machine_busy_s() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let line = text.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Ok(busy as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the running system; it touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn exe(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Children of `parent` that run the same executable (the standalone's reaper).
pub fn children_running_same_exe(parent: i32) -> Vec<i32> {
    let Some(parent_exe) = exe(parent) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| Stat::read(pid).is_ok_and(|s| s.ppid == parent))
        .filter(|&pid| exe(pid).as_ref() == Some(&parent_exe))
        .collect()
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|text| {
        text.rfind(')')
            .and_then(|i| text[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{count_established, socket_inode, Established, Stat, TcpSocket};

    #[test]
    fn established_connections_inbound_and_to_a_port() {
        // Port 8080 (1F90) listens; 8081 (1F91) is a client's port; 5432 (1538) the database.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:D432 08 00000000:00000000 00:00000000 00000000     0        0 102 1 0 20 4 30 10 -1
   3: 0100007F:D433 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 103 1 0 20 4 30 10 -1
   4: 0100007F:1F90 0100007F:D434 01 00000000:00000000 00:00000000 00000000     0        0 104 1 0 20 4 30 10 -1
   5: 0100007F:1F91 0100007F:D435 01 00000000:00000000 00:00000000 00000000     0        0 105 1 0 20 4 30 10 -1
   6: 0100007F:D436 0100007F:1538 08 00000000:00000000 00:00000000 00000000     0        0 106 1 0 20 4 30 10 -1";
        let sockets: Vec<TcpSocket> = table.lines().skip(1).filter_map(TcpSocket::parse).collect();
        assert_eq!(sockets.len(), 7);
        assert_eq!(
            sockets[3],
            TcpSocket {
                local_port: 0xD433,
                remote_port: 5432,
                state: 0x01,
                inode: 103
            }
        );
        // Ours: the listener, an established client, one in CLOSE-WAIT (a leak: in neither),
        // an established database connection and one in CLOSE-WAIT. 104 is another process's;
        // 105 is established on a port no socket of ours listens on, to no database.
        let ours: HashSet<u64> = [100, 101, 102, 103, 105, 106].into();
        assert_eq!(
            count_established(&sockets, &ours, 5432),
            Established {
                inbound: 1,
                to_port: 1
            }
        );
        // Without its listener, the process accepted nothing.
        let without_the_listener: HashSet<u64> = [101, 102, 103].into();
        assert_eq!(
            count_established(&sockets, &without_the_listener, 5432),
            Established {
                inbound: 0,
                to_port: 1
            }
        );
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/tmp/socket:[1]"), None);
    }

    #[test]
    fn stat_with_spaces_in_the_name() {
        let text = "42 (a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 1 0 5 0 0";
        let stat = Stat::parse(text).unwrap();
        assert_eq!(
            (stat.ppid, stat.utime, stat.stime, stat.cutime, stat.cstime),
            (7, 11, 22, 33, 44)
        );
    }
}
