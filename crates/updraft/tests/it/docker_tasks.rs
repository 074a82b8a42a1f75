//! Docker tasks (`operator: docker`, Airflow's `DockerOperator`) against the Docker daemon of
//! this machine, with an image built here from Debian's static busybox (no registry is
//! reachable): the container's output as the log and its last line as XCom, its exit code as
//! the outcome (skip codes too), environment, mounts, user and limits as the task says, and a
//! container that outlives its timeout killed, not left running.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{eventually, state_of, try_of, Home};

const IMAGE: &str = "updraft-test-busybox:1";

/// The image the tests run, built once from the host's static busybox; `None` (with the reason
/// printed) when no Docker engine runs here or no static busybox is installed.
pub(crate) fn image() -> Option<&'static str> {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED: no Docker engine answers here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            eprintln!("SKIPPED: no docker CLI here: {e}");
            return None;
        }
    }
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Some(IMAGE);
    }
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
    else {
        eprintln!("SKIPPED: no static busybox to build the test image from (apt-get install busybox-static)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(busybox, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "cannot build the test image: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(IMAGE)
}

/// `name state` of every container of `dag_id`'s tries, running or not.
fn containers_of(dag_id: &str, all: bool) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.arg("ps");
    if all {
        cmd.arg("-a");
    }
    let out = cmd
        .args(["--filter", &format!("label=updraft.dag_id={dag_id}")])
        .args([
            "--format",
            "{{.Names}} {{.State}} {{.Label \"updraft.task_id\"}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn remove_containers_of(dag_id: &str) {
    let names: Vec<String> = containers_of(dag_id, true)
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    if !names.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&names)
            .output();
    }
}

#[test]
fn docker_tasks_run_containers_and_never_leave_one_running() {
    let Some(image) = image() else { return };
    let home = Home::new();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("input.txt"), "from the host\n").unwrap();
    let dag = format!(
        r#"
dag_id: containers
params: {{who: world}}
tasks:
  - task_id: greet
    operator: docker
    docker:
      image: {image}
      command: "sh -c 'echo hello {{{{ params.who }}}} on $DAY; cat input.txt; echo to stderr >&2; echo done > out.txt; echo last line'"
      environment: {{DAY: "{{{{ ds }}}}"}}
      mounts: [{{source: {data}, target: /data}}]
      working_dir: /data
      auto_remove: force
  - task_id: who
    operator: docker
    docker:
      image: {image}
      command: [id, -u]
      user: "1234"
      network_mode: none
      mem_limit: 64m
      cpus: 0.5
      auto_remove: success
  - task_id: fails
    operator: docker
    docker: {{image: {image}, command: "sh -c 'echo failing; exit 3'"}}
  - task_id: ninety_nine
    operator: docker
    docker: {{image: {image}, command: "sh -c 'exit 99'", auto_remove: force}}
  - task_id: skips
    operator: docker
    skip_on_exit_code: 99
    docker: {{image: {image}, command: "sh -c 'exit 99'", auto_remove: force}}
  - task_id: sleeper
    operator: docker
    execution_timeout: 2s
    docker: {{image: {image}, command: [sleep, "300"]}}
"#,
        data = data.display()
    );
    remove_containers_of("containers");
    home.write_dag("containers.yaml", &dag);
    let out = home
        .command()
        .args([
            "dags",
            "test",
            "containers",
            "2024-03-01",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let run_id = doc["run_id"].as_str().unwrap().to_owned();
    let states = home.json(&["tasks", "states-for-dag-run", "containers", &run_id]);
    let log = home.ok(&["tasks", "logs", "containers", &run_id, "greet"]);
    assert_eq!(state_of(&states, "greet"), "success", "{log}");
    assert_eq!(state_of(&states, "who"), "success", "{states:#}");
    assert_eq!(state_of(&states, "fails"), "failed", "{states:#}");
    assert_eq!(state_of(&states, "skips"), "skipped", "{states:#}");
    assert_eq!(
        state_of(&states, "ninety_nine"),
        "failed",
        "unlike a bash task's, a docker task's exit code 99 is no skip by default"
    );
    assert_eq!(state_of(&states, "sleeper"), "failed", "{states:#}");

    for line in ["hello world on 2024-03-01", "from the host", "to stderr"] {
        assert!(log.contains(line), "{line:?} not in the log: {log}");
    }
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "done\n",
        "the bind mount is the working directory"
    );
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let xcom = |task: &str| -> Option<Value> {
        db.query_row(
            "SELECT value FROM xcom WHERE task_id = ?1 AND key = 'return_value'",
            [task],
            |row| row.get::<_, String>(0),
        )
        .ok()
        .map(|text| serde_json::from_str(&text).unwrap())
    };
    assert_eq!(xcom("greet"), Some(Value::from("last line")));
    assert_eq!(xcom("who"), Some(Value::from("1234")));
    let log = home.ok(&["tasks", "logs", "containers", &run_id, "fails"]);
    assert!(
        log.contains("failing") && log.contains("exited with code 3"),
        "{log}"
    );
    let log = home.ok(&["tasks", "logs", "containers", &run_id, "sleeper"]);
    assert!(log.contains("timed out"), "{log}");

    let running = containers_of("containers", false);
    assert!(running.is_empty(), "containers left running: {running:?}");
    let kept = containers_of("containers", true);
    // auto_remove: never (the default) keeps the stopped containers, as Airflow; force and
    // success (when it succeeded) remove them.
    let tasks: Vec<&str> = kept
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let mut sorted = tasks.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["fails", "sleeper"], "{kept:?}");
    remove_containers_of("containers");
}

