//! The StatsD client: lines go through a bounded queue to a thread that sends them over UDP,
//! so recording never waits for the network, and a StatsD server that is down or slow only
//! loses lines.

use std::net::{ToSocketAddrs, UdpSocket};

use cadence::{QueuingMetricSink, StatsdClient, UdpMetricSink};
use tracing::debug;

use crate::{MetricsError, StatsdConfig};

/// Lines waiting for the sending thread, at most; past that they are dropped.
const QUEUE: usize = 16 * 1024;

pub(crate) fn client(config: &StatsdConfig) -> Result<StatsdClient, MetricsError> {
    let address = format!("{}:{}", config.host, config.port);
    let fail = |reason: String| MetricsError::Statsd {
        address: address.clone(),
        reason,
    };
    let target = (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("the host has no address".into()))?;
    let local = if target.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(local).map_err(|e| fail(e.to_string()))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    let udp = UdpMetricSink::from(target, socket).map_err(|e| fail(e.to_string()))?;
    let sink = QueuingMetricSink::with_capacity(udp, QUEUE);
    Ok(StatsdClient::builder(&config.prefix, sink)
        .with_error_handler(|e| debug!(error = %e, "a StatsD line was not sent"))
        .build())
}
