use chrono::Duration;

use super::*;
use crate::dice::Dice;

fn ti(id: i64, run: i64, dag: &str, pool: &str) -> TaskInstance {
    TaskInstance {
        id,
        dag_run_id: run,
        dag_id: dag.into(),
        run_id: format!("r{run}"),
        task_id: format!("t{}", id % 7),
        map_index: -1,
        try_number: 0,
        state: TaskState::Scheduled,
        queue: "default".into(),
        pool: pool.into(),
        priority_weight: 1,
        hostname: None,
        worker_id: None,
        claim_id: None,
        lease_until: None,
        queued_at: None,
        start_date: None,
        end_date: None,
        next_retry_at: None,
        infra_failures: 0,
        note: None,
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// Kept runs of these instances, grouped by run, each in id order as the store reads them.
fn keep(tis: Vec<TaskInstance>) -> HashMap<i64, KeptRun> {
    let mut runs: HashMap<i64, Vec<TaskInstance>> = HashMap::new();
    for ti in tis {
        runs.entry(ti.dag_run_id).or_default().push(ti);
    }
    runs.into_iter()
        .map(|(run, mut tis)| {
            tis.sort_by_key(|ti| ti.id);
            (run, KeptRun::new(tis))
        })
        .collect()
}

fn ids(picked: &[&TaskInstance]) -> Vec<i64> {
    picked.iter().map(|ti| ti.id).collect()
}

/// What the queue must take, by its definition: every waiting instance in priority order
/// (the older first among equals), each taken if its DAG, pool and task are below their limits.
fn by_definition(kept: &HashMap<i64, KeptRun>, limits: &Limits<'_>, free: usize) -> Vec<i64> {
    let mut waiting: Vec<&TaskInstance> = kept
        .values()
        .flat_map(KeptRun::all)
        .filter(|ti| limits.only_run.is_none_or(|run| run == ti.dag_run_id))
        .filter(|ti| {
            limits.only_run.is_some() || !limits.paused.get(&ti.dag_id).copied().unwrap_or(false)
        })
        .filter(|ti| match ti.state {
            TaskState::Scheduled => true,
            TaskState::UpForReschedule => ti.next_retry_at.is_none_or(|at| at <= now()),
            _ => false,
        })
        .collect();
    waiting.sort_by(|a, b| {
        b.priority_weight
            .cmp(&a.priority_weight)
            .then(a.id.cmp(&b.id))
    });
    let active = |ti: &&TaskInstance| {
        matches!(
            ti.state,
            TaskState::Queued | TaskState::Running | TaskState::Restarting
        )
    };
    let mut taken: Vec<&TaskInstance> = kept
        .values()
        .flat_map(KeptRun::all)
        .filter(active)
        .collect();
    let mut picked: Vec<&TaskInstance> = Vec::new();
    for ti in waiting {
        if picked.len() >= free {
            break;
        }
        let in_dag = limits
            .occupancy
            .per_dag
            .get(&ti.dag_id)
            .copied()
            .unwrap_or(0)
            + picked
                .iter()
                .filter(|p: &&&TaskInstance| p.dag_id == ti.dag_id)
                .count() as u32;
        let in_pool = limits
            .occupancy
            .per_pool
            .get(&ti.pool)
            .copied()
            .unwrap_or(0)
            + picked
                .iter()
                .filter(|p: &&&TaskInstance| p.pool == ti.pool)
                .count() as u32;
        if limits
            .max_active_tasks
            .get(&ti.dag_id)
            .is_some_and(|l| in_dag >= *l)
            || limits
                .occupancy
                .pool_slots
                .get(&ti.pool)
                .is_some_and(|s| in_pool >= *s)
        {
            continue;
        }
        if let Some(&(per_dag, per_run)) = limits
            .task_limits
            .get(&ti.dag_id)
            .and_then(|tasks| tasks.get(&ti.task_id))
        {
            let same_task = |t: &&&TaskInstance| t.dag_id == ti.dag_id && t.task_id == ti.task_id;
            let in_dag = taken.iter().filter(same_task).count() as u32;
            let in_run = taken
                .iter()
                .filter(same_task)
                .filter(|t| t.dag_run_id == ti.dag_run_id)
                .count() as u32;
            if per_dag.is_some_and(|l| in_dag >= l) || per_run.is_some_and(|l| in_run >= l) {
                continue;
            }
        }
        taken.push(ti);
        picked.push(ti);
    }
    ids(&picked)
}

#[test]
fn respects_parallelism_dag_and_pool_limits() {
    let kept = keep(vec![
        ti(1, 1, "a", "p"),
        ti(2, 1, "a", "p"),
        ti(3, 1, "a", "default_pool"),
        ti(4, 2, "b", "p"),
        ti(5, 2, "b", "default_pool"),
    ]);
    let mut occupancy = Occupancy::default();
    occupancy.pool_slots.insert("p".into(), 2);
    occupancy.per_pool.insert("p".into(), 1);
    occupancy.per_dag.insert("a".into(), 1);
    let max_active_tasks = HashMap::from([("a".to_string(), 2), ("b".to_string(), 16)]);
    let limits = Limits {
        occupancy: &occupancy,
        max_active_tasks: &max_active_tasks,
        task_limits: &HashMap::new(),
        paused: &HashMap::new(),
        only_run: None,
    };
    // a: one place left under max_active_tasks; pool p: one slot left.
    assert_eq!(ids(&pick(&kept, &limits, 10, now())), vec![1, 5]);
    let unlimited = Occupancy::default();
    let limits = Limits {
        occupancy: &unlimited,
        ..limits
    };
    assert_eq!(ids(&pick(&kept, &limits, 2, now())), vec![1, 2]);
    assert!(pick(&kept, &limits, 0, now()).is_empty());
}

#[test]
fn a_paused_dag_waits_except_for_the_run_under_test() {
    let kept = keep(vec![
        ti(1, 1, "a", "p"),
        ti(2, 2, "b", "p"),
        ti(3, 3, "a", "p"),
    ]);
    let occupancy = Occupancy::default();
    let paused = HashMap::from([("a".to_string(), true), ("b".to_string(), false)]);
    let limits = Limits {
        occupancy: &occupancy,
        max_active_tasks: &HashMap::new(),
        task_limits: &HashMap::new(),
        paused: &paused,
        only_run: None,
    };
    assert_eq!(ids(&pick(&kept, &limits, 10, now())), vec![2]);
    let limits = Limits {
        only_run: Some(3),
        ..limits
    };
    assert_eq!(ids(&pick(&kept, &limits, 10, now())), vec![3]);
}

/// Many waiting runs of three DAGs in three pools, with priorities, sensors not yet due,
/// queued and running instances, full and nearly full DAGs and pools, task limits and a
/// paused DAG: the picks are those of the definition, for every number of free places.
#[test]
fn picks_what_the_definition_picks() {
    let dags = ["a", "b", "c"];
    let pools = ["default_pool", "small", "wide"];
    for seed in 1..=60u64 {
        let mut dice = Dice(seed * 7_919);
        let mut tis = Vec::new();
        let runs = 1 + dice.roll(6) as i64;
        let mut id = 0;
        for run in 1..=runs {
            let dag = dags[dice.roll(3) as usize];
            for _ in 0..dice.roll(80) {
                id += 1 + dice.roll(3) as i64;
                let mut t = ti(id, run, dag, pools[dice.roll(3) as usize]);
                t.priority_weight = dice.roll(4) as i64 * 10;
                t.state = match dice.roll(10) {
                    0 => TaskState::Queued,
                    1 => TaskState::Running,
                    2 => TaskState::Success,
                    3 => TaskState::UpForReschedule,
                    _ => TaskState::Scheduled,
                };
                if t.state == TaskState::UpForReschedule {
                    t.next_retry_at = Some(now() + Duration::seconds(dice.roll(3) as i64 - 1));
                }
                tis.push(t);
            }
        }
        let kept = keep(tis);
        let mut occupancy = Occupancy::default();
        occupancy
            .pool_slots
            .insert("small".into(), dice.roll(6) as u32);
        occupancy
            .pool_slots
            .insert("default_pool".into(), 20 + dice.roll(40) as u32);
        occupancy
            .per_pool
            .insert("small".into(), dice.roll(3) as u32);
        occupancy
            .per_pool
            .insert("default_pool".into(), dice.roll(10) as u32);
        occupancy.per_dag.insert("a".into(), dice.roll(5) as u32);
        let max_active_tasks = HashMap::from([
            ("a".to_string(), 3 + dice.roll(10) as u32),
            ("b".to_string(), 1_000),
        ]);
        let task_limits = HashMap::from([(
            "c".to_string(),
            DagTaskLimits::from([
                ("t1".to_string(), (Some(1 + dice.roll(3) as u32), None)),
                ("t2".to_string(), (None, Some(1))),
                ("t3".to_string(), (Some(2), Some(1))),
            ]),
        )]);
        let paused = HashMap::from([("b".to_string(), dice.roll(4) == 0)]);
        let only_run = (dice.roll(8) == 0).then_some(1);
        let limits = Limits {
            occupancy: &occupancy,
            max_active_tasks: &max_active_tasks,
            task_limits: &task_limits,
            paused: &paused,
            only_run,
        };
        for free in [1, 2, 5, 17, 60, 1_000] {
            assert_eq!(
                ids(&pick(&kept, &limits, free, now())),
                by_definition(&kept, &limits, free),
                "seed {seed}, {free} free"
            );
        }
    }
}

/// The queueable index follows the instances' changes: a queued instance leaves it, one
/// scheduled again (a retry) comes back in its place in the order.
#[test]
fn the_order_follows_changes_to_the_kept_run() {
    let mut kept = keep(vec![
        ti(1, 1, "a", "p"),
        ti(2, 1, "a", "p"),
        ti(3, 1, "a", "p"),
    ]);
    let occupancy = Occupancy::default();
    let limits = Limits {
        occupancy: &occupancy,
        max_active_tasks: &HashMap::new(),
        task_limits: &HashMap::new(),
        paused: &HashMap::new(),
        only_run: None,
    };
    let run = kept.get_mut(&1).expect("kept");
    run.update(1, |ti| ti.state = TaskState::Queued);
    run.update(3, |ti| ti.priority_weight = 5);
    assert_eq!(ids(&pick(&kept, &limits, 10, now())), vec![3, 2]);
    let run = kept.get_mut(&1).expect("kept");
    run.update(1, |ti| ti.state = TaskState::Scheduled);
    run.update(2, |ti| ti.state = TaskState::Success);
    assert_eq!(ids(&pick(&kept, &limits, 10, now())), vec![3, 1]);
}