#[test]
fn a_docker_task_without_an_image_is_an_import_error() {
    let home = Home::new();
    home.write_dag(
        "no_image.yaml",
        "dag_id: no_image\ntasks:\n  - task_id: t\n    operator: docker\n    docker: {command: ls}\n",
    );
    home.write_dag(
        "bad_mount.yaml",
        "dag_id: bad_mount\ntasks:\n  - task_id: t\n    operator: docker\n    docker: {image: x, mounts: [{target: /data}]}\n",
    );
    home.write_dag(
        "bad_memory.yaml",
        "dag_id: bad_memory\ntasks:\n  - task_id: t\n    operator: docker\n    docker: {image: x, mem_limit: lots}\n",
    );
    let errors = home.ok(&["dags", "list-import-errors"]);
    let errors = errors.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(errors.contains("`docker:` needs `image`"), "{errors}");
    assert!(errors.contains("a `bind` mount needs `source`"), "{errors}");
    assert!(
        errors.contains("`docker.mem_limit` must be bytes"),
        "{errors}"
    );
}

#[test]
fn a_killed_worker_leaves_no_container_running_and_the_try_runs_again() {
    let Some(image) = image() else { return };
    let home = Home::new();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    home.write_dag(
        "boxed_crash.yaml",
        &format!(
            r#"
dag_id: boxed_crash
tasks:
  - task_id: long
    operator: docker
    docker:
      image: {image}
      command: "sh -c 'if [ -e /data/started ]; then echo second try; else touch /data/started; sleep 300; fi'"
      mounts: [{{source: {data}, target: /data}}]
      auto_remove: force
"#,
            data = data.display()
        ),
    );
    remove_containers_of("boxed_crash");
    let mut standalone = home.standalone();
    let run_id = home.trigger("boxed_crash");
    eventually(Duration::from_secs(30), || {
        let running = containers_of("boxed_crash", false);
        (data.join("started").exists() && !running.is_empty()).then_some(())
    })
    .expect("the container never started");

    standalone.sigkill();
    // The reaper kills the container along with the `docker run` process.
    let left = eventually(Duration::from_secs(30), || {
        containers_of("boxed_crash", false).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "a container outlived its worker: {:?}",
        containers_of("boxed_crash", false)
    );

    let _restarted = home.standalone();
    let states = home.wait_for_run("boxed_crash", &run_id, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(try_of(&states, "long"), 2);
    let log = home.ok(&["tasks", "logs", "boxed_crash", &run_id, "long"]);
    assert!(log.contains("second try"), "{log}");
    remove_containers_of("boxed_crash");
}

#[test]
fn a_cancelled_docker_task_leaves_no_container_running() {
    let Some(image) = image() else { return };
    let home = Home::new();
    // The run's timeout cancels the running try (not the task's own timeout).
    home.write_dag(
        "boxed_cancel.yaml",
        &format!(
            "dag_id: boxed_cancel\ndagrun_timeout: 3s\ntasks:\n  - task_id: work\n    operator: docker\n    docker: {{image: {image}, command: [sleep, '300']}}\n"
        ),
    );
    remove_containers_of("boxed_cancel");
    let out = home.run(&["dags", "test", "boxed_cancel", "--output", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["state"], "failed", "{doc:#}");
    let started = containers_of("boxed_cancel", true);
    assert_eq!(started.len(), 1, "the container ran: {started:?}");
    let running = containers_of("boxed_cancel", false);
    assert!(
        running.is_empty(),
        "a cancelled task's container runs on: {running:?}"
    );
    remove_containers_of("boxed_cancel");
}

#[test]
fn the_clean_up_after_a_crash_kills_the_containers_of_lost_claims_only() {
    let Some(image) = image() else { return };
    let run = |claim: &str| {
        let out = Command::new("docker")
            .args(["run", "-d", "--name"])
            .arg(updraft_model::docker::container_name(claim))
            .args(["--label", &format!("updraft.claim_id={claim}")])
            .args(["--label", "updraft.dag_id=orphans", image, "sleep", "300"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    remove_containers_of("orphans");
    run("1.1.lost:1:2");
    run("1.1.alive:1:3");
    let killed = updraft_worker::kill_orphan_containers(&["1.1.lost:1:2".to_owned()]);
    assert_eq!(killed, 1);
    let running = containers_of("orphans", false);
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(
        running[0].starts_with("updraft-1.1.alive_1_3 "),
        "{running:?}"
    );
    remove_containers_of("orphans");
}
