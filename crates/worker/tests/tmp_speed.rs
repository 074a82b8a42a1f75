use std::time::{Duration, Instant};
use updraft_worker::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4000;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let l = TaskLaunch {
            command: "true".into(),
            env: vec![("UPDRAFT_CLAIM_ID".into(), i.to_string())],
            cwd: None,
            timeout: Some(Duration::from_secs(60)),
            skip_exit_codes: vec![99],
            log_path: dir.path().join(format!("d/{i}.log")),
            capture_xcom: true,
            kill_grace: DEFAULT_KILL_GRACE,
        };
        tasks.push(tokio::spawn(async move {
            let o = run_task(l, tokio::sync::watch::channel(false).1).await;
            drop(permit);
            o
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), TaskOutcome::Success { .. }));
    }
    let e = t.elapsed();
    eprintln!("{n} tasks in {e:?}: {:.0}/s", n as f64 / e.as_secs_f64());
}
