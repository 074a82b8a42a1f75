"""A DAG file's DAG as the document updraft's loader reads: DAG keys, task keys, params."""

from conftest import tasks_by_id


def test_dag_settings_are_written_in_the_loaders_format(dag_folder):
    dag_folder.write("settings.py", """
        from datetime import datetime, timedelta, timezone
        from updraft import DAG, BashOperator

        with DAG(
            dag_id="settings",
            description="all the keys",
            schedule="*/5 * * * *",
            start_date=datetime(2024, 1, 2, 3, 4, 5),
            end_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
            catchup=True,
            max_active_runs=2,
            max_active_tasks=7,
            tags=["etl", "daily"],
            doc_md="# not stored",
        ):
            BashOperator(task_id="only", bash_command="true")
    """)
    doc = dag_folder.dag("settings.py")
    assert doc == {
        "dag_id": "settings",
        "description": "all the keys",
        "schedule": "*/5 * * * *",
        "start_date": "2024-01-02T03:04:05+00:00",
        "end_date": "2025-01-01T00:00:00+00:00",
        "catchup": True,
        "max_active_runs": 2,
        "max_active_tasks": 7,
        "tags": ["etl", "daily"],
        "tasks": [{"task_id": "only", "operator": "bash", "bash_command": "true",
                   "skip_on_exit_code": [99]}],
    }


def test_schedule_forms(dag_folder):
    dag_folder.write("schedules.py", """
        from datetime import datetime, timedelta
        from updraft import DAG, EmptyOperator

        start = datetime(2024, 1, 1)
        forms = {
            "preset": "@daily",
            "annually": "@annually",
            "once": "@once",
            "interval": timedelta(hours=6),
            "none": None,
        }
        for name, schedule in forms.items():
            with DAG(f"s_{name}", schedule=schedule, start_date=start):
                EmptyOperator(task_id="t")
        with DAG("s_airflow2", schedule_interval="0 6 * * 1-5", start_date=start):
            EmptyOperator(task_id="t")
        with DAG("s_default", start_date=start):
            EmptyOperator(task_id="t")
    """)
    answer = dag_folder.parse("schedules.py")
    assert answer["error"] is None
    schedules = {d["dag_id"]: d.get("schedule") for d in answer["dags"]}
    assert schedules == {
        "s_preset": "@daily", "s_annually": "@yearly", "s_once": "@once",
        "s_interval": 21600, "s_none": None, "s_airflow2": "0 6 * * 1-5", "s_default": None,
    }


def test_start_date_zone_becomes_the_dags_timezone(dag_folder):
    dag_folder.write("zoned.py", """
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from updraft import DAG, EmptyOperator

        with DAG("zoned", schedule="0 9 * * *",
                 start_date=datetime(2024, 7, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))):
            EmptyOperator(task_id="t")
    """)
    doc = dag_folder.dag("zoned.py")
    assert doc["start_date"] == "2024-07-01T00:00:00+02:00"
    assert doc["timezone"] == "Europe/Amsterdam"


def test_start_date_from_default_args_and_days_ago(dag_folder):
    dag_folder.write("defaults.py", """
        from updraft import DAG, EmptyOperator, days_ago

        with DAG("defaults", schedule="@daily", default_args={"start_date": days_ago(2)}):
            EmptyOperator(task_id="t")
    """)
    doc = dag_folder.dag("defaults.py")
    assert doc["start_date"].endswith("T00:00:00+00:00")


