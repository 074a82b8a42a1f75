//! The DAG's graph laid out left to right: each task in the layer after its deepest
//! dependency (longest path), tasks ordered within their layer by a few sweeps of the
//! barycenter heuristic to keep edges short and crossings few, every edge drawn from the right
//! side of its upstream task to the left side of its downstream task.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{escape, fmt_num, open, truncate};

pub const NODE_WIDTH: f64 = 180.0;
pub const NODE_HEIGHT: f64 = 40.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 16.0;
const MARGIN: f64 = 10.0;
const SWEEPS: usize = 8;
/// Characters of a task id shown in a node; the whole id is in its tooltip.
const LABEL_CHARS: usize = 22;

/// A task to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphTask {
    pub task_id: String,
    /// Upstream task ids (ids not in the graph are ignored).
    pub dependencies: Vec<String>,
    /// The state name (`success`, …), or `None` when there is no run to show.
    pub state: Option<String>,
    /// Where the node links to (the task instance), if anywhere.
    pub href: Option<String>,
    /// A setup or teardown is marked (an arrow up or down before its id, as Airflow's graph
    /// shows them), and the edge from a setup to its teardown is dashed.
    pub role: updraft_model::TaskRole,
}

/// Where a task landed.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub layer: usize,
    pub x: f64,
    pub y: f64,
}

/// The laid-out graph: one [`Placed`] per task, in the input's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub nodes: Vec<Placed>,
    /// (upstream index, downstream index) of every edge.
    pub edges: Vec<(usize, usize)>,
    pub width: f64,
    pub height: f64,
}

/// Lays `tasks` out. Deterministic: the same input gives the same layout.
pub fn layout(tasks: &[GraphTask]) -> Layout {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        for dep in &t.dependencies {
            if let Some(&up) = index.get(dep.as_str()) {
                if up != i && !edges.contains(&(up, i)) {
                    edges.push((up, i));
                }
            }
        }
    }
    let layers = assign_layers(tasks.len(), &edges);
    let layer_count = layers.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (i, &l) in layers.iter().enumerate() {
        rows[l].push(i);
    }
    order_layers(&mut rows, tasks.len(), &edges);

    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let pitch = NODE_HEIGHT + GAP_Y;
    let mut nodes = vec![
        Placed {
            layer: 0,
            x: 0.0,
            y: 0.0
        };
        tasks.len()
    ];
    for (l, row) in rows.iter().enumerate() {
        let offset = (tallest - row.len()) as f64 * pitch / 2.0;
        for (pos, &i) in row.iter().enumerate() {
            nodes[i] = Placed {
                layer: l,
                x: MARGIN + l as f64 * (NODE_WIDTH + GAP_X),
                y: MARGIN + offset + pos as f64 * pitch,
            };
        }
    }
    Layout {
        nodes,
        edges,
        width: 2.0 * MARGIN
            + layer_count as f64 * NODE_WIDTH
            + layer_count.saturating_sub(1) as f64 * GAP_X,
        height: 2.0 * MARGIN
            + tallest as f64 * NODE_HEIGHT
            + tallest.saturating_sub(1) as f64 * GAP_Y,
    }
}

