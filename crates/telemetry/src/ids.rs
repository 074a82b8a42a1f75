//! The trace and span ids of runs and tries, derived from their identity alone, so that every
//! process (the scheduler that ends a run, the workers that run its tries, the task processes
//! they start) names the same trace without asking anyone.

use opentelemetry::trace::{SpanId, TraceId};
use sha2::{Digest, Sha256};

/// A DAG run as every process knows it: the database id makes a run deleted and created
/// again under the same `run_id` another trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIdentity<'a> {
    pub dag_id: &'a str,
    pub run_id: &'a str,
    /// The run's id in the metadata database.
    pub id: i64,
}

/// One try of a task instance: its span's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryIdentity {
    /// The task instance's id in the metadata database.
    pub ti_id: i64,
    pub try_number: u32,
}

impl RunIdentity<'_> {
    /// The trace of the run (W3C: 16 bytes, 32 hex digits).
    pub fn trace_id(&self) -> TraceId {
        let digest = self.digest();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        TraceId::from_bytes(nonzero(bytes))
    }

    /// The run's own span, the root of its trace (8 bytes, 16 hex digits).
    pub fn span_id(&self) -> SpanId {
        let digest = self.digest();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[16..24]);
        SpanId::from_bytes(nonzero(bytes))
    }

    fn digest(&self) -> [u8; 32] {
        // Separators keep ("a_b", "c") and ("a", "b_c") apart.
        let mut hash = Sha256::new();
        hash.update(b"updraft dag run\0");
        hash.update(self.dag_id.as_bytes());
        hash.update(b"\0");
        hash.update(self.run_id.as_bytes());
        hash.update(b"\0");
        hash.update(self.id.to_be_bytes());
        hash.finalize().into()
    }
}

impl TryIdentity {
    /// The try's span, a child of its run's span.
    pub fn span_id(&self) -> SpanId {
        let mut hash = Sha256::new();
        hash.update(b"updraft task try\0");
        hash.update(self.ti_id.to_be_bytes());
        hash.update(self.try_number.to_be_bytes());
        let digest: [u8; 32] = hash.finalize().into();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        SpanId::from_bytes(nonzero(bytes))
    }
}

/// The W3C `traceparent` of a try: its run's trace, the try's span as the parent of whatever
/// the task process records, sampled.
pub fn traceparent(run: &RunIdentity<'_>, attempt: TryIdentity) -> String {
    format!("00-{}-{}-01", run.trace_id(), attempt.span_id())
}

/// An id of all zeros is invalid in W3C trace context; a hash that gives one (once in 2^64)
/// is nudged.
fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes.iter().all(|b| *b == 0) {
        bytes[N - 1] = 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dag_id: &'static str, run_id: &'static str, id: i64) -> RunIdentity<'static> {
        RunIdentity { dag_id, run_id, id }
    }

    #[test]
    fn ids_depend_on_the_identity_only() {
        let a = run("etl", "manual__1", 7);
        assert_eq!(a.trace_id(), run("etl", "manual__1", 7).trace_id());
        assert_eq!(a.span_id(), run("etl", "manual__1", 7).span_id());
        assert_ne!(a.trace_id(), run("etl", "manual__1", 8).trace_id());
        assert_ne!(a.trace_id(), run("etl_", "_manual__1", 7).trace_id());
        assert_ne!(a.trace_id(), run("etl_manual__1", "", 7).trace_id());
        let first = TryIdentity {
            ti_id: 3,
            try_number: 1,
        };
        let second = TryIdentity {
            ti_id: 3,
            try_number: 2,
        };
        assert_eq!(first.span_id(), TryIdentity { ..first }.span_id());
        assert_ne!(first.span_id(), second.span_id());
        assert_ne!(first.span_id(), a.span_id());
    }

    #[test]
    fn traceparent_is_w3c_version_00_and_sampled() {
        let a = run("etl", "manual__1", 7);
        let attempt = TryIdentity {
            ti_id: 3,
            try_number: 1,
        };
        let header = traceparent(&a, attempt);
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], a.trace_id().to_string());
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2], attempt.span_id().to_string());
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert!(header.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
