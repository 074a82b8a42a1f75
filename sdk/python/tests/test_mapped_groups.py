"""Mapped task groups (`@task_group` with `.expand()`/`.partial().expand()`/
`.expand_kwargs()`) and `XComArg.map`/`.zip`/`.concat`: as written in the DAG document, and
an instance run with its own arguments."""

import pytest

from conftest import FakeWorker, tasks_by_id

GROUPS = """
    from updraft import DAG, task, task_group, EmptyOperator, PythonOperator

    with DAG("groups"):
        @task
        def numbers():
            return [1, 2, 3]

        @task_group
        def op(num, base):
            @task
            def add(num, base):
                return num + base

            @task
            def double(value, ti=None):
                return [value * 2, ti.map_index]

            doubled = double(add(num, base))
            doubled >> EmptyOperator(task_id="done")
            return doubled

        @task
        def total(values):
            return values

        total(op.partial(base=10).expand(num=numbers()))

        @task_group
        def pairs(left, right):
            PythonOperator(task_id="show", python_callable=lambda a, b: f"{a}-{b}",
                           op_args=[left, right])

        pairs.expand_kwargs([{"left": "a", "right": "b"}, {"left": "c", "right": "d"}])
"""


def test_every_task_of_a_mapped_group_carries_the_groups_expansion(dag_folder):
    dag_folder.write("groups.py", GROUPS)
    tasks = tasks_by_id(dag_folder.dag("groups.py"))
    for task_id in ("op.add", "op.double", "op.done"):
        assert tasks[task_id]["expand"] == {"num": {"xcom": "numbers"}}, task_id
        assert tasks[task_id]["map_group"] == "op"
    # The values mapped over come before the group's first task, as in Airflow.
    assert tasks["op.add"]["dependencies"] == ["numbers"]
    assert tasks["op.double"]["dependencies"] == ["op.add"]
    assert tasks["op.done"]["operator"] == "empty"
    assert tasks["total"]["dependencies"] == ["op.double"]
    assert "map_group" not in tasks["total"]
    assert tasks["pairs.show"]["expand_kwargs"] == [
        {"left": "a", "right": "b"}, {"left": "c", "right": "d"}]
    assert tasks["pairs.show"]["map_group"] == "pairs"


def test_a_group_task_gets_the_groups_arguments_and_its_own_index_upstream(tmp_path,
                                                                         dag_folder):
    file = dag_folder.write("groups.py", GROUPS)
    worker = FakeWorker(tmp_path)
    code, finish, log = worker.run(file, "groups", "op.add", map_index=1,
                                   map_kwargs={"num": 2})
    assert code == 0, log
    assert finish["return_value"] == 12
    # The whole list is what a task outside the group would see; inside, index 1's value.
    worker = FakeWorker(tmp_path, xcoms={("op.add", "return_value"): [11, 12, 13]})
    code, finish, log = worker.run(
        file, "groups", "op.double", map_index=1,
        map_kwargs={"num": 2, "__same_index_xcoms__": {"op.add": {"return_value": 12}}})
    assert code == 0, log
    assert finish["return_value"] == [24, 1]
    code, finish, log = worker.run(file, "groups", "pairs.show", map_index=1,
                                   map_kwargs={"left": "c", "right": "d"})
    assert code == 0, log
    assert finish["return_value"] == "c-d"


