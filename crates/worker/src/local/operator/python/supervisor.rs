//! The worker's end of a Python try's socket: JSON lines, one request → one answer (start,
//! xcom_pull, xcom_push, variable_get, variable_set, connection_get, finish). What the
//! child pushed and how it said it ended are kept for the finish report.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use updraft_model::Dag;
use updraft_store::{ClaimedTask, PushedXCom, TaskExecution, XCom};
use updraft_template::TemplateContext;

use crate::local::starting::Starting;

/// The longest request line read (an XCom value pushed by the child).
const MAX_REQUEST: usize = 16 << 20;

/// How the child said its try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::local) enum FinishState {
    Success,
    Skipped,
    Failed,
}

/// The child's `finish` message.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::local) struct Finish {
    pub state: FinishState,
    /// Whether a failure may be retried (`false` for `AirflowFailException`).
    pub retry: bool,
    pub error: Option<String>,
    pub skip: Vec<String>,
    /// Absent, or `null`: no XCom.
    pub return_value: Option<Value>,
    /// A try started with `render_only`: the task's templated fields, rendered by the SDK.
    pub rendered: Option<Map<String, Value>>,
    /// `false` for a sensor's poke that found nothing (`"sensor_done": false`).
    pub sensor_done: bool,
}

#[derive(Default)]
struct Reported {
    finish: Option<Finish>,
    pushed: Vec<PushedXCom>,
    /// Given back when the child asks for its context, right before its callable runs.
    starting: Option<Starting>,
}

/// Serves one try's socket until [`Supervisor::finish`]; owns the try's private directory.
pub(in crate::local) struct Supervisor {
    server: JoinHandle<()>,
    reported: Arc<Mutex<Reported>>,
    _dir: tempfile::TempDir,
}

struct Served {
    context: Value,
    execution: Arc<dyn TaskExecution>,
    claimed: ClaimedTask,
    reported: Arc<Mutex<Reported>>,
}

impl Supervisor {
    pub(in crate::local) fn start(
        socket: &Path,
        dir: tempfile::TempDir,
        context: Value,
        execution: Arc<dyn TaskExecution>,
        claimed: ClaimedTask,
    ) -> Result<Supervisor, String> {
        let listener = UnixListener::bind(socket)
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let reported = Arc::new(Mutex::new(Reported::default()));
        let served = Arc::new(Served {
            context,
            execution,
            claimed,
            reported: reported.clone(),
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, served.clone()));
            }
        });
        Ok(Supervisor {
            server,
            reported,
            _dir: dir,
        })
    }

    /// Gives `starting` back when the child asks for its context (or when it ends, if it
    /// never does).
    pub(in crate::local) fn when_started(&self, starting: Starting) {
        match self.reported.lock() {
            Ok(mut reported) => reported.starting = Some(starting),
            Err(poisoned) => poisoned.into_inner().starting = Some(starting),
        }
    }

    /// Stops serving (the child has exited) and answers what it reported: its `finish`, if
    /// it sent one, and the XComs it pushed.
    pub(in crate::local) fn finish(self) -> (Option<Finish>, Vec<PushedXCom>) {
        self.server.abort();
        let mut reported = match self.reported.lock() {
            Ok(reported) => reported,
            Err(poisoned) => poisoned.into_inner(),
        };
        (reported.finish.take(), std::mem::take(&mut reported.pushed))
    }
}

async fn serve(stream: UnixStream, served: Arc<Served>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = if line.len() > MAX_REQUEST {
            json!({"ok": false, "error": format!("request longer than {MAX_REQUEST} bytes")})
        } else {
            match serde_json::from_slice::<Value>(&line) {
                Ok(request) => served.answer(&request).await,
                Err(e) => json!({"ok": false, "error": format!("not a JSON request: {e}")}),
            }
        };
        let mut out = answer.to_string().into_bytes();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
        if line.len() > MAX_REQUEST {
            return;
        }
    }
}

