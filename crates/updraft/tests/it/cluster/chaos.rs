//! Chaos: 3 schedulers, 2 API servers and 3 workers; while 50 runs of a 20-task DAG go through,
//! a random process is SIGKILLed about every second and started again. Every run succeeds, no
//! try runs twice, and every task runs.

use std::time::{Duration, Instant};

use super::{chains_dag, try_line_command, Cluster, Proc, Role, TryLines};

const KINDS: [Role; 3] = [Role::Scheduler, Role::ApiServer, Role::Worker];

const RUNS: usize = 50;
/// How long processes are killed for (at most; it stops earlier when every run is done).
const CHAOS: Duration = Duration::from_secs(30);
/// How long the runs may take after the chaos stops.
const SETTLE: Duration = Duration::from_secs(60);

/// xorshift64*: reproducible choices from a seed printed by the test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn every_run_succeeds_and_no_try_runs_twice_while_processes_are_killed() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    // Eight processes at debug level are a lot of log on two cores.
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

    let lines = cluster.path("tries.log");
    let (dag, tasks) = chains_dag(
        4,
        5,
        &try_line_command(&lines, "; sleep 0.1"),
        "max_active_runs: 64\nmax_active_tasks: 64\n",
    );
    assert_eq!(tasks.len(), 20);
    cluster.write_dag("chaos.yaml", &dag);

    let mut procs: Vec<Proc> = Vec::new();
    for _ in 0..3 {
        procs.push(cluster.scheduler());
    }
    for _ in 0..2 {
        procs.push(cluster.api_server());
    }
    let workers: Vec<Proc> = {
        let servers = [&procs[3], &procs[4]];
        (0..3)
            .map(|_| cluster.worker(&servers, "default", 6))
            .collect()
    };
    procs.extend(workers);
    cluster.wait_for_scheduler();

    let run_ids: Vec<String> = (0..RUNS).map(|i| format!("chaos_{i:02}")).collect();
    let mut events: Vec<String> = Vec::new();
    let mut crashed: Vec<String> = Vec::new();
    let first_kind = rng.below(3) as usize;
    let started = Instant::now();
    std::thread::scope(|scope| {
        // Runs are triggered while the chaos goes on.
        let trigger = scope.spawn(|| {
            for run_id in &run_ids {
                cluster.trigger("chaos", run_id);
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        while started.elapsed() < CHAOS {
            std::thread::sleep(Duration::from_millis(600 + rng.below(800)));
            // A process that exited although nobody killed it is a bug; note it and go on.
            for proc in procs.iter_mut() {
                if let Some(status) = proc.exited() {
                    crashed.push(format!(
                        "{} exited by itself ({status}) at {:?}:\n{}",
                        proc.name(),
                        started.elapsed(),
                        proc.log_tail()
                    ));
                    cluster.restart(proc);
                }
            }
            // Every kind is killed early on (in a random order), then any process.
            let kind = if events.len() < 3 {
                (first_kind + events.len()) % 3
            } else {
                rng.below(3) as usize
            };
            let of_kind: Vec<usize> = (0..procs.len())
                .filter(|i| procs[*i].role() == KINDS[kind])
                .collect();
            let victim = &mut procs[of_kind[rng.below(of_kind.len() as u64) as usize]];
            events.push(format!(
                "{:>5.1}s kill -9 {} (pid {})",
                started.elapsed().as_secs_f64(),
                victim.name(),
                victim.pid()
            ));
            victim.sigkill();
            // Down for a moment; at most one process is down at any time.
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            cluster.restart(victim);
            if trigger.is_finished() {
                let states = cluster.run_states("chaos");
                let done = run_ids
                    .iter()
                    .filter(|run| {
                        matches!(
                            states.get(*run).map(String::as_str),
                            Some("success" | "failed")
                        )
                    })
                    .count();
                if done == RUNS {
                    break;
                }
            }
        }
        if let Err(panic) = trigger.join() {
            std::panic::resume_unwind(panic);
        }
    });
    eprintln!(
        "chaos: {} kills in {:.1}s:\n{}",
        events.len(),
        started.elapsed().as_secs_f64(),
        events.join("\n")
    );
    let states = cluster.wait_for_runs("chaos", &run_ids, SETTLE);
    let failed: Vec<&String> = run_ids
        .iter()
        .filter(|run| states.get(*run).map(String::as_str) != Some("success"))
        .collect();
    if !failed.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .take(3)
            .map(|run| format!("{:#}", cluster.states("chaos", run)))
            .collect();
        panic!(
            "{} runs did not succeed: {failed:?}\n{}\nkills:\n{}\n{}",
            failed.len(),
            details.join("\n"),
            events.join("\n"),
            cluster.logs()
        );
    }
    assert!(
        crashed.is_empty(),
        "processes exited without being killed:\n{}",
        crashed.join("\n")
    );

    let tries = TryLines::read(&lines);
    let duplicates = tries.duplicates();
    assert!(
        duplicates.is_empty(),
        "tries that ran more than once:\n{}\nkills:\n{}\n{}",
        duplicates.join("\n"),
        events.join("\n"),
        cluster.logs()
    );
    let retried = tries.counts.keys().filter(|(.., t)| *t > 1).count();
    eprintln!("{retried} tries were retries of tries lost with their process");
    let missing = tries.missing("chaos", &run_ids, &tasks);
    assert!(
        missing.is_empty(),
        "tasks of successful runs that never ran: {missing:?}"
    );
}
