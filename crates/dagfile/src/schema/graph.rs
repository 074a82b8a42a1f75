//! Checks of the task graph: unique task ids, dependencies that exist, and no cycles.

use std::collections::{HashMap, VecDeque};

use super::task::ReadTask;
use super::value::{closest, Ctx};

/// The tasks, with those that a teardown names in `setups` marked as setups.
pub(crate) fn with_named_setups(read: Vec<ReadTask>) -> Vec<updraft_model::Task> {
    let named: std::collections::HashSet<String> =
        read.iter().flat_map(|r| r.setups.iter().cloned()).collect();
    read.into_iter()
        .map(|r| {
            let mut task = r.task;
            if named.contains(&task.task_id) && !task.role.is_teardown {
                task.role.is_setup = true;
            }
            task
        })
        .collect()
}

/// Reports every graph problem of `tasks` (in file order).
pub(crate) fn check(tasks: &[ReadTask], ctx: &mut Ctx) {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(tasks.len());
    for (i, read) in tasks.iter().enumerate() {
        let id = read.task.task_id.as_str();
        match index.get(id) {
            Some(&first) => {
                let at = match tasks[first].id_pos {
                    Some(pos) => format!(" (first defined at line {})", pos.line),
                    None => String::new(),
                };
                ctx.error(read.id_pos, format!("duplicate task_id `{id}`{at}"));
            }
            None => {
                index.insert(id, i);
            }
        }
    }

    // Upstream edges by index; unknown dependencies are reported and left out.
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, read) in tasks.iter().enumerate() {
        for (dep, pos) in read.task.dependencies.iter().zip(&read.dependency_pos) {
            match index.get(dep.as_str()) {
                Some(&d) => upstream[i].push(d),
                None => {
                    // Suggestions cost an edit distance per task: only for a few, small cases.
                    let cheap = index.len() <= 1000 && ctx.diags.len() < 100;
                    let near = cheap.then(|| closest(dep, index.keys().copied())).flatten();
                    let hint = match near {
                        Some(near) => format!(" (did you mean `{near}`?)"),
                        None => String::new(),
                    };
                    ctx.error(
                        *pos,
                        format!(
                            "task `{}`: depends on unknown task `{dep}`{hint}",
                            read.task.task_id
                        ),
                    );
                }
            }
        }
    }

    for cycle in cycles(&upstream) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| tasks[i].task.task_id.as_str())
            .collect();
        ctx.error(
            tasks[cycle[0]].id_pos,
            format!("cycle: {}", names.join(" -> ")),
        );
    }
}

/// Finds cycles without recursion: Kahn's algorithm removes every task not blocked by a
/// cycle; every remaining task has a remaining upstream, so walking upstream from one must
/// come back to a task of the walk. Each cycle is returned in flow order (upstream first),
/// starting and ending at its task that comes first in the file.
fn cycles(upstream: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = upstream.len();
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ups) in upstream.iter().enumerate() {
        for &u in ups {
            downstream[u].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    while let Some(i) = ready.pop_front() {
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push_back(d);
            }
        }
    }

    const NEW: u8 = 0;
    const ON_WALK: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; n];
    let mut found = Vec::new();
    for start in 0..n {
        if waiting[start] == 0 || state[start] != NEW {
            continue;
        }
        let mut walk = Vec::new();
        let mut current = start;
        loop {
            match state[current] {
                DONE => break,
                ON_WALK => {
                    let from = walk.iter().position(|&w| w == current).unwrap_or(0);
                    found.push(flow_order(&walk[from..]));
                    break;
                }
                _ => {}
            }
            state[current] = ON_WALK;
            walk.push(current);
            match upstream[current].iter().find(|&&u| waiting[u] > 0) {
                Some(&u) => current = u,
                None => break, // cannot happen after Kahn; stop rather than loop
            }
        }
        for w in walk {
            state[w] = DONE;
        }
    }
    found
}

/// `walk` goes upstream (each item depends on the next, the last on the first); returns the
/// cycle downstream-wise, rotated to start at its smallest index, with that index repeated.
fn flow_order(walk: &[usize]) -> Vec<usize> {
    let mut cycle: Vec<usize> = walk.iter().rev().copied().collect();
    if let Some(min) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, &t)| t)
        .map(|(i, _)| i)
    {
        cycle.rotate_left(min);
    }
    if let Some(&first) = cycle.first() {
        cycle.push(first);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_once_in_flow_order() {
        // 0 depends on 2, 1 on 0, 2 on 1: flow 0 -> 1 -> 2 -> 0. 3 is downstream of it.
        // 4 depends on itself. 5 and 6 depend on each other.
        let upstream = vec![
            vec![2],
            vec![0],
            vec![1],
            vec![2],
            vec![4],
            vec![6],
            vec![5],
        ];
        assert_eq!(
            cycles(&upstream),
            vec![vec![0, 1, 2, 0], vec![4, 4], vec![5, 6, 5]]
        );
        assert!(cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let n = 200_000;
        let mut upstream: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert!(cycles(&upstream).is_empty());
        upstream[0] = vec![n - 1];
        assert_eq!(cycles(&upstream)[0].len(), n + 1);
    }
}
