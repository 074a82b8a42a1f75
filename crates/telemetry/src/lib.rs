//! OpenTelemetry traces of DAG runs: a run is a trace, each task try a span in it. Ids come
//! from the run's and the try's identity ([`RunIdentity`], [`TryIdentity`]), so the scheduler
//! that ends a run and the workers that run its tries, on any host, emit spans of one trace
//! without telling each other anything; the task processes get a `TRACEPARENT` naming their
//! try's span. Spans are exported over OTLP/HTTP (protobuf) by the SDK's batch processor on a
//! thread of its own: recording a span only queues it, and a collector that is down loses
//! spans, never a run.

mod export;
mod ids;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use opentelemetry::trace::{
    SpanBuilder, SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use ids::{traceparent, RunIdentity, TryIdentity};

/// The environment variable that carries a try's trace context to its process (W3C
/// `traceparent`, as OpenTelemetry SDKs read it).
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP address (`http://collector:4318`, `/v1/traces` added unless
    /// given); `None`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// else `http://localhost:4318`.
    pub endpoint: Option<String>,
    /// `service.name` of every span this process exports.
    pub service_name: String,
    /// The longest a finished span waits before it is sent (spans go in batches).
    pub export_interval: Duration,
    /// The limit of one export request.
    pub export_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (an endpoint that is not a URL, say).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// This process's traces: off (records nothing, costs nothing), or exporting. Cheap to clone;
/// every clone feeds the same exporter.
#[derive(Clone, Default)]
pub struct Traces {
    exporting: Option<Exporting>,
}

#[derive(Clone)]
struct Exporting {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// A task try that ended, as the worker that ran it saw it.
#[derive(Debug, Clone)]
pub struct TrySpan<'a> {
    pub run: RunIdentity<'a>,
    pub attempt: TryIdentity,
    pub task_id: &'a str,
    pub map_index: i64,
    /// The state the try ended in (`success`, `failed`, `up_for_retry`, …).
    pub state: &'a str,
    /// The worker's host.
    pub hostname: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A DAG run that ended, as the scheduler that ended it saw it.
#[derive(Debug, Clone)]
pub struct RunSpan<'a> {
    pub run: RunIdentity<'a>,
    pub run_type: &'a str,
    /// `success` or `failed`.
    pub state: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_on() {
            "Traces(on)"
        } else {
            "Traces(off)"
        })
    }
}

impl Traces {
    /// Traces off.
    pub fn off() -> Traces {
        Traces::default()
    }

    /// Starts exporting. Must be called inside a tokio runtime or outside any: the exporter's
    /// HTTP client runs on the batch thread, never on the caller's.
    pub fn start(config: &TracesConfig) -> Result<Traces, TelemetryError> {
        let provider = export::provider(config)?;
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "updraft");
        Ok(Traces {
            exporting: Some(Exporting { provider, tracer }),
        })
    }

    pub fn is_on(&self) -> bool {
        self.exporting.is_some()
    }

    /// The `TRACEPARENT` of a try's process; `None` when traces are off.
    pub fn traceparent(&self, run: &RunIdentity<'_>, attempt: TryIdentity) -> Option<String> {
        self.is_on().then(|| traceparent(run, attempt))
    }

    /// Records a try's span, a child of its run's span. Only queues it: never waits.
    pub fn try_ended(&self, span: &TrySpan<'_>) {
        let Some(exporting) = &self.exporting else {
            return;
        };
        let parent = SpanContext::new(
            span.run.trace_id(),
            span.run.span_id(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let builder = finished(span.task_id, span.start, span.end)
            .with_span_id(span.attempt.span_id())
            .with_attributes([
                KeyValue::new("dag_id", span.run.dag_id.to_owned()),
                KeyValue::new("run_id", span.run.run_id.to_owned()),
                KeyValue::new("task_id", span.task_id.to_owned()),
                KeyValue::new("try_number", i64::from(span.attempt.try_number)),
                KeyValue::new("map_index", span.map_index),
                KeyValue::new("state", span.state.to_owned()),
                KeyValue::new("hostname", span.hostname.to_owned()),
            ]);
        let context = Context::new().with_remote_span_context(parent);
        end(
            exporting.tracer.build_with_context(builder, &context),
            span.end,
        );
    }

    /// Records a run's span, the root of its trace. Only queues it: never waits.
    pub fn run_ended(&self, span: &RunSpan<'_>) {
        let Some(exporting) = &self.exporting else {
            return;
        };
        let builder = finished(span.run.dag_id, span.start, span.end)
            .with_trace_id(span.run.trace_id())
            .with_span_id(span.run.span_id())
            .with_attributes([
                KeyValue::new("dag_id", span.run.dag_id.to_owned()),
                KeyValue::new("run_id", span.run.run_id.to_owned()),
                KeyValue::new("run_type", span.run_type.to_owned()),
                KeyValue::new("state", span.state.to_owned()),
            ]);
        end(
            exporting
                .tracer
                .build_with_context(builder, &Context::new()),
            span.end,
        );
    }

    /// Sends what is queued and stops the exporter, waiting at most `limit`: at the end of
    /// the process. Blocks: call it off the async threads.
    pub fn shutdown(&self, limit: Duration) {
        if let Some(exporting) = &self.exporting {
            if let Err(e) = exporting.provider.shutdown_with_timeout(limit) {
                tracing::warn!(error = %e, "traces not all sent at shutdown");
            }
        }
    }
}

/// A span named `name` that ran from `start` to `end`.
fn finished(name: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> SpanBuilder {
    SpanBuilder::from_name(name.to_owned())
        .with_kind(SpanKind::Internal)
        .with_start_time(system_time(start))
        .with_end_time(system_time(end))
}

fn end(mut span: impl opentelemetry::trace::Span, at: DateTime<Utc>) {
    span.end_with_timestamp(system_time(at));
}

fn system_time(at: DateTime<Utc>) -> SystemTime {
    SystemTime::from(at)
}
