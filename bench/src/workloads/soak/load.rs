//! The soak's steady load: a run of the triggered DAG every few seconds through the REST API
//! (`POST /api/v2/dags/{dag}/dagRuns` with a run id of the harness's), the API servers in
//! turn. A trigger whose server was just killed is sent again to the other one; the same run
//! id makes that safe (a 409 says an earlier attempt created it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http::Connection;

/// Rounds over the API servers before a trigger is given up.
const ATTEMPT_ROUNDS: usize = 20;
/// Pause between two rounds: a restarted API server listens again within a second or two.
const ROUND_PAUSE: Duration = Duration::from_millis(500);

/// What the load did.
#[derive(Debug, Default)]
pub struct Triggered {
    /// Run ids the API created, in order.
    pub run_ids: Vec<String>,
    /// Attempts that got no answer or an error (each is sent again, to the next server).
    pub failed_attempts: usize,
    /// Triggers that no API server accepted, with the last error.
    pub given_up: Vec<String>,
}

/// Triggers `dag_id` every `interval` until `stop` is set, over `servers` in turn.
pub fn trigger_steadily(
    servers: &[String],
    token: &str,
    dag_id: &str,
    interval: Duration,
    stop: &AtomicBool,
) -> Triggered {
    let auth = [format!("Authorization: Bearer {token}")];
    let path = format!("/api/v2/dags/{dag_id}/dagRuns");
    let mut triggered = Triggered::default();
    let started = Instant::now();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let run_id = format!("{dag_id}_{:05}", n + 1);
        let body = serde_json::json!({ "dag_run_id": run_id }).to_string();
        let mut last_error = String::new();
        let mut created = false;
        'rounds: for round in 0..ATTEMPT_ROUNDS {
            for k in 0..servers.len() {
                let server = &servers[(n + k) % servers.len()];
                match post(server, &path, &auth, &body) {
                    Ok(200 | 409) => {
                        created = true;
                        break 'rounds;
                    }
                    Ok(status) => last_error = format!("{server} answered {status}"),
                    Err(e) => last_error = format!("{server}: {e:#}"),
                }
                triggered.failed_attempts += 1;
            }
            if round + 1 < ATTEMPT_ROUNDS {
                std::thread::sleep(ROUND_PAUSE);
            }
        }
        if created {
            triggered.run_ids.push(run_id);
        } else {
            triggered
                .given_up
                .push(format!("{run_id}: no API server accepted it: {last_error}"));
        }
        n += 1;
        // Steady: the next trigger is due at a fixed instant, whatever this one took.
        let due = interval.mul_f64(n as f64);
        while !stop.load(Ordering::Relaxed) && started.elapsed() < due {
            std::thread::sleep((due - started.elapsed()).min(Duration::from_millis(100)));
        }
    }
    triggered
}

/// One request on a connection of its own; the answer's status.
fn post(server: &str, path: &str, auth: &[String], body: &str) -> anyhow::Result<u16> {
    let answer = Connection::open(server)?.request(
        "POST",
        path,
        auth,
        Some(("application/json", body.as_bytes())),
    )?;
    Ok(answer.status)
}