fn refused(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

impl Served {
    async fn answer(&self, request: &Value) -> Value {
        let op = request.get("op").and_then(Value::as_str).unwrap_or("");
        let text = |key: &str| request.get(key).and_then(Value::as_str);
        match op {
            "start" => {
                if let Some(starting) = self.take_starting() {
                    starting.started();
                }
                json!({"ok": true, "context": self.context})
            }
            "xcom_pull" => self.xcom_pull(request).await,
            "xcom_push" => {
                let Some(key) = text("key") else {
                    return refused("xcom_push needs a string `key`");
                };
                let value = request.get("value").cloned().unwrap_or(Value::Null);
                self.with_reported(|r| {
                    r.pushed.retain(|p| p.key != key);
                    r.pushed.push(PushedXCom {
                        key: key.to_string(),
                        value,
                    });
                });
                json!({"ok": true})
            }
            "variable_get" => {
                let Some(key) = text("key") else {
                    return refused("variable_get needs a string `key`");
                };
                match self.execution.variables().await {
                    Ok(variables) => match variables.into_iter().find(|(k, _)| k == key) {
                        Some((_, value)) => json!({"ok": true, "found": true, "value": value}),
                        None => json!({"ok": true, "found": false, "value": null}),
                    },
                    Err(e) => refused(e.to_string()),
                }
            }
            "variable_set" => {
                let (Some(key), Some(value)) = (text("key"), text("value")) else {
                    return refused("variable_set needs a string `key` and `value`");
                };
                match self.execution.set_variable(key, value).await {
                    Ok(()) => json!({"ok": true}),
                    Err(e) => refused(e.to_string()),
                }
            }
            "connection_get" => {
                let Some(conn_id) = text("conn_id") else {
                    return refused("connection_get needs a string `conn_id`");
                };
                match crate::secrets::template_connections(self.execution.as_ref()).await {
                    Ok(connections) => match connections.get(conn_id) {
                        Some(c) => json!({"ok": true, "found": true, "connection": {
                            "conn_id": c.conn_id, "conn_type": c.conn_type, "host": c.host,
                            "schema": c.schema, "login": c.login, "password": c.password,
                            "port": c.port, "extra": c.extra,
                        }}),
                        None => json!({"ok": true, "found": false, "connection": null}),
                    },
                    Err(e) => refused(e.to_string()),
                }
            }
            "finish" => match read_finish(request) {
                Ok(finish) => {
                    self.with_reported(|r| r.finish = Some(finish));
                    json!({"ok": true})
                }
                Err(message) => refused(message),
            },
            other => refused(format!("unknown op {other:?}")),
        }
    }

    fn take_starting(&self) -> Option<Starting> {
        let mut starting = None;
        self.with_reported(|r| starting = r.starting.take());
        starting
    }

    fn with_reported(&self, change: impl FnOnce(&mut Reported)) {
        let mut reported = match self.reported.lock() {
            Ok(reported) => reported,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut reported);
    }

    /// XComs of this run: the stored ones, and what this try pushed so far (stored only
    /// when it finishes).
    async fn xcom_pull(&self, request: &Value) -> Value {
        let run = &self.claimed.dag_run;
        if let Some(dag_id) = request.get("dag_id").and_then(Value::as_str) {
            if dag_id != run.dag_id {
                return refused("xcom_pull from another DAG is not supported yet");
            }
        }
        if let Some(run_id) = request.get("run_id").and_then(Value::as_str) {
            if run_id != run.run_id {
                return refused("xcom_pull from another run is not supported yet");
            }
        }
        let key = request
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("return_value");
        let task_ids: Vec<&str> = match request.get("task_ids") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => return refused("xcom_pull needs `task_ids`: a task id or a list of them"),
        };
        // `map_indexes` names instances: one value per task and index, in that order.
        let map_indexes: Option<Vec<i64>> = match request.get("map_indexes") {
            None | Some(Value::Null) => None,
            Some(Value::Number(one)) => one.as_i64().map(|i| vec![i]),
            Some(Value::Array(many)) => many.iter().map(Value::as_i64).collect(),
            Some(_) => None,
        };
        if map_indexes.is_none() && request.get("map_indexes").is_some_and(|m| !m.is_null()) {
            return refused("xcom_pull's `map_indexes` is a map index or a list of them");
        }
        let stored = match self.execution.xcoms_for_run(run.id).await {
            Ok(stored) if map_indexes.is_some() => stored,
            Ok(stored) => XCom::as_seen_downstream(stored),
            Err(e) => return refused(e.to_string()),
        };
        let own = self.claimed.ti.task_id.as_str();
        let pushed: Vec<PushedXCom> = match self.reported.lock() {
            Ok(r) => r.pushed.clone(),
            Err(poisoned) => poisoned.into_inner().pushed.clone(),
        };
        let own_index = self.claimed.ti.map_index;
        let wanted: Vec<(&str, Option<i64>)> = match &map_indexes {
            None => task_ids.iter().map(|task_id| (*task_id, None)).collect(),
            Some(indexes) => task_ids
                .iter()
                .flat_map(|task_id| indexes.iter().map(move |index| (*task_id, Some(*index))))
                .collect(),
        };
        let values: Vec<Value> = wanted
            .into_iter()
            .map(|(task_id, index)| {
                let mine = (task_id == own && index.is_none_or(|i| i == own_index))
                    .then(|| pushed.iter().find(|p| p.key == key))
                    .flatten()
                    .map(|p| p.value.clone());
                mine.or_else(|| {
                    stored
                        .iter()
                        .find(|x| {
                            x.task_id == task_id
                                && x.key == key
                                && index.is_none_or(|i| i == x.map_index)
                        })
                        .map(|x| x.value.clone())
                })
                .unwrap_or(Value::Null)
            })
            .collect();
        json!({"ok": true, "values": values})
    }
}

