//! A new version of a DAG is picked up by new runs, while runs already in flight finish on the
//! version they started with.

use chrono::Duration;
use updraft_model::{DagRunState, Operator};
use updraft_store::Store;

use crate::fixture::{bash, dag, utc, World};

#[tokio::test]
async fn runs_in_flight_keep_their_version_and_new_runs_take_the_latest() {
    let world = World::at(utc("2025-01-02T00:30:00Z")).await;
    let first = dag(
        "etl",
        "@daily",
        vec![bash("extract", &[]), bash("load", &["extract"])],
    );
    world.publish(vec![first]).await;
    world.pass().await;
    let runs = world.runs("etl").await;
    assert_eq!(runs.len(), 1);
    let old_run = runs[0].clone();
    assert_eq!(old_run.dag_version, 1);

    let extract = world.claim_one().await;
    assert_eq!(extract.ti.task_id, "extract");

    // While `extract` runs, the file changes: `load` does something else, and a task is added.
    let mut load = bash("load", &["extract"]);
    load.operator = Operator::Bash {
        bash_command: "echo load v2".to_string(),
    };
    let second = dag(
        "etl",
        "@daily",
        vec![bash("extract", &[]), load, bash("report", &["load"])],
    );
    world.publish(vec![second]).await;

    world.succeed(&extract).await;
    world.pass().await;
    let load = world.claim_one().await;
    assert_eq!(load.ti.task_id, "load");
    assert_eq!(load.dag_run.id, old_run.id);
    assert_eq!(load.dag_run.dag_version, 1);
    // The worker runs what the run's version says.
    let definition = world
        .store
        .get_dag_version("etl", load.dag_run.dag_version)
        .await
        .unwrap();
    let load_task = definition
        .tasks
        .iter()
        .find(|t| t.task_id == "load")
        .unwrap();
    assert_eq!(
        load_task.operator,
        Operator::Bash {
            bash_command: "echo load".to_string()
        }
    );
    world.succeed(&load).await;
    world.pass().await;
    assert_eq!(world.run(old_run.id).await.state, DagRunState::Success);
    let old_tasks: Vec<String> = world
        .tis(&old_run)
        .await
        .into_iter()
        .map(|ti| ti.task_id)
        .collect();
    assert!(
        !old_tasks.contains(&"report".to_string()),
        "the run of version 1 got a task of version 2: {old_tasks:?}"
    );

    // The next day's run is of version 2, with the added task.
    world.clock.advance(Duration::days(1));
    world.pass().await;
    let runs = world.runs("etl").await;
    assert_eq!(runs.len(), 2);
    let new_run = runs.iter().find(|r| r.id != old_run.id).unwrap();
    assert_eq!(new_run.dag_version, 2);
    let mut new_tasks: Vec<String> = world
        .tis(new_run)
        .await
        .into_iter()
        .map(|ti| ti.task_id)
        .collect();
    new_tasks.sort();
    assert_eq!(new_tasks, ["extract", "load", "report"]);
}
