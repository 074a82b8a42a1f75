"""Setup and teardown tasks in DAG files: every way Airflow writes them gives the document the
roles and the edges Airflow's graph would have."""

from conftest import tasks_by_id


def roles(doc):
    return {
        task_id: (t.get("setup", False), t.get("teardown", False),
                  t.get("on_failure_fail_dagrun", False), sorted(t.get("dependencies", [])))
        for task_id, t in tasks_by_id(doc).items()
    }


def test_as_setup_and_as_teardown_with_setups(dag_folder):
    dag_folder.write("basic.py", """
        from airflow import DAG
        from airflow.operators.bash import BashOperator

        with DAG(dag_id="basic", schedule=None):
            create = BashOperator(task_id="create", bash_command="echo create")
            query = BashOperator(task_id="query", bash_command="echo query")
            delete = BashOperator(task_id="delete", bash_command="echo delete")
            create >> query >> delete.as_teardown(setups=create, on_failure_fail_dagrun=True)
    """)
    doc = dag_folder.dag("basic.py")
    assert roles(doc) == {
        "create": (True, False, False, []),
        "query": (False, False, False, ["create"]),
        "delete": (False, True, True, ["create", "query"]),
    }
    assert tasks_by_id(doc)["delete"]["trigger_rule"] == "all_done_setup_success"


def test_decorators_and_the_context_manager(dag_folder):
    dag_folder.write("taskflow.py", """
        import pendulum
        from airflow.sdk import DAG, setup, task, teardown

        with DAG(dag_id="taskflow", schedule=None,
                 start_date=pendulum.datetime(2021, 1, 1, tz="UTC")):
            @setup
            def create():
                return "cluster"

            @teardown(on_failure_fail_dagrun=False)
            def delete():
                pass

            @task
            def work_one():
                pass

            @task
            def work_two():
                pass

            @setup
            @task.bash
            def prepare():
                return "echo ready"

            with create() >> delete():
                work_one() >> work_two()
            prepare()
    """)
    doc = dag_folder.dag("taskflow.py")
    assert roles(doc) == {
        "create": (True, False, False, []),
        "delete": (False, True, False, ["create", "work_two"]),
        "work_one": (False, False, False, ["create"]),
        "work_two": (False, False, False, ["work_one"]),
        "prepare": (True, False, False, []),
    }


def test_with_a_teardown_made_by_as_teardown(dag_folder):
    dag_folder.write("block.py", """
        from updraft import DAG, EmptyOperator

        with DAG(dag_id="block", schedule=None):
            create = EmptyOperator(task_id="create")
            delete = EmptyOperator(task_id="delete")
            with delete.as_teardown(setups=create):
                [EmptyOperator(task_id="q1"), EmptyOperator(task_id="q2")] >> EmptyOperator(
                    task_id="after")
    """)
    assert roles(dag_folder.dag("block.py")) == {
        "create": (True, False, False, []),
        "delete": (False, True, False, ["after", "create"]),
        "q1": (False, False, False, ["create"]),
        "q2": (False, False, False, ["create"]),
        "after": (False, False, False, ["q1", "q2"]),
    }


def test_a_groups_teardown_is_not_its_leaf(dag_folder):
    dag_folder.write("group.py", """
        from updraft import DAG, EmptyOperator, TaskGroup

        with DAG(dag_id="group", schedule=None):
            with TaskGroup("g") as g:
                create = EmptyOperator(task_id="create").as_setup()
                work = EmptyOperator(task_id="work")
                create >> work >> EmptyOperator(task_id="delete").as_teardown(setups=create)
            g >> EmptyOperator(task_id="next")
    """)
    assert tasks_by_id(dag_folder.dag("group.py"))["next"]["dependencies"] == ["g.work"]


def test_misuse_is_an_import_error(dag_folder):
    cases = {
        "plain_with.py": ("with EmptyOperator(task_id='a'): pass",
                          "Only setup/teardown tasks can be used as context managers"),
        "fail_run.py": ("EmptyOperator(task_id='a').on_failure_fail_dagrun = True",
                        "because it is not a teardown task"),
        "both.py": ("EmptyOperator(task_id='a').as_setup().as_teardown()",
                    "is a setup; it cannot be a teardown"),
    }
    for name, (statement, message) in cases.items():
        dag_folder.write(name, f"""
            from updraft import DAG, EmptyOperator

            with DAG(dag_id="{name[:-3]}", schedule=None):
                {statement}
        """)
        answer = dag_folder.parse(name)
        assert answer["error"] is not None and message in answer["error"]["message"], answer
