//! The exporter: OTLP/HTTP with protobuf bodies, behind the SDK's batch processor (a thread
//! of its own with a bounded queue: a full queue drops spans instead of blocking anyone).

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::{TelemetryError, TracesConfig};

pub(crate) fn provider(config: &TracesConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(config.export_timeout);
    if let Some(endpoint) = config.endpoint.as_deref().map(str::trim) {
        if !endpoint.is_empty() {
            exporter = exporter.with_endpoint(traces_url(endpoint));
        }
    }
    let exporter = exporter
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(config.export_interval)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// The collector's address as the traces URL: as `OTEL_EXPORTER_OTLP_ENDPOINT` is read, a
/// base address gets `/v1/traces`.
fn traces_url(endpoint: &str) -> String {
    if endpoint.ends_with("/v1/traces") {
        return endpoint.to_owned();
    }
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_address_gets_the_traces_path() {
        assert_eq!(
            traces_url("http://c:4318"),
            "http://c:4318/v1/traces".to_string()
        );
        assert_eq!(
            traces_url("http://c:4318/"),
            "http://c:4318/v1/traces".to_string()
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces".to_string()
        );
    }
}
