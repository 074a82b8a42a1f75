//! What the soak samples every few seconds (the resident memory and open file descriptors of
//! each long-lived process, the database connections of the cluster) and how a series is
//! judged: a window right after the warm-up against a window at the end.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::procfs;

/// The first part of the soak that is not judged (at least): pools fill, caches warm,
/// allocators reach their working set.
const WARM_UP_SHARE: f64 = 0.10;
/// Samples per window at most (a minute at the full soak's 10 s), to damp noise.
const WINDOW_SAMPLES: usize = 6;
/// Names the harness's own database connection, so that it is not counted as the cluster's.
pub const SAMPLER_APPLICATION: &str = "updraft-bench-soak";
/// The port of a URL that names none.
const DEFAULT_POSTGRES_PORT: u16 = 5432;

/// One process's figures at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    pub rss_kib: u64,
    /// Open file descriptors but the established TCP connections its clients hold open and
    /// those to the database. How many of the first an API server holds depends on which
    /// server the workers' keep-alive pools picked after the last failover; the second are
    /// judged as the cluster's database connections.
    pub fds: usize,
}

impl ProcessSample {
    pub fn of(pid: i32, database_port: u16) -> Result<ProcessSample> {
        let fds = procfs::open_fds(pid)?;
        let connections = procfs::established(pid, database_port)?;
        Ok(ProcessSample {
            rss_kib: procfs::resident_kib(pid)?,
            // Read a moment apart: a connection opened in between may be counted only once.
            fds: fds.saturating_sub(connections.inbound + connections.to_port),
        })
    }
}

/// Every long-lived process (in a fixed order) and the database at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the load began.
    pub at_s: f64,
    pub processes: Vec<ProcessSample>,
    /// Client connections to the soak's database, the harness's own left out.
    pub db_connections: usize,
}

/// Counts the cluster's connections to its database.
pub struct ConnectionCounter {
    client: postgres::Client,
    port: u16,
}

impl ConnectionCounter {
    pub fn open(url: &str) -> Result<ConnectionCounter> {
        let mut config: postgres::Config = url.parse().context("not a PostgreSQL URL")?;
        config.application_name(SAMPLER_APPLICATION);
        let port = config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(DEFAULT_POSTGRES_PORT);
        let client = config
            .connect(postgres::NoTls)
            .context("cannot connect to the soak's database")?;
        Ok(ConnectionCounter { client, port })
    }

    /// The database's TCP port, which the cluster's processes connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn count(&mut self) -> Result<usize> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_type = 'client backend' AND application_name <> $1",
                &[&SAMPLER_APPLICATION],
            )
            .context("cannot count the database's connections")?;
        let count: i64 = row.try_get(0)?;
        Ok(count as usize)
    }
}

/// How a series is reduced over a window.
#[derive(Debug, Clone, Copy)]
pub enum Reduce {
    /// The mean: resident memory, which moves a little with every allocation.
    Mean,
    /// The floor: open files, which rise and fall with the connections and task pipes of the
    /// moment; a leak raises the floor.
    Min,
    /// The ceiling: connections, which pools open on demand up to their size; a leak raises
    /// the ceiling past it.
    Max,
}

/// A series judged: right after the warm-up against the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub after_warm_up: f64,
    pub at_end: f64,
    /// The highest value after the warm-up.
    pub max: f64,
}

