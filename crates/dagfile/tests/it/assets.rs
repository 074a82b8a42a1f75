//! Assets in DAG files: `outlets`/`inlets`, a `schedule` of assets (a list, `all`/`any`),
//! `cron` with `assets`, and the mistakes reported with their place.

use updraft_model::{Asset, AssetCondition, Schedule};

use crate::parse::{check_err, check_ok};

fn asset(name: &str, uri: &str) -> AssetCondition {
    AssetCondition::Asset(Asset::new(Some(name), Some(uri)).unwrap())
}

#[test]
fn outlets_and_inlets_are_assets() {
    let dag = check_ok(
        "tasks:\n\
         \x20 - task_id: a\n\
         \x20   bash_command: x\n\
         \x20   outlets: [s3://raw/orders, {name: clean, uri: \"s3://c\", group: tables, extra: {k: 1}}]\n\
         \x20   inlets: src\n",
    );
    let task = &dag.tasks[0];
    assert_eq!(task.outlets.len(), 2);
    assert_eq!(
        (task.outlets[0].name.as_str(), task.outlets[0].uri.as_str()),
        ("s3://raw/orders", "s3://raw/orders")
    );
    assert_eq!(
        (
            task.outlets[1].group.as_str(),
            task.outlets[1].extra["k"].clone()
        ),
        ("tables", serde_json::json!(1))
    );
    assert_eq!(task.inlets[0].name, "src");
    assert!(dag.asset_schedule.is_none());
}

#[test]
fn a_schedule_of_assets() {
    let list =
        check_ok("schedule: [a, {uri: \"s3://b\"}]\ntasks: [{task_id: t, bash_command: x}]\n");
    assert_eq!(list.schedule, Schedule::None, "no start_date needed");
    assert_eq!(
        list.asset_schedule,
        Some(AssetCondition::All(vec![
            asset("a", "a"),
            asset("s3://b", "s3://b")
        ]))
    );

    let nested = check_ok(
        "schedule:\n  all:\n    - a\n    - any: [b, c]\ntasks: [{task_id: t, bash_command: x}]\n",
    );
    assert_eq!(
        nested.asset_schedule,
        Some(AssetCondition::All(vec![
            asset("a", "a"),
            AssetCondition::Any(vec![asset("b", "b"), asset("c", "c")]),
        ]))
    );
    let one = check_ok("schedule: {name: orders}\ntasks: [{task_id: t, bash_command: x}]\n");
    assert_eq!(one.asset_schedule, Some(asset("orders", "orders")));

    let either = check_ok(
        "start_date: 2024-01-01\nschedule: {cron: \"@daily\", assets: {any: [a, b]}}\n\
         tasks: [{task_id: t, bash_command: x}]\n",
    );
    assert_eq!(either.schedule, Schedule::Cron("0 0 * * *".into()));
    assert_eq!(
        either.asset_schedule,
        Some(AssetCondition::Any(vec![asset("a", "a"), asset("b", "b")]))
    );
}

#[test]
fn asset_mistakes_name_their_place() {
    let cases: &[(&str, &[&str])] = &[
        ("schedule: []\ntasks: [{task_id: t, bash_command: x}]\n", &["never triggers a run"]),
        ("schedule: {any: a}\ntasks: [{task_id: t, bash_command: x}]\n", &["`schedule`.any must be a list"]),
        ("schedule: {all: []}\ntasks: [{task_id: t, bash_command: x}]\n", &["is empty"]),
        ("schedule: [\"airflow://x\"]\ntasks: [{task_id: t, bash_command: x}]\n", &["reserved"]),
        ("schedule: {cron: \"@daily\"}\ntasks: [{task_id: t, bash_command: x}]\n", &["needs `assets`"]),
        ("schedule: {cron: nope, assets: [a]}\ntasks: [{task_id: t, bash_command: x}]\n", &["`schedule.cron`"]),
        ("schedule: {cron: \"@daily\", assets: [a], when: now}\ntasks: [{task_id: t, bash_command: x}]\n", &["when"]),
        ("schedule: [{group: g}]\ntasks: [{task_id: t, bash_command: x}]\n", &["needs a name or a uri"]),
        ("schedule: [{nme: a}]\ntasks: [{task_id: t, bash_command: x}]\n", &["nme"]),
        ("schedule: [3]\ntasks: [{task_id: t, bash_command: x}]\n", &["found number 3"]),
        ("tasks: [{task_id: t, bash_command: x, outlets: [\"\"]}]\n", &["task `t`", "outlets", "empty"]),
        ("tasks: [{task_id: t, bash_command: x, outlets: [{uri: a, extra: 3}]}]\n", &["`extra` must be a mapping"]),
    ];
    for (source, expected) in cases {
        check_err(source, expected);
    }
}
