//! The wake-up socket of `standalone`: a Unix datagram socket in the abstract namespace, named
//! after the database file. A CLI command that changed something (a trigger, a clear, a pause)
//! sends one datagram, so the scheduler reacts within milliseconds without polling the
//! database. Abstract names have no path-length limit, and vanish with the process.

use std::hash::{Hash, Hasher};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

pub fn address(db_path: &Path) -> std::io::Result<SocketAddr> {
    let canonical = db_path
        .canonicalize()
        .unwrap_or_else(|_| db_path.to_path_buf());
    let mut hasher = std::hash::DefaultHasher::new();
    canonical.hash(&mut hasher);
    SocketAddr::from_abstract_name(format!("updraft-wake-{:016x}", hasher.finish()))
}

/// Best effort: when no `standalone` listens, the next one to start finds the change anyway.
pub fn send(db_path: &Path) {
    if let (Ok(socket), Ok(addr)) = (UnixDatagram::unbound(), address(db_path)) {
        let _ = socket.send_to_addr(b"!", &addr);
    }
}

pub fn bind(db_path: &Path) -> std::io::Result<tokio::net::UnixDatagram> {
    let socket = UnixDatagram::bind_addr(&address(db_path)?)?;
    socket.set_nonblocking(true)?;
    tokio::net::UnixDatagram::from_std(socket)
}