fn read_finish(request: &Value) -> Result<Finish, String> {
    let state = match request.get("state").and_then(Value::as_str) {
        Some("success") => FinishState::Success,
        Some("skipped") => FinishState::Skipped,
        Some("failed") => FinishState::Failed,
        other => {
            return Err(format!(
                "finish needs `state`: success, skipped or failed (got {other:?})"
            ))
        }
    };
    let skip = match request.get("skip") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("finish `skip` must list task ids")?,
        Some(_) => return Err("finish `skip` must list task ids".into()),
    };
    Ok(Finish {
        state,
        retry: request
            .get("retry")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        error: request
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string),
        skip,
        return_value: request
            .get("return_value")
            .cloned()
            .filter(|v| !v.is_null()),
        rendered: request.get("rendered").and_then(Value::as_object).cloned(),
        sensor_done: request
            .get("sensor_done")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The `start` answer's context (what templates get, as JSON).
pub(super) fn context_json(
    claimed: &ClaimedTask,
    dag: &Dag,
    ctx: &TemplateContext,
    dag_file: &Path,
    dag_folder: Option<&Path>,
) -> Value {
    let run = &claimed.dag_run;
    let logical = ctx.logical_date;
    let conf = Value::Object(ctx.conf.clone());
    let params: Map<String, Value> = ctx.params();
    let upstream: Vec<&str> = dag
        .task(&claimed.ti.task_id)
        .map(|t| t.dependencies.iter().map(String::as_str).collect())
        .unwrap_or_default();
    json!({
        "dag_file": dag_file.display().to_string(),
        "dag_folder": dag_folder.map(|folder| folder.display().to_string()),
        "dag_id": ctx.dag_id,
        "task_id": ctx.task_id,
        "run_id": ctx.run_id,
        "try_number": ctx.try_number,
        "map_index": claimed.ti.map_index,
        "logical_date": iso(logical),
        "data_interval_start": iso(ctx.data_interval_start),
        "data_interval_end": iso(ctx.data_interval_end),
        "ds": logical.format("%Y-%m-%d").to_string(),
        "ds_nodash": logical.format("%Y%m%d").to_string(),
        "ts": iso(logical),
        "run_type": ctx.run_type,
        "params": params,
        "conf": conf,
        "dag_run": {
            "run_id": run.run_id,
            "run_type": ctx.run_type,
            "conf": conf,
            "logical_date": iso(logical),
            "start_date": run.start_date.map(iso),
        },
        "upstream": upstream,
        "triggering_asset_events": ctx.triggering_asset_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use updraft_store::conformance::fixture::{
        claim_one, create, new_run, publish, queue, queued_run, task, ti, transition,
    };
    use updraft_store::{Store, StoreExecution, XCom};
    use updraft_store_sqlite::SqliteStore;

    /// The child's end of the socket, as the SDK uses it: one request, one answer.
    struct Child {
        lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        write: tokio::net::unix::OwnedWriteHalf,
    }

    impl Child {
        async fn ask(&mut self, request: Value) -> Value {
            let mut out = request.to_string().into_bytes();
            out.push(b'\n');
            self.write.write_all(&out).await.unwrap();
            let line = self.lines.next_line().await.unwrap().expect("an answer");
            serde_json::from_str(&line).unwrap()
        }
    }

    #[tokio::test]
    async fn the_socket_serves_the_protocol_and_keeps_what_the_child_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).unwrap());
        let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
        let claimed = claim_one(&*store, "w").await;
        let other = if claimed.ti.task_id == "a" { "b" } else { "a" };
        store
            .put_xcom(
                updraft_store::XComKey {
                    dag_id: "d".into(),
                    run_id: "r".into(),
                    task_id: other.into(),
                    map_index: -1,
                    key: "return_value".into(),
                },
                json!({"n": 1}),
                Utc::now(),
            )
            .await
            .unwrap();
        store.set_variable("v", "value").await.unwrap();
        let execution: Arc<dyn TaskExecution> = Arc::new(StoreExecution(store.clone()));
        let try_dir = tempfile::tempdir().unwrap();
        let socket = try_dir.path().join("s.sock");
        let supervisor = Supervisor::start(
            &socket,
            try_dir,
            json!({"dag_id": "d"}),
            execution,
            claimed.clone(),
        )
        .unwrap();

        let stream = UnixStream::connect(&socket).await.unwrap();
        let (read, write) = stream.into_split();
        let mut child = Child {
            lines: BufReader::new(read).lines(),
            write,
        };
        let own = claimed.ti.task_id.clone();
        assert_eq!(
            child.ask(json!({"op": "start"})).await,
            json!({"ok": true, "context": {"dag_id": "d"}})
        );
        assert_eq!(
            child
                .ask(json!({"op": "xcom_push", "key": "k", "value": [1, 2]}))
                .await,
            json!({"ok": true})
        );
        // Stored XComs, this try's own pushes (not stored yet), and nulls for the rest.
        let pulled = child
            .ask(json!({"op": "xcom_pull", "task_ids": [other, "nope"], "key": null}))
            .await;
        assert_eq!(pulled, json!({"ok": true, "values": [{"n": 1}, null]}));
        let pulled = child
            .ask(json!({"op": "xcom_pull", "task_ids": own, "key": "k"}))
            .await;
        assert_eq!(pulled, json!({"ok": true, "values": [[1, 2]]}));
        let refused = child
            .ask(json!({"op": "xcom_pull", "task_ids": [other], "run_id": "elsewhere"}))
            .await;
        assert_eq!(refused["ok"], false, "{refused}");
        assert_eq!(
            child.ask(json!({"op": "variable_get", "key": "v"})).await,
            json!({"ok": true, "found": true, "value": "value"})
        );
        assert_eq!(
            child
                .ask(json!({"op": "variable_set", "key": "w", "value": "new"}))
                .await,
            json!({"ok": true})
        );
        assert_eq!(
            store.get_variable("w").await.unwrap().as_deref(),
            Some("new")
        );
        assert_eq!(
            child
                .ask(json!({"op": "connection_get", "conn_id": "missing"}))
                .await["found"],
            false
        );
        let unknown = child.ask(json!({"op": "launch_rockets"})).await;
        assert_eq!(unknown["ok"], false, "{unknown}");
        let bad = child.ask(json!({"op": "finish", "state": "maybe"})).await;
        assert_eq!(bad["ok"], false, "{bad}");
        assert_eq!(
            child
                .ask(json!({"op": "finish", "state": "failed", "retry": false,
                       "error": "AirflowFailException: no", "skip": [other]}))
                .await,
            json!({"ok": true})
        );

        let (finish, pushed) = supervisor.finish();
        assert_eq!(
            finish,
            Some(Finish {
                state: FinishState::Failed,
                retry: false,
                error: Some("AirflowFailException: no".into()),
                skip: vec![other.to_string()],
                return_value: None,
                rendered: None,
                sensor_done: true,
            })
        );
        assert_eq!(
            pushed,
            vec![PushedXCom {
                key: "k".into(),
                value: json!([1, 2]),
            }]
        );
        // Nothing was stored by the pushes themselves: they go with the finish report.
        assert_eq!(
            store.xcoms_for_run(run.id).await.unwrap(),
            vec![XCom {
                task_id: other.into(),
                map_index: -1,
                key: "return_value".into(),
                value: json!({"n": 1}),
            }]
        );
    }

    #[tokio::test]
    async fn a_pull_names_mapped_instances_or_gets_all_of_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).unwrap());
        publish(&*store, &["d"]).await;
        let run = create(
            &*store,
            new_run("d", "r", vec![task("a"), task("u"), task("m")]),
        )
        .await;
        let placeholder = ti(&*store, run.id, "m").await;
        let expansion = updraft_store::Expansion {
            ti_id: placeholder.id,
            count: 2,
        };
        let decide = transition(&placeholder, updraft_model::TaskState::Scheduled);
        store
            .apply_plan(vec![decide], vec![expansion])
            .await
            .unwrap();
        queue(&*store, &ti(&*store, run.id, "a").await).await;
        let claimed = claim_one(&*store, "w").await;
        for (task_id, map_index, value) in [("m", 1, "one"), ("m", 0, "zero"), ("u", -1, "u")] {
            let key = updraft_store::XComKey {
                dag_id: "d".into(),
                run_id: "r".into(),
                task_id: task_id.into(),
                map_index,
                key: "return_value".into(),
            };
            store.put_xcom(key, json!(value), Utc::now()).await.unwrap();
        }
        let execution: Arc<dyn TaskExecution> = Arc::new(StoreExecution(store.clone()));
        let try_dir = tempfile::tempdir().unwrap();
        let socket = try_dir.path().join("s.sock");
        let _supervisor =
            Supervisor::start(&socket, try_dir, json!({}), execution, claimed).unwrap();
        let (read, write) = UnixStream::connect(&socket).await.unwrap().into_split();
        let mut child = Child {
            lines: BufReader::new(read).lines(),
            write,
        };
        let mut pull = async |task_ids: Value, map_indexes: Value| {
            let answer = child
                .ask(json!({"op": "xcom_pull", "task_ids": task_ids, "map_indexes": map_indexes}))
                .await;
            assert_eq!(answer["ok"], true, "{answer}");
            answer["values"].clone()
        };
        assert_eq!(
            pull(json!(["m", "u"]), Value::Null).await,
            json!([["zero", "one"], "u"])
        );
        assert_eq!(pull(json!(["m"]), json!(1)).await, json!(["one"]));
        assert_eq!(
            pull(json!(["m", "u"]), json!([1, -1])).await,
            json!(["one", null, null, "u"])
        );
        let refused = child
            .ask(json!({"op": "xcom_pull", "task_ids": ["m"], "map_indexes": "first"}))
            .await;
        assert_eq!(refused["ok"], false, "{refused}");
    }

    #[test]
    fn finish_messages_default_to_a_retry_and_no_value() {
        let finish = read_finish(&json!({"state": "success", "return_value": null})).unwrap();
        assert_eq!(finish.state, FinishState::Success);
        assert!(finish.retry);
        assert_eq!(finish.return_value, None);
        assert!(finish.skip.is_empty());
        assert!(
            finish.sensor_done,
            "a finish is done unless a sensor says not"
        );
        let poke = read_finish(&json!({"state": "success", "sensor_done": false})).unwrap();
        assert!(!poke.sensor_done);
        let finish = read_finish(&json!({"state": "skipped"})).unwrap();
        assert_eq!(finish.state, FinishState::Skipped);
        assert!(read_finish(&json!({"state": "success", "skip": [1]})).is_err());
        assert!(read_finish(&json!({})).is_err());
    }
}