@pytest.mark.parametrize("body, message", [
    ("""
        @task_group
        def g(x):
            @task
            def t(y):
                return y
            t.expand(y=[1, 2])
        g.expand(x=[1])
     """, "A mapped task inside a mapped task group is not supported yet by updraft"),
    ("""
        @task_group
        def g(x):
            BashOperator(task_id="b", bash_command="echo $X", env={"X": x})
        g.expand(x=["1"])
     """, "the mapped argument 'x' of task group 'g' has no value before it runs"),
    ("""
        @task_group
        def g(x):
            EmptyOperator(task_id="e")
        g.partial(x=1).expand(x=[2])
     """, "'x' is given to both partial() and expand()"),
    ("""
        @task
        def nums():
            return [1]
        @task
        def double(n):
            return n * 2
        nums().map(double)
     """, "map() argument must be a plain function, not a @task operator"),
])
def test_mapped_group_mistakes_fail_where_they_are_written(dag_folder, body, message):
    import textwrap

    dag_folder.write("bad.py", "from updraft import DAG, task, task_group, BashOperator, "
                     "EmptyOperator\n\nwith DAG('bad'):\n"
                     + textwrap.indent(textwrap.dedent(body), "    "))
    answer = dag_folder.parse("bad.py")
    assert answer["error"] is not None and message in answer["error"]["message"], answer


TRANSFORMS = """
    from updraft import DAG, task, BashOperator

    def tenfold(n):
        return n * 10

    with DAG("transforms"):
        @task
        def numbers():
            return [1, 2, 3]

        @task
        def letters():
            return {"a": 1, "b": 2}

        @task
        def show(x):
            return x

        nums = numbers()
        more = letters()
        show.override(task_id="mapped").expand(x=nums.map(tenfold))
        show.override(task_id="zipped").expand(x=nums.zip(more))
        show.override(task_id="longest").expand(x=nums.zip(more, fillvalue=None))
        show.override(task_id="chained").expand(x=nums.concat(more))
        show.override(task_id="whole")(nums.map(tenfold))
        BashOperator.partial(task_id="cmds").expand_kwargs(
            nums.map(lambda n: {"bash_command": f"echo {n}"}))
"""


def test_derived_values_are_written_as_updraft_combines_them(dag_folder):
    dag_folder.write("transforms.py", TRANSFORMS)
    tasks = tasks_by_id(dag_folder.dag("transforms.py"))
    assert tasks["mapped"]["expand"] == {
        "x": {"map": {"xcom": "numbers"}, "callables": ["tenfold"]}}
    assert tasks["zipped"]["expand"] == {"x": {"zip": [{"xcom": "numbers"},
                                                       {"xcom": "letters"}]}}
    assert tasks["longest"]["expand"]["x"]["fillvalue"] is None
    assert tasks["chained"]["expand"] == {"x": {"concat": [{"xcom": "numbers"},
                                                           {"xcom": "letters"}]}}
    assert sorted(tasks["zipped"]["dependencies"]) == ["letters", "numbers"]
    assert "expand" not in tasks["whole"] and tasks["whole"]["dependencies"] == ["numbers"]
    # A mapped bash command that Python computes makes it a Python task.
    assert tasks["cmds"]["operator"] == "python"
    assert tasks["cmds"]["expand_kwargs"]["map"] == {"xcom": "numbers"}


def test_map_runs_where_the_value_is_resolved(tmp_path, dag_folder):
    file = dag_folder.write("transforms.py", TRANSFORMS)
    worker = FakeWorker(tmp_path, xcoms={("numbers", "return_value"): [1, 2, 3],
                                         ("letters", "return_value"): {"a": 1, "b": 2}})
    cases = [
        ("mapped", {"x": 2}, 20),
        ("zipped", {"x": [2, ["b", 2]]}, [2, ["b", 2]]),
        ("chained", {"x": ["a", 1]}, ["a", 1]),
        ("cmds", {"__map_item__": 3}, "3"),
    ]
    for task_id, map_kwargs, expected in cases:
        code, finish, log = worker.run(file, "transforms", task_id, map_index=0,
                                       map_kwargs=map_kwargs)
        assert code == 0, log
        assert finish["return_value"] == expected, task_id
    # Passed whole, the mapped values are computed in the task that takes them.
    code, finish, log = worker.run(file, "transforms", "whole")
    assert code == 0, log
    assert finish["return_value"] == [10, 20, 30]
