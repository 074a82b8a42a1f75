//! A minimal HTTP/1.1 client over one keep-alive connection, and bounded load over several:
//! what W13 needs to time the REST API's answers from outside, as a client would, without
//! the harness depending on any of updraft's crates.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One persistent connection to `http://HOST:PORT`.
pub struct Connection {
    host: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// An answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    /// Connects to `base` (`http://HOST:PORT`).
    pub fn open(base: &str) -> Result<Connection> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("not an http:// address: {base}"))?
            .trim_end_matches('/')
            .to_owned();
        let addr: SocketAddr = host
            .parse()
            .with_context(|| format!("not HOST:PORT with an IP address: {host}"))?;
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("cannot connect to {host}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Connection {
            host,
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// `METHOD path` with these extra header lines (each `Name: value`) and body.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[String],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        if let Some((content_type, bytes)) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        if let Some((_, bytes)) = body {
            message.extend_from_slice(bytes);
        }
        self.writer
            .write_all(&message)
            .with_context(|| format!("cannot send {method} {path}"))?;
        self.read_answer()
            .with_context(|| format!("no answer to {method} {path}"))
    }

    pub fn get(&mut self, path: &str, headers: &[String]) -> Result<Answer> {
        self.request("GET", path, headers, None)
    }

    fn read_answer(&mut self) -> Result<Answer> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection closed inside the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>().context("bad Content-Length")?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut body)?;
            body
        };
        Ok(Answer { status, body })
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // The trailer section ends with an empty line.
                loop {
                    line.clear();
                    if self.reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            let mut crlf = [0; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }
}

/// Requests answered over several connections at once.
pub struct Load {
    /// Every request's time from sending to the end of its answer, in milliseconds.
    pub latencies_ms: Vec<f64>,
    pub wall: Duration,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Sends `requests` GETs of `paths` (in turn) over `connections` keep-alive connections at
/// once, each sending its next request as soon as the last is answered; every answer must be
/// 200. Bounded by the count, and by `deadline` in time.
pub fn load(
    base: &str,
    headers: &[String],
    paths: &[String],
    connections: usize,
    requests: usize,
    deadline: Duration,
) -> Result<Load> {
    anyhow::ensure!(
        connections > 0 && !paths.is_empty(),
        "a load needs connections and paths"
    );
    let mut opened = (0..connections)
        .map(|_| Connection::open(base))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = opened
            .iter_mut()
            .enumerate()
            .map(|(c, connection)| {
                // Connection c sends requests c, c + connections, … of the whole sequence.
                let share = (c..requests).step_by(connections);
                scope.spawn(move || -> Result<Vec<f64>> {
                    let mut latencies = Vec::with_capacity(requests / connections + 1);
                    for i in share {
                        if started.elapsed() > deadline {
                            bail!("the load did not finish within {deadline:?}");
                        }
                        let path = &paths[i % paths.len()];
                        let sent = Instant::now();
                        let answer = connection.get(path, headers)?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                        if answer.status != 200 {
                            bail!(
                                "GET {path} answered {}: {}",
                                answer.status,
                                String::from_utf8_lossy(&answer.body)
                            );
                        }
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let wall = started.elapsed();
    Ok(Load {
        latencies_ms: results.into_iter().flatten().collect(),
        wall,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::{load, Connection};

    /// A server of `connections` connections at once that answers every request, alternating
    /// a sized body and a chunked one, and returns the request lines it saw.
    fn serve(connections: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let each: Vec<_> = (0..connections)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    std::thread::spawn(move || answer_all(stream))
                })
                .collect();
            each.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        (base, handle)
    }

    fn answer_all(stream: std::net::TcpStream) -> Vec<String> {
        let mut seen = Vec::new();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                return seen;
            }
            seen.push(line.trim_end().to_owned());
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim_end().is_empty() {
                    break;
                }
            }
            let response: &[u8] = if seen.len() % 2 == 1 {
                b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"a\": true}"
            } else {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n6\r\n: true\r\n1;x=y\r\n}\r\n0\r\n\r\n"
            };
            writer.write_all(response).unwrap();
        }
    }

    #[test]
    fn sized_and_chunked_answers_are_read_on_one_connection() {
        let (base, server) = serve(1);
        let mut connection = Connection::open(&base).unwrap();
        let headers = vec!["Authorization: Bearer t".to_owned()];
        let first = connection.get("/one", &headers).unwrap();
        assert_eq!(
            (first.status, first.body.as_slice()),
            (200, &b"{\"a\": true}"[..])
        );
        let second = connection.get("/two", &headers).unwrap();
        assert_eq!(
            (second.status, second.body.as_slice()),
            (200, &b"{\"b\": true}"[..])
        );
        let third = connection.get("/three", &headers).unwrap();
        assert_eq!(third.body, b"{\"a\": true}");
        drop(connection);
        assert_eq!(
            server.join().unwrap(),
            [
                "GET /one HTTP/1.1",
                "GET /two HTTP/1.1",
                "GET /three HTTP/1.1"
            ]
        );
    }

    #[test]
    fn a_load_sends_every_request_once_over_its_connections() {
        let (base, server) = serve(3);
        let paths = vec!["/a".to_owned(), "/b".to_owned()];
        let done = load(
            &base,
            &[],
            &paths,
            3,
            10,
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(done.latencies_ms.len(), 10);
        assert!(done.per_second() > 0.0);
        let mut seen = server.join().unwrap();
        seen.sort();
        assert_eq!(seen.iter().filter(|l| l.starts_with("GET /a ")).count(), 5);
        assert_eq!(seen.iter().filter(|l| l.starts_with("GET /b ")).count(), 5);
    }
}
