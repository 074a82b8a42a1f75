//! Layout properties: no overlaps, edges left to right, determinism, and escaped markup.

use super::*;

fn task(id: &str, deps: &[&str]) -> GraphTask {
    GraphTask {
        task_id: id.to_string(),
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        state: None,
        href: None,
        role: Default::default(),
    }
}

/// A wide, deep DAG of `n` tasks: each depends on one or two earlier tasks.
fn big(n: usize) -> Vec<GraphTask> {
    (0..n)
        .map(|i| {
            let deps: Vec<String> = match i {
                0..=4 => vec![],
                _ => vec![format!("t{}", (i * 7) % i), format!("t{}", i / 3)],
            };
            GraphTask {
                task_id: format!("t{i}"),
                dependencies: deps,
                state: Some("success".into()),
                href: Some(format!("/ti/{i}")),
                role: Default::default(),
            }
        })
        .collect()
}

fn assert_no_overlaps(l: &Layout) {
    for (i, a) in l.nodes.iter().enumerate() {
        for b in &l.nodes[i + 1..] {
            let apart_x = a.x + NODE_WIDTH <= b.x || b.x + NODE_WIDTH <= a.x;
            let apart_y = a.y + NODE_HEIGHT <= b.y || b.y + NODE_HEIGHT <= a.y;
            assert!(apart_x || apart_y, "{a:?} overlaps {b:?}");
        }
        assert!(a.x >= 0.0 && a.y >= 0.0);
        assert!(
            a.x + NODE_WIDTH <= l.width && a.y + NODE_HEIGHT <= l.height,
            "{a:?} outside"
        );
    }
}

#[test]
fn a_chain_goes_left_to_right_in_one_row() {
    let l = layout(&[task("a", &[]), task("b", &["a"]), task("c", &["b"])]);
    let layers: Vec<usize> = l.nodes.iter().map(|n| n.layer).collect();
    assert_eq!(layers, vec![0, 1, 2]);
    assert!(l.nodes.iter().all(|n| n.y == l.nodes[0].y));
    assert_eq!(l.edges, vec![(0, 1), (1, 2)]);
}

#[test]
fn a_task_sits_right_of_its_deepest_dependency() {
    let l = layout(&[
        task("a", &[]),
        task("b", &["a"]),
        task("c", &["b"]),
        task("d", &["a", "c"]),
    ]);
    assert_eq!(l.nodes[3].layer, 3);
}

#[test]
fn big_graphs_have_no_overlaps_and_every_edge_goes_left_to_right() {
    let tasks = big(200);
    let l = layout(&tasks);
    assert_eq!(l.nodes.len(), 200);
    assert_no_overlaps(&l);
    assert!(!l.edges.is_empty());
    for &(up, down) in &l.edges {
        assert!(
            l.nodes[up].x + NODE_WIDTH < l.nodes[down].x,
            "edge {up}->{down} does not go right"
        );
    }
}

#[test]
fn the_layout_is_deterministic() {
    let tasks = big(120);
    assert_eq!(layout(&tasks), layout(&tasks));
    assert_eq!(render(&tasks, "g"), render(&tasks, "g"));
}

#[test]
fn ordering_removes_an_avoidable_crossing() {
    // a1 -> b2 and a2 -> b1 in file order cross; the sweeps put b2 level with a1.
    let l = layout(&[
        task("a1", &[]),
        task("a2", &[]),
        task("b1", &["a2"]),
        task("b2", &["a1"]),
    ]);
    let y = |i: usize| l.nodes[i].y;
    assert_eq!((y(0) < y(1)), (y(3) < y(2)));
}

#[test]
fn unknown_dependencies_and_self_loops_are_ignored() {
    let l = layout(&[task("a", &["ghost", "a"])]);
    assert!(l.edges.is_empty());
    assert_eq!(l.nodes[0].layer, 0);
}

#[test]
fn nodes_are_links_with_escaped_ids_and_state_labels() {
    let tasks = vec![GraphTask {
        task_id: "<script>alert(1)</script>".into(),
        dependencies: vec![],
        state: Some("up_for_retry".into()),
        href: Some("/dags/x/runs/r/tasks/%3Cscript%3E?try=1&a=\"".into()),
        role: Default::default(),
    }];
    let svg = render(&tasks, "Graph of <x>");
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains(r#"<a href="/dags/x/runs/r/tasks/%3Cscript%3E?try=1&amp;a=&quot;">"#));
    assert!(svg.contains(r#"class="node state-up_for_retry""#));
    assert!(svg.contains(">up for retry</text>"));
    assert!(svg.contains(r#"aria-label="Graph of &lt;x&gt;""#));
}

#[test]
fn setups_and_teardowns_are_marked_and_their_edge_dashed() {
    let mut create = task("create", &[]);
    create.role.is_setup = true;
    let query = task("query", &["create"]);
    let mut delete = task("delete", &["query", "create"]);
    delete.role.is_teardown = true;
    let svg = render(&[create, query, delete], "g");
    assert!(
        svg.contains(r#"class="node state-none role-setup" data-task-id="create""#),
        "{svg}"
    );
    assert!(svg.contains("<title>create (setup): none</title>"), "{svg}");
    assert!(svg.contains(r#"class="task-id">↑ create</text>"#), "{svg}");
    assert!(svg.contains(r#"class="node state-none role-teardown" data-task-id="delete""#));
    assert!(svg.contains(r#"class="task-id">↓ delete</text>"#), "{svg}");
    assert!(svg.contains(r#"class="task-id">query</text>"#), "{svg}");
    assert_eq!(
        svg.matches(r#"class="edge setup-teardown""#).count(),
        1,
        "{svg}"
    );
    assert_eq!(svg.matches(r#"class="edge""#).count(), 2, "{svg}");
}