/// The graph as an `<svg>` element; `label` is its accessible name.
pub fn render(tasks: &[GraphTask], label: &str) -> String {
    let layout = layout(tasks);
    let mut out = String::with_capacity(200 + tasks.len() * 400 + layout.edges.len() * 120);
    open(
        &mut out,
        "graph",
        layout.width.max(NODE_WIDTH),
        layout.height.max(NODE_HEIGHT),
        label,
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" class="arrowhead"/></marker></defs><g class="edges">"#,
    );
    for &(up, down) in &layout.edges {
        let (a, b) = (&layout.nodes[up], &layout.nodes[down]);
        let (x1, y1) = (a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2.0);
        let (x2, y2) = (b.x, b.y + NODE_HEIGHT / 2.0);
        let bend = (x2 - x1) / 2.0;
        let class = if tasks[up].role.is_setup && tasks[down].role.is_teardown {
            "edge setup-teardown"
        } else {
            "edge"
        };
        let _ = write!(
            out,
            r#"<path class="{class}" d="M{},{}C{},{} {},{} {},{}" marker-end="url(#arrow)"/>"#,
            fmt_num(x1),
            fmt_num(y1),
            fmt_num(x1 + bend),
            fmt_num(y1),
            fmt_num(x2 - bend),
            fmt_num(y2),
            fmt_num(x2),
            fmt_num(y2)
        );
    }
    out.push_str(r#"</g><g class="nodes">"#);
    for (task, place) in tasks.iter().zip(&layout.nodes) {
        let state = task.state.as_deref().unwrap_or("none");
        let id = escape(&task.task_id);
        let state_text = escape(&state.replace('_', " "));
        if let Some(href) = &task.href {
            let _ = write!(out, r#"<a href="{}">"#, escape(href));
        }
        let (role_class, role_title, mark) = match (task.role.is_setup, task.role.is_teardown) {
            (true, _) => (" role-setup", " (setup)", "↑ "),
            (_, true) => (" role-teardown", " (teardown)", "↓ "),
            _ => ("", "", ""),
        };
        let _ = write!(
            out,
            r#"<g class="node state-{cls}{role_class}" data-task-id="{id}" transform="translate({x},{y})"><title>{id}{role_title}: {state_text}</title><rect width="{w}" height="{h}" rx="5"/><text x="10" y="17" class="task-id">{mark}{label}</text><text x="10" y="32" class="task-state">{state_text}</text></g>"#,
            cls = escape(state),
            x = fmt_num(place.x),
            y = fmt_num(place.y),
            w = fmt_num(NODE_WIDTH),
            h = fmt_num(NODE_HEIGHT),
            label = escape(&truncate(&task.task_id, LABEL_CHARS)),
        );
        if task.href.is_some() {
            out.push_str("</a>");
        }
    }
    out.push_str("</g></svg>");
    out
}

/// Longest-path layers by Kahn's algorithm; a task left in a cycle (DAG files cannot have
/// one, this is only defensive) stays in the layer reached so far.
fn assign_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(up, down) in edges {
        indegree[down] += 1;
        downstream[up].push(down);
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut next = 0;
    while next < ready.len() {
        let i = ready[next];
        next += 1;
        for &d in &downstream[i] {
            layer[d] = layer[d].max(layer[i] + 1);
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }
    layer
}

/// Reorders each layer by the mean position of its neighbours in the layer before (sweeping
/// right) or after (sweeping left); ties keep the current order, so the result is stable.
fn order_layers(rows: &mut [Vec<usize>], n: usize, edges: &[(usize, usize)]) {
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(up, down) in edges {
        upstream[down].push(up);
        downstream[up].push(down);
    }
    let mut position = vec![0.0f64; n];
    let index_positions = |rows: &[Vec<usize>], position: &mut [f64]| {
        for row in rows {
            for (p, &i) in row.iter().enumerate() {
                position[i] = p as f64;
            }
        }
    };
    index_positions(rows, &mut position);
    for sweep in 0..SWEEPS {
        let rightwards = sweep % 2 == 0;
        let order: Vec<usize> = if rightwards {
            (1..rows.len()).collect()
        } else {
            (0..rows.len().saturating_sub(1)).rev().collect()
        };
        for l in order {
            let neighbours = if rightwards { &upstream } else { &downstream };
            let mut keyed: Vec<(f64, usize)> = rows[l]
                .iter()
                .map(|&i| {
                    let ns = &neighbours[i];
                    let key = if ns.is_empty() {
                        position[i]
                    } else {
                        ns.iter().map(|&j| position[j]).sum::<f64>() / ns.len() as f64
                    };
                    (key, i)
                })
                .collect();
            // Stable sort: equal keys keep the current order.
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            rows[l] = keyed.into_iter().map(|(_, i)| i).collect();
            for (p, &i) in rows[l].iter().enumerate() {
                position[i] = p as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests;
