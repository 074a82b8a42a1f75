//! Choosing which ready task instances to queue now, within the concurrency limits.

use std::collections::HashMap;

use updraft_store::{Occupancy, TaskInstance};

/// Picks from `candidates` (highest priority first) at most `free` task instances such that no
/// DAG exceeds its `max_active_tasks` and no pool its slots. Pools with no row are unlimited.
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = &'a TaskInstance>,
    occupancy: &Occupancy,
    free: usize,
    max_active_tasks: &HashMap<String, u32>,
    only_run: Option<i64>,
) -> Vec<&'a TaskInstance> {
    let mut per_dag: HashMap<&str, u32> = occupancy
        .per_dag
        .iter()
        .map(|(dag, n)| (dag.as_str(), *n))
        .collect();
    let mut per_pool: HashMap<&str, u32> = occupancy
        .per_pool
        .iter()
        .map(|(pool, n)| (pool.as_str(), *n))
        .collect();
    let mut chosen = Vec::new();
    for ti in candidates {
        if chosen.len() >= free {
            break;
        }
        if only_run.is_some_and(|run| run != ti.dag_run_id) {
            continue;
        }
        let dag_count = per_dag.get(ti.dag_id.as_str()).copied().unwrap_or(0);
        if max_active_tasks
            .get(&ti.dag_id)
            .is_some_and(|limit| dag_count >= *limit)
        {
            continue;
        }
        let pool_count = per_pool.get(ti.pool.as_str()).copied().unwrap_or(0);
        if occupancy
            .pool_slots
            .get(&ti.pool)
            .is_some_and(|slots| pool_count >= *slots)
        {
            continue;
        }
        per_dag.insert(&ti.dag_id, dag_count + 1);
        per_pool.insert(&ti.pool, pool_count + 1);
        chosen.push(ti);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_store::TaskState;

    fn ti(id: i64, dag: &str, pool: &str) -> TaskInstance {
        TaskInstance {
            id,
            dag_run_id: 1,
            dag_id: dag.into(),
            run_id: "r".into(),
            task_id: format!("t{id}"),
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

    #[test]
    fn respects_parallelism_dag_and_pool_limits() {
        let candidates = vec![
            ti(1, "a", "p"),
            ti(2, "a", "p"),
            ti(3, "a", "default_pool"),
            ti(4, "b", "p"),
            ti(5, "b", "default_pool"),
        ];
        let mut occupancy = Occupancy::default();
        occupancy.pool_slots.insert("p".into(), 2);
        occupancy.per_pool.insert("p".into(), 1);
        occupancy.per_dag.insert("a".into(), 1);
        let limits = HashMap::from([("a".to_string(), 2), ("b".to_string(), 16)]);
        let ids: Vec<i64> = choose(&candidates, &occupancy, 10, &limits, None)
            .iter()
            .map(|t| t.id)
            .collect();
        // a: one slot left under max_active_tasks; pool p: one slot left.
        assert_eq!(ids, vec![1, 5]);
        let ids: Vec<i64> = choose(&candidates, &Occupancy::default(), 2, &limits, None)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }
}
