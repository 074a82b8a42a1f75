//! Assets on a cluster: every scheduler hears of an asset event at once, yet each event
//! becomes exactly one run of each consumer; and the same holds, with a backfill in flight
//! too, while schedulers are SIGKILLed and started again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{str_field, Cluster, Proc};

/// `producer` updates `s3://cluster/out`; `consumer_1` and `consumer_2` are scheduled on it
/// and each appends, per triggering event, the producer run it came from to `<name>.txt`.
fn write_dags(cluster: &Cluster) {
    cluster.write_dag(
        "producer.yaml",
        "dag_id: producer\nmax_active_runs: 1\ntasks:\n  - task_id: make\n    \
         bash_command: 'true'\n    outlets: [\"s3://cluster/out\"]\n",
    );
    for name in ["consumer_1", "consumer_2"] {
        let file = cluster.path(&format!("{name}.txt"));
        cluster.write_dag(
            &format!("{name}.yaml"),
            &format!(
                "dag_id: {name}\nschedule: [\"s3://cluster/out\"]\ntasks:\n  - task_id: record\n    \
                 bash_command: >-\n      printf '%s\\n' \
                 {{% for e in triggering_asset_events['s3://cluster/out'] %}}{{{{ e.source_run_id }}}} \
                 {{% endfor %}} >> {}\n",
                file.display()
            ),
        );
    }
}

fn asset_runs(cluster: &Cluster, dag_id: &str) -> Vec<(String, String)> {
    let runs = cluster.json(&["dags", "list-runs", dag_id]);
    runs.as_array()
        .unwrap_or_else(|| panic!("list-runs printed no array: {runs:#}"))
        .iter()
        .filter(|r| str_field(r, "run_type") == "asset_triggered")
        .map(|r| {
            (
                str_field(r, "run_id").to_string(),
                str_field(r, "state").to_string(),
            )
        })
        .collect()
}

