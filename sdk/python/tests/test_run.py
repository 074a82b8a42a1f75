"""`python -m updraft._run` as a real subprocess against a stand-in worker on a Unix socket:
arguments, context, templates, XCom, variables, connections, outcomes."""

import json

from conftest import FakeWorker

FLOW = """
    import logging
    from updraft import DAG, task, PythonOperator, get_current_context
    from updraft import AirflowSkipException, AirflowFailException, Variable, BaseHook

    with DAG("flow", params={"limit": 5}):
        @task
        def extract():
            return {"rows": [1, 2, 3]}

        @task(multiple_outputs=True)
        def split(data):
            return {"count": len(data["rows"]), "total": sum(data["rows"])}

        @task
        def report(count, total, ds=None, ti=None, params=None):
            print(f"report for {ds}: {count} rows")
            logging.getLogger("task").warning("logged by the task")
            return {"count": count, "total": total, "ds": ds, "ti": ti.task_id,
                    "limit": params["limit"]}

        @task
        def everything(**context):
            return sorted(k for k in ("ds", "ti", "dag_run", "params", "logical_date",
                                      "run_id", "task", "dag", "conf", "var") if k in context)

        @task
        def current():
            context = get_current_context()
            return [context["ds_nodash"], context["dag_run"].run_type,
                    context["logical_date"].isoformat(), context["ti"].try_number]

        @task
        def skip_me():
            raise AirflowSkipException("nothing to do")

        @task
        def give_up():
            raise AirflowFailException("bad input")

        @task
        def crash():
            return 1 / 0

        @task
        def unserializable():
            return {1, 2}

        @task
        def nothing():
            print("returns None")

        @task(do_xcom_push=False)
        def not_pushed():
            return 42

        @task
        def variables():
            Variable.set("written", {"a": 1}, serialize_json=True)
            return [Variable.get("plain"), Variable.get("doc", deserialize_json=True),
                    Variable.get("absent", default_var="fallback"),
                    Variable.get("from_env")]

        @task
        def missing_variable():
            return Variable.get("absent")

        @task
        def connection():
            conn = BaseHook.get_connection("db")
            env_conn = BaseHook.get_connection("env_db")
            return [conn.host, conn.port, conn.login, conn.password, conn.extra_dejson,
                    env_conn.conn_type, env_conn.host, env_conn.schema, env_conn.login]

        @task
        def pulls(ti=None):
            ti.xcom_push(key="custom", value=[1, "two"])
            return [ti.xcom_pull(task_ids="extract"), ti.xcom_pull(task_ids=["extract", "none"]),
                    ti.xcom_pull(task_ids="none", default="dflt")]

        def classic(a, b, templates_dict=None, ds_nodash=None, **kwargs):
            return [a, b, templates_dict, ds_nodash, kwargs["params"]["limit"]]

        PythonOperator(task_id="classic", python_callable=classic,
                       op_args=["{{ ds }}"], op_kwargs={"b": "run {{ run_id }}"},
                       templates_dict={"when": "{{ params.limit }}"}, provide_context=True)

        data = extract()
        parts = split(data)
        report(parts["count"], parts["total"])
        everything(); current(); skip_me(); give_up(); crash(); unserializable(); nothing()
        not_pushed(); variables(); missing_variable(); connection(); pulls()
"""


def run(tmp_path, dag_folder, task_id, worker=None, env=None, **context):
    file = dag_folder.path / "flow.py"
    if not file.exists():
        dag_folder.write("flow.py", FLOW)
    worker = worker or FakeWorker(tmp_path)
    code, finish, log = worker.run(file, "flow", task_id, env=env, **context)
    return code, finish, log, worker


def test_return_value_is_the_xcom(tmp_path, dag_folder):
    code, finish, log, _ = run(tmp_path, dag_folder, "extract")
    assert code == 0
    assert finish == {"op": "finish", "state": "success", "retry": False, "error": None,
                      "skip": [], "return_value": {"rows": [1, 2, 3]}}


