//! A TCP proxy on `127.0.0.1:0` in front of another address (PostgreSQL), run on threads, that a
//! test can cut: [`Proxy::cut`] closes every current connection and refuses new ones (accepted,
//! then closed at once), [`Proxy::partition`] closes them and holds new ones unanswered, and
//! [`Proxy::restore`] lets traffic through again (held connections are then forwarded).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    /// New connections are closed at once.
    Refuse,
    /// New connections are accepted and left waiting until the proxy is restored.
    Hold,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
    next_id: AtomicU64,
}

struct State {
    mode: Mode,
    /// Both sockets of every forwarded connection, to shut them down on a cut.
    live: Vec<(u64, TcpStream, TcpStream)>,
    /// Connections accepted while partitioned.
    held: Vec<TcpStream>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `target` on a free port of 127.0.0.1.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy: no local address");
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State {
                mode: Mode::Open,
                live: Vec::new(),
                held: Vec::new(),
            }),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("proxy-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("proxy: cannot spawn the accept thread")
        };
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every current connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.shared.close_all(Mode::Refuse);
    }

    /// Closes every current connection and holds new ones, unanswered, until
    /// [`Proxy::restore`].
    pub fn partition(&self) {
        self.shared.close_all(Mode::Hold);
    }

    /// Lets connections through again; connections held by a partition are forwarded now.
    pub fn restore(&self) {
        let held = {
            let mut state = self.shared.lock();
            state.mode = Mode::Open;
            std::mem::take(&mut state.held)
        };
        for client in held {
            forward(client, &self.shared);
        }
    }

    /// How many connections are being forwarded now.
    pub fn connections(&self) -> usize {
        self.shared.lock().live.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread up.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.close_all(Mode::Refuse);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking pipe thread must not take the proxy down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_all(&self, mode: Mode) {
        let (live, held) = {
            let mut state = self.lock();
            state.mode = mode;
            (
                std::mem::take(&mut state.live),
                std::mem::take(&mut state.held),
            )
        };
        for (_, client, upstream) in live {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        for client in held {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let mode = shared.lock().mode;
        match mode {
            Mode::Open => forward(client, &shared),
            Mode::Refuse => {
                let _ = client.shutdown(Shutdown::Both);
            }
            Mode::Hold => {
                let mut state = shared.lock();
                if state.mode == Mode::Hold {
                    state.held.push(client);
                } else {
                    drop(state);
                    forward(client, &shared);
                }
            }
        }
    }
}

/// Connects to the target and pipes both ways on two threads.
fn forward(client: TcpStream, shared: &Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect(shared.target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client2), Ok(upstream2), Ok(client3), Ok(upstream3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    {
        let mut state = shared.lock();
        if state.mode != Mode::Open {
            // Cut while we were connecting.
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            return;
        }
        state.live.push((id, client3, upstream3));
    }
    let spawn = |name: &str, from: TcpStream, to: TcpStream| {
        let shared = shared.clone();
        thread::Builder::new().name(name.into()).spawn(move || {
            pipe(from, to);
            shared.lock().live.retain(|(i, _, _)| *i != id);
        })
    };
    let up = spawn("proxy-up", client, upstream);
    let down = spawn("proxy-down", upstream2, client2);
    if up.is_err() || down.is_err() {
        shared.close_all(Mode::Open);
    }
}

/// Copies until either side ends, then closes both sockets, so the other direction ends too.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, ErrorKind};
    use std::time::Duration;

    use super::*;

    /// An echo server on threads: every line sent comes back.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo server");
        let addr = listener.local_addr().expect("echo server address");
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                thread::spawn(move || {
                    let Ok(mut out) = stream.try_clone() else {
                        return;
                    };
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        if writeln!(out, "{line}").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn connect(proxy: &Proxy) -> TcpStream {
        let stream = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("set a read timeout");
        stream
    }

    /// Sends a line and returns what came back: `Some(line)`, or `None` for a closed
    /// connection.
    fn echo(stream: &mut TcpStream, line: &str) -> Option<String> {
        if writeln!(stream, "{line}").is_err() {
            return None;
        }
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut got = String::new();
        match reader.read_line(&mut got) {
            Ok(0) => None,
            Ok(_) => Some(got.trim_end().to_string()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no answer and no close for {line:?} within the read timeout")
            }
            Err(_) => None,
        }
    }

    /// Whether the connection gets no answer (neither data nor close) within the read timeout.
    fn hangs(stream: &mut TcpStream, line: &str) -> bool {
        writeln!(stream, "{line}").expect("write to a held connection");
        let mut buf = [0u8; 64];
        matches!(
            stream.read(&mut buf),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
        )
    }

    fn wait_for_connections(proxy: &Proxy, n: usize) {
        for _ in 0..100 {
            if proxy.connections() == n {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the proxy has {} connections, expected {n}",
            proxy.connections()
        );
    }

    #[test]
    fn forwards_cuts_refuses_and_restores() {
        let proxy = Proxy::start(echo_server());
        let mut first = connect(&proxy);
        let mut second = connect(&proxy);
        assert_eq!(echo(&mut first, "one").as_deref(), Some("one"));
        assert_eq!(echo(&mut second, "two").as_deref(), Some("two"));
        wait_for_connections(&proxy, 2);

        proxy.cut();
        assert_eq!(
            echo(&mut first, "after cut"),
            None,
            "a cut closes connections"
        );
        assert_eq!(echo(&mut second, "after cut"), None);
        let mut refused = connect(&proxy);
        assert_eq!(
            echo(&mut refused, "while cut"),
            None,
            "new connections are refused while cut"
        );
        assert_eq!(proxy.connections(), 0);

        proxy.restore();
        let mut third = connect(&proxy);
        assert_eq!(echo(&mut third, "three").as_deref(), Some("three"));
        wait_for_connections(&proxy, 1);
        drop(third);
        wait_for_connections(&proxy, 0);
    }

    #[test]
    fn a_partition_holds_new_connections_until_restored() {
        let proxy = Proxy::start(echo_server());
        let mut before = connect(&proxy);
        assert_eq!(echo(&mut before, "hello").as_deref(), Some("hello"));

        proxy.partition();
        assert_eq!(
            echo(&mut before, "after"),
            None,
            "a partition closes connections"
        );
        let mut held = connect(&proxy);
        assert!(
            hangs(&mut held, "held"),
            "a connection made during a partition gets no answer"
        );

        proxy.restore();
        // The line written while held is delivered now, then the connection works as usual.
        held.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        let mut reader = BufReader::new(held.try_clone().expect("clone the stream"));
        let mut got = String::new();
        reader
            .read_line(&mut got)
            .expect("the held line comes back");
        assert_eq!(got.trim_end(), "held");
        assert_eq!(echo(&mut held, "again").as_deref(), Some("again"));
    }

    #[test]
    fn dropping_the_proxy_closes_its_connections() {
        let proxy = Proxy::start(echo_server());
        let mut stream = connect(&proxy);
        assert_eq!(echo(&mut stream, "x").as_deref(), Some("x"));
        drop(proxy);
        assert_eq!(echo(&mut stream, "y"), None);
    }
}