/// Triggers producer run `run_id`, waits for it to succeed and for each consumer to have
/// `expected` asset-triggered runs.
fn produce(cluster: &Cluster, run_id: &str, expected: usize, timeout: Duration) {
    cluster.trigger("producer", run_id);
    let states = cluster.wait_for_runs("producer", &[run_id.to_string()], timeout);
    assert_eq!(states[run_id], "success", "{}", cluster.logs());
    let deadline = Instant::now() + timeout;
    for consumer in ["consumer_1", "consumer_2"] {
        loop {
            let n = asset_runs(cluster, consumer).len();
            assert!(
                n <= expected,
                "{consumer} has {n} runs after {expected} events"
            );
            if n == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{consumer} got no run for {run_id}\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Each consumer ran once per producer run, every run succeeded, and each event was seen by
/// exactly one run of each consumer.
fn check_consumers(cluster: &Cluster, producer_runs: &[String], timeout: Duration) {
    for consumer in ["consumer_1", "consumer_2"] {
        let runs: Vec<String> = asset_runs(cluster, consumer)
            .into_iter()
            .map(|(run_id, _)| run_id)
            .collect();
        let states = cluster.wait_for_runs(consumer, &runs, timeout);
        assert_eq!(runs.len(), producer_runs.len(), "{consumer}: {states:#?}");
        for run in &runs {
            assert_eq!(
                states[run],
                "success",
                "{consumer} {run}\n{}",
                cluster.logs()
            );
        }
        let seen = read_lines(&cluster.path(&format!("{consumer}.txt")));
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for line in &seen {
            *counts.entry(line.as_str()).or_default() += 1;
        }
        for producer_run in producer_runs {
            assert_eq!(
                counts.get(producer_run.as_str()),
                Some(&1),
                "{consumer} saw {producer_run} {:?} times: {seen:?}",
                counts.get(producer_run.as_str())
            );
        }
        assert_eq!(seen.len(), producer_runs.len(), "{consumer}: {seen:?}");
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn three_schedulers_turn_each_asset_event_into_one_run_per_consumer() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    write_dags(&cluster);
    let _schedulers: Vec<Proc> = (0..3).map(|_| cluster.scheduler()).collect();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();
    let producer_runs: Vec<String> = (0..6).map(|i| format!("produce_{i}")).collect();
    for (i, run_id) in producer_runs.iter().enumerate() {
        produce(&cluster, run_id, i + 1, Duration::from_secs(60));
    }
    check_consumers(&cluster, &producer_runs, Duration::from_secs(60));
}

/// xorshift64*: reproducible choices from a seed printed by the test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn asset_and_backfill_runs_exist_once_while_schedulers_are_killed() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.set_log_level("info");
    let seed = std::env::var("UPDRAFT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("chaos seed: {seed} (set UPDRAFT_CHAOS_SEED={seed} to repeat the choices)");
    let mut rng = Rng(seed);
    write_dags(&cluster);
    let ran = cluster.path("hourly.txt");
    cluster.write_dag(
        "hourly.yaml",
        &format!(
            "schedule: \"@hourly\"\nstart_date: 2024-01-01\ncatchup: false\ntasks:\n  - task_id: t\n    \
             bash_command: echo {{{{ ts }}}} >> {}; sleep 0.2\n",
            ran.display()
        ),
    );
    let mut schedulers: Vec<Proc> = (0..3).map(|_| cluster.scheduler()).collect();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 6);
    cluster.wait_for_scheduler();
    let created = cluster.json(&[
        "backfill",
        "create",
        "--dag-id",
        "hourly",
        "--from-date",
        "2024-01-01T00:00:00Z",
        "--to-date",
        "2024-01-01T15:00:00Z",
        "--max-active-runs",
        "3",
    ]);
    let backfill = created[0]["id"].as_i64().expect("the backfill's id");

    let producer_runs: Vec<String> = (0..12).map(|i| format!("chaos_produce_{i}")).collect();
    let mut kills: Vec<String> = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        // Events arrive (one producer run after the other) while schedulers die.
        let events = scope.spawn(|| {
            for (i, run_id) in producer_runs.iter().enumerate() {
                produce(&cluster, run_id, i + 1, Duration::from_secs(120));
            }
        });
        while !events.is_finished() && started.elapsed() < Duration::from_secs(90) {
            std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
            let victim = &mut schedulers[rng.below(3) as usize];
            kills.push(format!(
                "{:>5.1}s kill -9 {} (pid {})",
                started.elapsed().as_secs_f64(),
                victim.name(),
                victim.pid()
            ));
            victim.sigkill();
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            cluster.restart(victim);
        }
        if let Err(panic) = events.join() {
            eprintln!("kills:\n{}", kills.join("\n"));
            std::panic::resume_unwind(panic);
        }
    });
    eprintln!("{} kills:\n{}", kills.len(), kills.join("\n"));
    assert!(kills.len() >= 3, "the chaos killed too little: {kills:?}");

    check_consumers(&cluster, &producer_runs, Duration::from_secs(120));

    // The backfill completes with one successful run per hour, each task run once.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let all = cluster.json(&["backfill", "list"]);
        let found = all
            .as_array()
            .and_then(|a| a.iter().find(|b| b["id"] == backfill))
            .cloned()
            .expect("the backfill is listed");
        if !found["completed_at"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backfill did not complete: {found:#}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let runs = cluster.json(&["dags", "list-runs", "hourly"]);
    let mut per_date: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in runs.as_array().expect("list-runs prints an array") {
        if str_field(run, "run_type") == "backfill" {
            per_date
                .entry(str_field(run, "logical_date").to_string())
                .or_default()
                .push(str_field(run, "state").to_string());
        }
    }
    assert_eq!(per_date.len(), 16, "one run per hour: {per_date:#?}");
    for (date, states) in &per_date {
        assert_eq!(states, &["success"], "{date}\n{}", cluster.logs());
    }
    let mut lines: Vec<String> = read_lines(&ran)
        .into_iter()
        .filter(|l| l.starts_with("2024-"))
        .collect();
    lines.sort();
    let before = lines.len();
    lines.dedup();
    // A try killed with its scheduler's run adoption never runs twice; a retry after an
    // infrastructure failure may write a line again only if the first try was lost, which
    // no scheduler kill causes (workers stay up).
    assert_eq!(
        (before, lines.len()),
        (16, 16),
        "each backfill task ran once"
    );
}