def test_task_settings_from_arguments_group_and_dag_default_args(dag_folder):
    dag_folder.write("task_settings.py", """
        from datetime import datetime, timedelta
        from updraft import DAG, BashOperator, TaskGroup, TriggerRule

        default_args = {
            "owner": "data", "retries": 3, "retry_delay": timedelta(minutes=2),
            "email": ["a@example.com"], "depends_on_past": False, "queue": "etl",
        }
        with DAG("task_settings", default_args=default_args):
            BashOperator(
                task_id="all", bash_command="run", retries=1,
                retry_delay=timedelta(seconds=90), retry_exponential_backoff=True,
                max_retry_delay=timedelta(hours=1), execution_timeout=timedelta(minutes=10),
                pool="small", priority_weight=5, env={"A": "1", "N": 2}, cwd="/tmp",
                do_xcom_push=False, trigger_rule=TriggerRule.ALL_DONE, skip_on_exit_code=[3, 4],
            )
            BashOperator(task_id="inherits", bash_command="run", trigger_rule="one_failed")
            with TaskGroup("g", default_args={"retries": 9, "pool": "g_pool"}):
                BashOperator(task_id="in_group", bash_command="run")
    """)
    doc = dag_folder.dag("task_settings.py")
    # Only what updraft stores (owner is Airflow's alone; email goes with each task, for
    # email_on_failure); a neutral depends_on_past is the loader's default.
    assert doc["default_args"] == {"retries": 3, "retry_delay": 120, "queue": "etl"}
    tasks = tasks_by_id(doc)
    assert tasks["all"] == {
        "task_id": "all", "operator": "bash", "bash_command": "run", "retries": 1,
        "retry_delay": 90, "queue": "etl", "env": {"A": "1", "N": "2"}, "cwd": "/tmp",
        "skip_on_exit_code": [3, 4], "retry_exponential_backoff": True,
        "max_retry_delay": 3600, "execution_timeout": 600, "pool": "small",
        "priority_weight": 5, "do_xcom_push": False, "trigger_rule": "all_done",
        "email": ["a@example.com"],
    }
    assert tasks["inherits"]["retries"] == 3
    assert tasks["inherits"]["retry_delay"] == 120
    assert tasks["inherits"]["trigger_rule"] == "one_failed"
    assert tasks["g.in_group"]["retries"] == 9
    assert tasks["g.in_group"]["pool"] == "g_pool"
    assert tasks["g.in_group"]["queue"] == "etl"
    assert tasks["g.in_group"]["task_group"] == "g"


def test_python_tasks_name_their_callable_and_kind(dag_folder):
    dag_folder.write("kinds.py", """
        from updraft import (DAG, task, PythonOperator, BranchPythonOperator,
                             ShortCircuitOperator, LatestOnlyOperator, EmptyOperator,
                             DummyOperator)

        def plain():
            return 1

        with DAG("kinds"):
            PythonOperator(task_id="op", python_callable=plain)
            BranchPythonOperator(task_id="branch_op", python_callable=lambda: "op")
            ShortCircuitOperator(task_id="sc_op", python_callable=plain)
            LatestOnlyOperator(task_id="latest")
            EmptyOperator(task_id="empty")
            DummyOperator(task_id="dummy")

            @task
            def flow():
                return 2

            @task.bash
            def command():
                return "echo hi"

            @task.branch
            def pick():
                return "flow"

            @task.short_circuit
            def check():
                return True

            flow(); command(); pick(); check()
    """)
    tasks = tasks_by_id(dag_folder.dag("kinds.py"))
    kinds = {t: (d["operator"], d.get("python_kind"), d.get("python_callable"))
             for t, d in tasks.items()}
    assert kinds == {
        "op": ("python", "task", "plain"),
        "branch_op": ("python", "branch", "<lambda>"),
        "sc_op": ("python", "short_circuit", "plain"),
        "latest": ("python", "latest_only", "LatestOnlyOperator.execute"),
        "empty": ("empty", None, None),
        "dummy": ("empty", None, None),
        "flow": ("python", "task", "flow"),
        "command": ("python", "bash", "command"),
        "pick": ("python", "branch", "pick"),
        "check": ("python", "short_circuit", "check"),
    }
    assert tasks["op"]["source_line"] == 6  # the file starts with a blank line
    assert "skip_on_exit_code" not in tasks["flow"]


def test_params_become_specs(dag_folder):
    dag_folder.write("params.py", """
        from updraft import DAG, Param, EmptyOperator

        with DAG("params", params={
            "count": Param(3, type="integer", minimum=1, maximum=10, description="how many"),
            "color": Param("red", enum=["red", "green"], title="Color"),
            "day": Param("2024-01-01", type="string", format="date"),
            "needed": Param(type="string", minLength=2),
            "anything": Param(),
            "plain": 5,
            "a_mapping": {"type": "not a spec"},
            "with_section": Param(1, type="integer", section="Advanced"),
        }):
            EmptyOperator(task_id="t")
    """)
    params = dag_folder.dag("params.py")["params"]
    assert params == {
        "count": {"default": 3, "type": "integer", "minimum": 1, "maximum": 10,
                  "description": "how many"},
        "color": {"default": "red", "enum": ["red", "green"], "title": "Color"},
        "day": {"default": "2024-01-01", "type": "string", "format": "date"},
        "needed": {"type": "string", "minLength": 2},
        "anything": {"type": ["string", "number", "integer", "boolean", "array", "object"]},
        "plain": 5,
        "a_mapping": {"type": "object", "default": {"type": "not a spec"}},
        "with_section": {"default": 1, "type": "integer"},
    }


