"""The graph a DAG file builds: >>, <<, lists, chain, cross_downstream, Label, task groups and
TaskFlow arguments all end up as each task's `dependencies`."""

from conftest import tasks_by_id


def dependencies(document):
    return {t["task_id"]: t.get("dependencies", []) for t in document["tasks"]}


def test_shift_operators_lists_chain_and_cross_downstream(dag_folder):
    dag_folder.write("graph.py", """
        from updraft import DAG, EmptyOperator, chain, cross_downstream, Label

        with DAG("graph"):
            a, b, c, d, e, f, g, h, i, j = [EmptyOperator(task_id=n) for n in "abcdefghij"]
            a >> [b, c]
            [b, c] >> d
            e << d
            chain(e, [f, g], [h, i])
            cross_downstream([h, i], [j])
            k = EmptyOperator(task_id="k")
            l = EmptyOperator(task_id="l")
            j >> Label("when ready") >> k
            l << Label("backwards") << k
    """)
    assert dependencies(dag_folder.dag("graph.py")) == {
        "a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"], "f": ["e"], "g": ["e"],
        "h": ["f"], "i": ["g"], "j": ["h", "i"], "k": ["j"], "l": ["k"],
    }


def test_task_groups_prefix_ids_and_link_by_roots_and_leaves(dag_folder):
    dag_folder.write("groups.py", """
        from updraft import DAG, EmptyOperator, TaskGroup, task_group, task

        with DAG("groups"):
            start = EmptyOperator(task_id="start")
            with TaskGroup("outer") as outer:
                first = EmptyOperator(task_id="first")
                with TaskGroup("inner") as inner:
                    x = EmptyOperator(task_id="x")
                    y = EmptyOperator(task_id="y")
                first >> inner
            with TaskGroup("flat", prefix_group_id=False) as flat:
                EmptyOperator(task_id="unprefixed")
            start >> outer >> flat

            @task_group
            def section():
                @task
                def one():
                    return 1

                @task
                def two(value):
                    return value

                two(one())

            flat >> section() >> EmptyOperator(task_id="end")
            section()
    """)
    doc = dag_folder.dag("groups.py")
    assert dependencies(doc) == {
        "start": [], "outer.first": ["start"], "outer.inner.x": ["outer.first"],
        "outer.inner.y": ["outer.first"], "unprefixed": ["outer.inner.x", "outer.inner.y"],
        "section.one": ["unprefixed"], "section.two": ["section.one"],
        "end": ["section.two"], "section__1.one": [], "section__1.two": ["section__1.one"],
    }
    groups = {t["task_id"]: t.get("task_group") for t in doc["tasks"]}
    assert groups["outer.inner.x"] == "outer.inner"
    assert groups["unprefixed"] == "flat"
    assert groups["start"] is None


def test_taskflow_arguments_make_dependencies_and_reuse_gets_suffixes(dag_folder):
    dag_folder.write("flow.py", """
        from updraft import dag, task, BashOperator, PythonOperator

        @dag
        def flow():
            @task(multiple_outputs=True)
            def extract():
                return {"rows": 3, "name": "x"}

            @task
            def load(rows, name=None, extra=None):
                return rows

            data = extract()
            load(data["rows"], name=data["name"])
            load(1, extra={"nested": [data["rows"]]})
            load.override(task_id="custom", retries=4)(5)
            PythonOperator(task_id="classic", python_callable=print, op_args=[data["name"]])
            BashOperator(task_id="after", bash_command="echo hi") << load(2)

        flow()
    """)
    doc = dag_folder.dag("flow.py")
    assert dependencies(doc) == {
        "extract": [], "load": ["extract"], "load__1": ["extract"], "custom": [],
        "classic": ["extract"], "load__2": [], "after": ["load__2"],
    }
    assert tasks_by_id(doc)["custom"]["retries"] == 4


def test_wrong_taskflow_call_fails_where_it_is_written(dag_folder):
    dag_folder.write("badcall.py", """
        from updraft import DAG, task

        @task
        def needs(a, b, ti=None):
            return a

        with DAG("badcall"):
            needs(1)
    """)
    error = dag_folder.parse("badcall.py")["error"]
    assert error["message"] == "TypeError: needs(): missing a required argument: 'b'"
    assert error["line"] == 9


def test_xcomarg_in_a_custom_operators_template_field_is_a_dependency(dag_folder):
    dag_folder.write("custom.py", """
        from updraft import DAG, BaseOperator, task

        class Send(BaseOperator):
            template_fields = ("payload",)

            def __init__(self, payload, **kwargs):
                super().__init__(**kwargs)
                self.payload = payload

            def execute(self, context):
                return self.payload

        with DAG("custom"):
            @task
            def build():
                return {"x": 1}

            Send(task_id="send", payload={"body": build()})
    """)
    doc = dag_folder.dag("custom.py")
    assert dependencies(doc) == {"build": [], "send": ["build"]}
    assert tasks_by_id(doc)["send"]["python_callable"] == "Send.execute"