def test_upstream_results_become_arguments_and_multiple_outputs_push_each_key(tmp_path,
                                                                              dag_folder):
    worker = FakeWorker(tmp_path, xcoms={("extract", "return_value"): {"rows": [4, 5]}})
    code, finish, _, worker = run(tmp_path, dag_folder, "split", worker)
    assert code == 0
    assert finish["return_value"] == {"count": 2, "total": 9}
    assert worker.pushed == {"count": 2, "total": 9}


def test_upstream_results_sent_with_the_context_cost_no_pull(tmp_path, dag_folder):
    worker = FakeWorker(tmp_path)
    code, finish, _, worker = run(
        tmp_path, dag_folder, "split", worker,
        upstream=["extract"], upstream_xcoms={"extract": {"return_value": {"rows": [4, 5]}}})
    assert code == 0
    assert finish["return_value"] == {"count": 2, "total": 9}
    assert [r["op"] for r in worker.requests] == ["start", "xcom_push", "xcom_push", "finish"]


def test_context_kwargs_and_task_output_reach_the_log(tmp_path, dag_folder):
    worker = FakeWorker(tmp_path, xcoms={("split", "count"): 2, ("split", "total"): 9})
    code, finish, log, _ = run(tmp_path, dag_folder, "report", worker,
                               params={"limit": 7})
    assert code == 0, log
    assert finish["return_value"] == {"count": 2, "total": 9, "ds": "2024-03-01",
                                      "ti": "report", "limit": 7}
    assert "report for 2024-03-01: 2 rows" in log
    assert "logged by the task" in log


def test_var_keyword_receives_the_whole_context(tmp_path, dag_folder):
    _, finish, _, _ = run(tmp_path, dag_folder, "everything")
    assert finish["return_value"] == sorted(
        ["ds", "ti", "dag_run", "params", "logical_date", "run_id", "task", "dag", "conf",
         "var"])


def test_get_current_context(tmp_path, dag_folder):
    _, finish, _, _ = run(tmp_path, dag_folder, "current", try_number=2)
    assert finish["return_value"] == ["20240301", "scheduled", "2024-03-01T00:00:00+00:00", 2]


def test_exceptions_decide_state_and_retry(tmp_path, dag_folder):
    code, finish, log, _ = run(tmp_path, dag_folder, "skip_me")
    assert (code, finish["state"], finish["error"]) == (0, "skipped", None)
    assert "nothing to do" in log
    code, finish, _, _ = run(tmp_path, dag_folder, "give_up")
    assert (code, finish["state"], finish["retry"]) == (1, "failed", False)
    assert finish["error"] == "AirflowFailException: bad input"
    code, finish, log, _ = run(tmp_path, dag_folder, "crash")
    assert (code, finish["state"], finish["retry"]) == (1, "failed", True)
    assert finish["error"] == "ZeroDivisionError: division by zero"
    assert "Traceback" in log and "return 1 / 0" in log


def test_a_result_json_cannot_hold_fails_naming_its_type(tmp_path, dag_folder):
    code, finish, _, _ = run(tmp_path, dag_folder, "unserializable")
    assert code == 1
    assert finish["state"] == "failed"
    assert finish["error"].startswith("TypeError: Object of type set is not JSON serializable")
    assert "return_value" not in finish


def test_none_and_do_xcom_push_false_store_nothing(tmp_path, dag_folder):
    for task_id in ("nothing", "not_pushed"):
        code, finish, _, _ = run(tmp_path, dag_folder, task_id)
        assert code == 0 and finish["state"] == "success"
        assert "return_value" not in finish


def test_variables_read_write_default_and_environment(tmp_path, dag_folder):
    worker = FakeWorker(tmp_path, variables={"plain": "text", "doc": '{"k": [1]}'})
    _, finish, _, worker = run(tmp_path, dag_folder, "variables", worker,
                               env={"AIRFLOW_VAR_FROM_ENV": "env value"})
    assert finish["return_value"] == ["text", {"k": [1]}, "fallback", "env value"]
    assert json.loads(worker.variables["written"]) == {"a": 1}
    _, finish, _, _ = run(tmp_path, dag_folder, "missing_variable")
    assert finish["error"] == "KeyError: 'Variable absent does not exist'"