impl Trend {
    /// `values` in time order (one per sample), the warm-up at least `warm_up` samples long;
    /// `None` when there are none.
    pub fn of(values: &[f64], warm_up: usize, reduce: Reduce) -> Option<Trend> {
        let (warm_up, window) = windows(values.len(), warm_up)?;
        let judged = &values[warm_up..];
        let reduce = |w: &[f64]| match reduce {
            Reduce::Mean => w.iter().sum::<f64>() / w.len() as f64,
            Reduce::Min => w.iter().copied().fold(f64::INFINITY, f64::min),
            Reduce::Max => w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        Some(Trend {
            after_warm_up: reduce(&judged[..window]),
            at_end: reduce(&judged[judged.len() - window..]),
            max: judged.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    pub fn growth(&self) -> f64 {
        self.at_end - self.after_warm_up
    }

    pub fn growth_percent(&self) -> f64 {
        if self.after_warm_up > 0.0 {
            self.growth() / self.after_warm_up * 100.0
        } else {
            0.0
        }
    }
}

/// `(samples of the warm-up, samples per window)` for `n` samples: the warm-up is the first
/// tenth, or `at_least` samples if more (at least one sample, and never all of them), each
/// window up to [`WINDOW_SAMPLES`] but at most a quarter of what follows the warm-up.
fn windows(n: usize, at_least: usize) -> Option<(usize, usize)> {
    if n == 0 {
        return None;
    }
    let tenth = (n as f64 * WARM_UP_SHARE).ceil() as usize;
    let warm_up = tenth.max(at_least).max(1).min(n - 1);
    let judged = n - warm_up;
    Some((warm_up, (judged / 4).clamp(1, WINDOW_SAMPLES)))
}

/// The samples as CSV: `at_s`, then `NAME_rss_kib` and `NAME_fds` per long-lived process,
/// then `db_connections`.
pub fn write_csv(path: &Path, names: &[String], samples: &[Sample]) -> Result<()> {
    let mut text = String::from("at_s");
    for name in names {
        let _ = write!(text, ",{name}_rss_kib,{name}_fds");
    }
    text.push_str(",db_connections\n");
    for s in samples {
        let _ = write!(text, "{:.1}", s.at_s);
        for p in &s.processes {
            let _ = write!(text, ",{},{}", p.rss_kib, p.fds);
        }
        let _ = writeln!(text, ",{}", s.db_connections);
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_is_a_tenth_and_windows_damp_noise() {
        assert_eq!(windows(0, 0), None);
        assert_eq!(windows(1, 0), Some((0, 1)));
        assert_eq!(windows(2, 0), Some((1, 1)));
        assert_eq!(windows(10, 0), Some((1, 2)));
        assert_eq!(windows(30, 0), Some((3, 6)));
        assert_eq!(windows(360, 0), Some((36, 6)));
        // A longer warm-up asked for (until every kind of process was killed once).
        assert_eq!(windows(30, 17), Some((17, 3)));
        assert_eq!(windows(360, 19), Some((36, 6)));
        assert_eq!(windows(5, 9), Some((4, 1)));
    }

    #[test]
    fn flat_memory_has_no_growth_and_a_leak_shows() {
        // The warm-up (first tenth) climbs; after it the series is flat with noise.
        let mut flat = vec![10.0, 50.0, 90.0];
        flat.extend([100.0, 102.0, 98.0, 100.0, 101.0, 99.0].repeat(4));
        let trend = Trend::of(&flat, 0, Reduce::Mean).unwrap();
        assert_eq!(trend.after_warm_up, 100.0);
        assert_eq!(trend.at_end, 100.0);
        assert_eq!(trend.growth_percent(), 0.0);
        assert_eq!(trend.max, 102.0);

        let leak: Vec<f64> = (0..30).map(|i| 100.0 + i as f64).collect();
        let trend = Trend::of(&leak, 0, Reduce::Mean).unwrap();
        assert!(trend.growth_percent() > 15.0, "{trend:?}");
    }

    #[test]
    fn file_descriptors_are_judged_by_their_floor_and_connections_by_their_ceiling() {
        let fds = [20.0, 12.0, 15.0, 12.0, 19.0, 12.0, 13.0, 12.0, 18.0, 12.0];
        let trend = Trend::of(&fds, 0, Reduce::Min).unwrap();
        assert_eq!((trend.after_warm_up, trend.at_end), (12.0, 12.0));
        let connections = [3.0, 8.0, 9.0, 8.0, 9.0, 8.0, 9.0, 11.0, 9.0, 12.0];
        let trend = Trend::of(&connections, 0, Reduce::Max).unwrap();
        assert_eq!((trend.after_warm_up, trend.at_end), (9.0, 12.0));
        assert_eq!(trend.growth(), 3.0);
    }
}
