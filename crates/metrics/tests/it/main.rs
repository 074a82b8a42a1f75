//! Integration tests of updraft-metrics: the exposition, StatsD over loopback UDP, the
//! scheduler's health server, and the Grafana dashboard's metric names.

mod dashboard;
mod exposition;
mod health;
mod statsd;
