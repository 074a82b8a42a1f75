//! The output side of a task: the log file, line splitting of stdout/stderr, XCom capture.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use updraft_secrets::Masker;

use super::spawner::Output;
use super::{MAX_LOG_LINE, MAX_XCOM};

/// Size of one read from a pipe.
const READ_CHUNK: usize = 8 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn label(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One task's log file: `[2026-11-22T10:00:00.123Z] {stdout} hello` lines, buffered; written
/// out after each batch read from the process and at the end. Write errors are reported once
/// and otherwise ignored: a full disk must not change the task's outcome. Secrets the task's
/// templates used are written as `***` (every line, the command in the header too).
pub(super) struct TaskLog {
    out: BufWriter<File>,
    broken: bool,
    mask: Option<Masker>,
}

impl TaskLog {
    pub(super) fn open(path: &Path, mask: Option<Masker>) -> io::Result<TaskLog> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(TaskLog {
            out: BufWriter::with_capacity(READ_CHUNK, file),
            broken: false,
            mask,
        })
    }

    /// `running: <command>`, one log line per command line.
    pub(super) fn header(&mut self, command: &str) {
        let mut lines = command.lines();
        let first = lines.next().unwrap_or_default();
        self.updraft(format_args!("running: {first}"));
        for line in lines {
            self.updraft(format_args!("         {line}"));
        }
    }

    pub(super) fn updraft(&mut self, message: impl Display) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let result = match &self.mask {
            None => writeln!(self.out, "[{now}] {{updraft}} {message}"),
            Some(mask) => {
                let message = message.to_string();
                writeln!(self.out, "[{now}] {{updraft}} {}", mask.mask(&message))
            }
        };
        self.check(result);
    }

    fn line(&mut self, stream: Stream, text: &[u8]) {
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let masked;
        let text = match &self.mask {
            None => text,
            Some(mask) => {
                masked = mask.mask_bytes(text);
                &masked[..]
            }
        };
        let result = writeln!(
            self.out,
            "[{}] {{{}}} {}",
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            stream.label(),
            String::from_utf8_lossy(text)
        );
        self.check(result);
    }

    pub(super) fn flush(&mut self) {
        let result = self.out.flush();
        self.check(result);
    }

    pub(super) fn finish(mut self) {
        self.flush();
    }

    fn check(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            if !self.broken {
                self.broken = true;
                tracing::warn!(error = %e, "cannot write task log; further log output is lost");
            }
        }
    }
}

/// Where output goes: the log, and the XCom candidate when asked for.
pub(super) struct Sink {
    pub log: TaskLog,
    xcom: Option<XcomCapture>,
}

#[derive(Default)]
struct XcomCapture {
    current: Vec<u8>,
    last: Vec<u8>,
}

impl Sink {
    pub(super) fn new(log: TaskLog, capture_xcom: bool) -> Sink {
        Sink {
            log,
            xcom: capture_xcom.then(XcomCapture::default),
        }
    }

    /// The last non-empty stdout line, if it was captured and there was one.
    pub(super) fn take_xcom(&mut self) -> Option<String> {
        let capture = self.xcom.take()?;
        if capture.last.is_empty() {
            return None;
        }
        let text = capture.last.strip_suffix(b"\r").unwrap_or(&capture.last);
        Some(String::from_utf8_lossy(text).into_owned())
    }