def test_dag_function_arguments_become_params(dag_folder):
    dag_folder.write("dagfn.py", """
        from updraft import dag, task

        @dag(schedule=None, tags=["fn"])
        def from_function(limit=10, name="x"):
            \"\"\"Documented.\"\"\"
            @task
            def show(limit):
                return limit
            show(limit)

        from_function()
    """)
    doc = dag_folder.dag("dagfn.py")
    assert doc["dag_id"] == "from_function"
    assert doc["params"] == {"limit": 10, "name": "x"}
    assert doc["tags"] == ["fn"]


def test_runs_that_depend_on_other_runs_are_written_in_the_loaders_format(dag_folder):
    dag_folder.write("past.py", """
        from datetime import datetime, timedelta
        from updraft import DAG, BashOperator, EmptyOperator, TaskGroup

        with DAG("past", schedule="@daily", start_date=datetime(2024, 1, 1),
                 dagrun_timeout=timedelta(minutes=90), max_consecutive_failed_dag_runs=3,
                 default_args={"depends_on_past": True}):
            BashOperator(task_id="inherits", bash_command="true")
            EmptyOperator(task_id="opts_out", depends_on_past=False)
            EmptyOperator(task_id="waits", wait_for_downstream=True,
                          ignore_first_depends_on_past=False)
            with TaskGroup("g", default_args={"depends_on_past": False}):
                EmptyOperator(task_id="limited", max_active_tis_per_dag=1,
                              max_active_tis_per_dagrun=2)
        with DAG("plain"):
            EmptyOperator(task_id="t", depends_on_past=False, max_active_tis_per_dag=None)
    """)
    docs = {d["dag_id"]: d for d in dag_folder.parse("past.py")["dags"]}
    doc = docs["past"]
    assert doc["dagrun_timeout"] == 5400
    assert doc["max_consecutive_failed_dag_runs"] == 3
    assert doc["default_args"] == {"depends_on_past": True}
    tasks = tasks_by_id(doc)
    assert tasks["inherits"]["depends_on_past"] is True
    # Written although neutral: the loader would otherwise apply the DAG's default_args.
    assert tasks["opts_out"]["depends_on_past"] is False
    assert tasks["g.limited"]["depends_on_past"] is False
    assert tasks["waits"]["wait_for_downstream"] is True
    assert tasks["waits"]["ignore_first_depends_on_past"] is False
    assert tasks["g.limited"]["max_active_tis_per_dag"] == 1
    assert tasks["g.limited"]["max_active_tis_per_dagrun"] == 2
    # Neutral values of a DAG that does not use them are left out.
    assert docs["plain"]["tasks"] == [{"task_id": "t", "operator": "empty"}]
    assert "dagrun_timeout" not in docs["plain"]


def test_bad_run_dependency_settings_fail_with_the_reason(dag_folder):
    cases = {
        "timeout": ("DAG('d', dagrun_timeout=60)",
                    "TypeError: dagrun_timeout must be a datetime.timedelta, not int"),
        "failures": ("DAG('d', max_consecutive_failed_dag_runs=-1)",
                     "ValueError: max_consecutive_failed_dag_runs must be a whole number"),
        "limit": ("DAG('d').__enter__(); EmptyOperator(task_id='t', max_active_tis_per_dag=0)",
                  "ValueError: max_active_tis_per_dag must be a whole number of at least 1"),
    }
    for name, (code, message) in cases.items():
        dag_folder.write(f"{name}.py", "from updraft import DAG, EmptyOperator\n" + code + "\n")
        error = dag_folder.parse(f"{name}.py")["error"]
        assert error is not None and error["message"].startswith(message), (name, error)


def test_unsupported_arguments_are_refused_by_name(dag_folder):
    cases = {
        "mapping": "DAG('d').__enter__(); r = task(task_id='t')(lambda x: x).expand(x=[1]); "
                   "r.map(str).concat(r)",
        "sensor": "from airflow.sensors.bash import BashSensor",
        "param_key": "Param(1, pattern='x')",
        "continuous": "DAG('d', schedule='@continuous', start_date=datetime(2024, 1, 1))",
    }
    expected = {
        "mapping": "concat() of an XComArg.map() is not supported yet by updraft",
        "sensor": "BashSensor is not supported yet by updraft",
        "param_key": "Param schema key 'pattern' is not supported yet by updraft",
        "continuous": "The @continuous schedule is not supported yet by updraft",
    }
    for name, code in cases.items():
        dag_folder.write(f"{name}.py", "from datetime import datetime, timedelta\n"
                         "import airflow\n"
                         "from updraft import DAG, Param, task, EmptyOperator\n" + code + "\n")
        error = dag_folder.parse(f"{name}.py")["error"]
        assert error is not None, name
        assert error["message"].startswith("NotSupportedByUpdraft: " + expected[name]), error