def test_connections_from_the_worker_and_the_environment(tmp_path, dag_folder):
    worker = FakeWorker(tmp_path, connections={"db": {
        "conn_id": "db", "conn_type": "postgres", "host": "db.local", "schema": "app",
        "login": "me", "password": "secret", "port": 5432, "extra": '{"sslmode": "require"}',
    }})
    _, finish, log, _ = run(tmp_path, dag_folder, "connection", worker,
                            env={"AIRFLOW_CONN_ENV_DB": "mysql://u:p%40ss@h.example:3306/sch"})
    assert finish["return_value"] == ["db.local", 5432, "me", "secret", {"sslmode": "require"},
                                      "mysql", "h.example", "sch", "u"], log


def test_xcom_push_and_pull_from_the_task_instance(tmp_path, dag_folder):
    worker = FakeWorker(tmp_path, xcoms={("extract", "return_value"): [1]})
    _, finish, _, worker = run(tmp_path, dag_folder, "pulls", worker)
    assert finish["return_value"] == [[1], [[1], None], "dflt"]
    assert worker.pushed["custom"] == [1, "two"]


def test_classic_operator_renders_templated_arguments(tmp_path, dag_folder):
    code, finish, log, _ = run(tmp_path, dag_folder, "classic")
    assert code == 0, log
    assert finish["return_value"] == [
        "2024-03-01", "run scheduled__2024-03-01T00:00:00+00:00", {"when": "5"}, "20240301", 5]


def test_unknown_task_fails_the_try(tmp_path, dag_folder):
    code, finish, _, _ = run(tmp_path, dag_folder, "not_there")
    assert code == 1
    assert finish["error"] == "TaskNotFound: Task not_there not found"


def test_without_a_worker_the_runner_exits_1(tmp_path, dag_folder):
    import os
    import subprocess
    import sys

    from conftest import SDK_SRC

    done = subprocess.run([sys.executable, "-m", "updraft._run"], capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(SDK_SRC),
                                   UPDRAFT_SUPERVISOR=str(tmp_path / "nobody.sock")))
    assert done.returncode == 1
    assert b"cannot start the task" in done.stderr


def test_a_thread_left_running_does_not_keep_the_try_alive(tmp_path, dag_folder):
    file = dag_folder.write("threads.py", """
        import threading, time
        from updraft import DAG, task

        with DAG("threads"):
            @task
            def spawn():
                threading.Thread(target=time.sleep, args=(600,)).start()
                return "started"

            spawn()
    """)
    code, finish, _ = FakeWorker(tmp_path).run(file, "threads", "spawn")
    assert (code, finish["return_value"]) == (0, "started")


def test_render_only_reports_the_rendered_fields_without_running(tmp_path, dag_folder):
    code, finish, log, _ = run(tmp_path, dag_folder, "classic", render_only=True)
    assert code == 0
    assert finish["state"] == "success" and "return_value" not in finish
    assert finish["rendered"] == {
        "templates_dict": {"when": "5"}, "op_args": ["2024-03-01"],
        "op_kwargs": {"b": "run scheduled__2024-03-01T00:00:00+00:00"},
    }
    assert "# op_args\n['2024-03-01']" in log


def test_xcom_pull_of_any_key_is_refused_by_name(tmp_path, dag_folder):
    file = dag_folder.write("anykey.py", """
        from updraft import DAG, task

        with DAG("anykey"):
            @task
            def pull(ti=None):
                return ti.xcom_pull(task_ids="x", key=None)

            pull()
    """)
    _, finish, _ = FakeWorker(tmp_path).run(file, "anykey", "pull")
    assert finish["error"] == ("NotSupportedByUpdraft: xcom_pull(key=None) (the latest XCom of "
                               "any key) is not supported yet by updraft (name the key)")