    /// A piece of a line; `ends_line` is false when the line continues in the next piece.
    fn piece(&mut self, stream: Stream, text: &[u8], ends_line: bool) {
        self.log.line(stream, text);
        if stream != Stream::Stdout {
            return;
        }
        if let Some(capture) = &mut self.xcom {
            let room = MAX_XCOM.saturating_sub(capture.current.len());
            capture
                .current
                .extend_from_slice(&text[..text.len().min(room)]);
            if ends_line {
                if capture.current.iter().any(|b| !b.is_ascii_whitespace()) {
                    std::mem::swap(&mut capture.current, &mut capture.last);
                }
                capture.current.clear();
            }
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LOG_LINE`] bytes.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    fn feed(&mut self, mut data: &[u8], stream: Stream, sink: &mut Sink) {
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            let line = &data[..end];
            if self.pending.is_empty() {
                emit_line(line, stream, sink);
            } else {
                self.pending.extend_from_slice(line);
                emit_line(&self.pending, stream, sink);
                self.pending.clear();
            }
            data = &data[end + 1..];
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= MAX_LOG_LINE {
            let mut rest = &self.pending[..];
            while rest.len() >= MAX_LOG_LINE {
                sink.piece(stream, &rest[..MAX_LOG_LINE], false);
                rest = &rest[MAX_LOG_LINE..];
            }
            let consumed = self.pending.len() - rest.len();
            self.pending.drain(..consumed);
        }
    }

    /// End of stream: a last line without a newline still counts.
    fn finish(&mut self, stream: Stream, sink: &mut Sink) {
        if !self.pending.is_empty() {
            emit_line(&self.pending, stream, sink);
            self.pending.clear();
        }
    }
}

fn emit_line(mut line: &[u8], stream: Stream, sink: &mut Sink) {
    while line.len() > MAX_LOG_LINE {
        sink.piece(stream, &line[..MAX_LOG_LINE], false);
        line = &line[MAX_LOG_LINE..];
    }
    sink.piece(stream, line, true);
}

/// The two output pipes of a task, read together so lines land in the log in arrival order.
pub(super) struct Pipes {
    stdout: Option<Output>,
    stderr: Option<Output>,
    stdout_lines: LineBuffer,
    stderr_lines: LineBuffer,
    stdout_buf: Box<[u8]>,
    stderr_buf: Box<[u8]>,
}

impl Pipes {
    pub(super) fn new(stdout: Option<Output>, stderr: Option<Output>) -> Pipes {
        Pipes {
            stdout,
            stderr,
            stdout_lines: LineBuffer::default(),
            stderr_lines: LineBuffer::default(),
            stdout_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            stderr_buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    fn open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Logs output until `until` completes.
    pub(super) async fn pump<F: Future>(&mut self, sink: &mut Sink, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                biased;
                output = &mut until => return output,
                read = read_from(&mut self.stdout, &mut self.stdout_buf) => {
                    self.on_read(Stream::Stdout, read, sink);
                }
                read = read_from(&mut self.stderr, &mut self.stderr_buf) => {
                    self.on_read(Stream::Stderr, read, sink);
                }
            }
        }
    }

    /// Logs output until both pipes are closed or `limit` passed; true if they were closed.
    pub(super) async fn drain(&mut self, sink: &mut Sink, limit: Duration) -> bool {
        if !self.open() {
            return true;
        }
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        while self.open() {
            tokio::select! {
                biased;
                read = read_from(&mut self.stdout, &mut self.stdout_buf) => {
                    self.on_read(Stream::Stdout, read, sink);
                }
                read = read_from(&mut self.stderr, &mut self.stderr_buf) => {
                    self.on_read(Stream::Stderr, read, sink);
                }
                () = &mut deadline => break,
            }
        }
        // Whatever the pipes still hold is lost either way; the last partial lines are not.
        self.stdout_lines.finish(Stream::Stdout, sink);
        self.stderr_lines.finish(Stream::Stderr, sink);
        !self.open()
    }

    fn on_read(&mut self, stream: Stream, read: io::Result<usize>, sink: &mut Sink) {
        let (lines, buf) = match stream {
            Stream::Stdout => (&mut self.stdout_lines, &self.stdout_buf),
            Stream::Stderr => (&mut self.stderr_lines, &self.stderr_buf),
        };
        let closed = match read {
            Ok(0) => true,
            Ok(n) => {
                lines.feed(&buf[..n], stream, sink);
                false
            }
            Err(e) => {
                sink.log
                    .updraft(format_args!("cannot read {}: {e}", stream.label()));
                true
            }
        };
        if closed {
            lines.finish(stream, sink);
            match stream {
                Stream::Stdout => self.stdout = None,
                Stream::Stderr => self.stderr = None,
            }
        }
        sink.log.flush();
    }
}

/// Reads from a pipe; never resolves once the pipe is closed.
async fn read_from<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (String, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let mut sink = Sink::new(TaskLog::open(&path, None).unwrap(), true);
        let mut lines = LineBuffer::default();
        for chunk in chunks {
            lines.feed(chunk, Stream::Stdout, &mut sink);
        }
        lines.finish(Stream::Stdout, &mut sink);
        let xcom = sink.take_xcom();
        sink.log.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        let bodies: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("} ").unwrap().1)
            .collect();
        (bodies.join("|"), xcom)
    }

    #[test]
    fn lines_across_chunks() {
        let check = |chunks: &[&[u8]], lines: &str, xcom: Option<&str>| {
            assert_eq!(split(chunks), (lines.to_owned(), xcom.map(str::to_owned)));
        };
        check(&[b"a\nb\n"], "a|b", Some("b"));
        check(&[b"a", b"b\nc"], "ab|c", Some("c"));
        check(&[b"x\r\n", b"\n  \n"], "x||  ", Some("x"));
        check(&[b""], "", None);
        check(
            &[b"\xff\xfe\n"],
            "\u{fffd}\u{fffd}",
            Some("\u{fffd}\u{fffd}"),
        );
    }

    #[test]
    fn secrets_are_masked_in_output_and_in_updraft_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let mask = Masker::new(["hunter22"], updraft_secrets::MIN_MASKED_LENGTH);
        let mut sink = Sink::new(TaskLog::open(&path, mask).unwrap(), true);
        sink.log.header("psql -p hunter22\necho hunter22");
        let mut lines = LineBuffer::default();
        lines.feed(b"pw=hunter22\nok\n", Stream::Stdout, &mut sink);
        sink.log.updraft(format_args!("reason: {}", "hunter22"));
        // The XCom keeps what the task printed: it is the task's value, not log output.
        assert_eq!(sink.take_xcom().as_deref(), Some("ok"));
        sink.log.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter22"), "{text}");
        let bodies: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("} ").unwrap().1)
            .collect();
        assert_eq!(
            bodies,
            [
                "running: psql -p ***",
                "         echo ***",
                "pw=***",
                "ok",
                "reason: ***"
            ]
        );
    }

    #[test]
    fn long_lines_are_split_not_lost() {
        let long = vec![b'a'; MAX_LOG_LINE * 2 + 10];
        let mut data = long.clone();
        data.extend_from_slice(b"\nend\n");
        for chunks in [vec![&data[..]], data.chunks(1000).collect()] {
            let (lines, xcom) = split(&chunks);
            let pieces: Vec<&str> = lines.split('|').collect();
            assert_eq!(
                pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [MAX_LOG_LINE, MAX_LOG_LINE, 10, 3]
            );
            assert_eq!(xcom.as_deref(), Some("end"));
        }
        let (_, xcom) = split(&[&long]);
        assert_eq!(xcom.map(|x| x.len()), Some(long.len()));
    }
}
