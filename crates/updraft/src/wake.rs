//! The wake-up socket of `standalone`: a Unix datagram socket next to the database file. A CLI
//! command that changed something (a trigger, a clear, a pause) sends one datagram, so the
//! scheduler reacts within milliseconds without polling the database.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

pub fn socket_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".wake");
    PathBuf::from(name)
}

/// Best effort: when no `standalone` listens, the next one to start finds the change anyway.
pub fn send(path: &Path) {
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.send_to(b"!", path);
    }
}

/// Binds the socket, replacing a stale one left by a process that died.
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixDatagram> {
    let _ = std::fs::remove_file(path);
    tokio::net::UnixDatagram::bind(path)
}