def test_invalid_ids_and_settings_fail_with_the_reason(dag_folder):
    cases = {
        "bad_id": ("EmptyOperator(task_id='has space')",
                   "ValueError: The task_id 'has space' has to be made of alphanumeric"),
        "dup": ("EmptyOperator(task_id='a'); EmptyOperator(task_id='a')",
                "DuplicateTaskIdFound: Task id 'a' has already been added to the DAG"),
        "rule": ("EmptyOperator(task_id='a', trigger_rule='sometimes')",
                 "ValueError: unknown trigger_rule 'sometimes'; allowed: all_success"),
        "unknown_arg": ("EmptyOperator(task_id='a', colour='red')",
                        "AirflowException: Invalid arguments were passed to EmptyOperator"),
    }
    for name, (code, message) in cases.items():
        dag_folder.write(f"{name}.py", "from updraft import DAG, EmptyOperator\n"
                         "with DAG('d'):\n    " + code + "\n")
        error = dag_folder.parse(f"{name}.py")["error"]
        assert error is not None and error["message"].startswith(message), (name, error)
        assert error["line"] == 3, error


def test_callables_defined_inside_a_dag_function_are_named_by_their_path(dag_folder):
    dag_folder.write("nested.py", """
        from updraft import dag, task

        @dag
        def outer():
            @task
            def inner():
                return 1
            inner()

        outer()
    """)
    assert dag_folder.dag("nested.py")["tasks"][0]["python_callable"] == "outer.inner"


def test_python_tasks_may_name_another_interpreter(dag_folder):
    dag_folder.write("external.py", """
        from airflow import DAG
        from airflow.decorators import task
        from airflow.operators.python import ExternalPythonOperator, PythonOperator
        from airflow.operators.bash import BashOperator

        with DAG("external", default_args={"python_executable": "/venvs/default/bin/python"}):
            ExternalPythonOperator(task_id="op", python="/venvs/a/bin/python",
                                   python_callable=print)

            @task.external_python(python="/venvs/b/bin/python")
            def decorated():
                return 1

            @task.branch_external_python(python="/venvs/c/bin/python")
            def pick():
                return "op"

            decorated(); pick()
            PythonOperator(task_id="from_defaults", python_callable=print)
            BashOperator(task_id="bash", bash_command="true")
    """)
    tasks = tasks_by_id(dag_folder.dag("external.py"))
    assert {t: (d.get("python_executable"), d.get("python_kind")) for t, d in tasks.items()} == {
        "op": ("/venvs/a/bin/python", "task"),
        "decorated": ("/venvs/b/bin/python", "task"),
        "pick": ("/venvs/c/bin/python", "branch"),
        "from_defaults": ("/venvs/default/bin/python", "task"),
        "bash": (None, None),
    }


def test_settings_assigned_after_creation_are_kept(dag_folder):
    dag_folder.write("assigned.py", """
        from datetime import timedelta
        from updraft import DAG, BashOperator

        with DAG("assigned"):
            t = BashOperator(task_id="t", bash_command="true")
            t.retries = 4
            t.trigger_rule = "all_done"
            t.execution_timeout = timedelta(minutes=1)
            t.doc_md = "documented later"
    """)
    task = dag_folder.dag("assigned.py")["tasks"][0]
    assert (task["retries"], task["trigger_rule"], task["execution_timeout"]) == (4, "all_done",
                                                                               60)


def test_pool_slots_other_than_one_are_refused(dag_folder):
    dag_folder.write("slots.py", """
        from updraft import DAG, EmptyOperator
        with DAG("slots"):
            EmptyOperator(task_id="one", pool_slots=1)
            EmptyOperator(task_id="two", pool_slots=2)
    """)
    error = dag_folder.parse("slots.py")["error"]
    assert error["message"].startswith(
        "NotSupportedByUpdraft: pool_slots other than 1 is not supported yet by updraft")
    assert error["line"] == 5
