"""Dynamic task mapping in the SDK: `.partial().expand()`, `.expand_kwargs()` on operators and
`@task`, as written in the DAG document, and a mapped instance run with its own arguments."""

import pytest

from conftest import FakeWorker, tasks_by_id

MAPPED = """
    from updraft import DAG, task, BashOperator, PythonOperator

    with DAG("mapped"):
        @task
        def numbers():
            return [1, 2, 3]

        @task
        def add(x, y):
            return x + y

        @task
        def total(values):
            return sum(values)

        added = add.partial(y=10).expand(x=numbers())
        total(added)
        add.expand(x=[1, 2], y={"a": 1})

        BashOperator.partial(task_id="echo", env={"A": "1"}).expand(
            bash_command=["echo one", "echo two"])
        BashOperator.partial(task_id="per_env", bash_command="echo $N").expand_kwargs(
            [{"env": {"N": "1"}}, {"env": {"N": "2"}}])

        def show(word, times=1):
            return word * times

        PythonOperator.partial(task_id="classic", python_callable=show).expand(
            op_kwargs=[{"word": "a"}, {"word": "b", "times": 2}])
"""


def test_mapped_tasks_are_written_with_their_expansion(dag_folder):
    dag_folder.write("mapped.py", MAPPED)
    tasks = tasks_by_id(dag_folder.dag("mapped.py"))
    assert tasks["add"]["expand"] == {"x": {"xcom": "numbers"}}
    assert tasks["add"]["dependencies"] == ["numbers"]
    assert tasks["total"]["dependencies"] == ["add"]
    assert "expand" not in tasks["total"]
    # A dict is mapped over as its items.
    assert tasks["add__1"]["expand"] == {"x": [1, 2], "y": [["a", 1]]}
    echo = tasks["echo"]
    assert (echo["operator"], echo["env"]) == ("bash", {"A": "1"})
    assert "bash_command" not in echo
    assert echo["expand"] == {"bash_command": ["echo one", "echo two"]}
    per_env = tasks["per_env"]
    assert (per_env["operator"], per_env["bash_command"]) == ("bash", "echo $N")
    assert per_env["expand_kwargs"] == [{"env": {"N": "1"}}, {"env": {"N": "2"}}]
    assert tasks["classic"]["operator"] == "python"
    assert tasks["classic"]["expand"] == {"op_kwargs": [{"word": "a"}, {"word": "b", "times": 2}]}


@pytest.mark.parametrize("statement, message", [
    ("add.expand(z=[1])", "add(): got an unexpected keyword argument 'z'"),
    ("add.expand(x=5, y=[1])", "Cannot map over int for argument 'x'"),
    ("add.partial(x=1).expand(x=[2], y=[1])", "'x' is given to both partial() and expand()"),
    ("add.expand()", "expand() needs at least one argument to map over"),
    ("BashOperator.partial(task_id='b').expand_kwargs(['echo'])",
     "expand_kwargs() item 0 must be a dict of arguments, not str"),
])
def test_mapping_mistakes_fail_where_they_are_written(dag_folder, statement, message):
    dag_folder.write("bad.py", f"""
        from updraft import DAG, task, BashOperator

        with DAG("bad"):
            @task
            def add(x, y):
                return x + y

            {statement}
    """)
    answer = dag_folder.parse("bad.py")
    assert answer["error"] is not None and message in answer["error"]["message"], answer


def test_a_mapped_instance_runs_with_its_own_arguments(tmp_path, dag_folder):
    file = dag_folder.write("mapped.py", MAPPED)
    worker = FakeWorker(tmp_path)
    code, finish, log = worker.run(file, "mapped", "add", map_index=1,
                                   map_kwargs={"x": 2})
    assert code == 0, log
    assert finish["return_value"] == 12
    code, finish, log = worker.run(file, "mapped", "classic", map_index=1,
                                   map_kwargs={"op_kwargs": {"word": "b", "times": 2}})
    assert code == 0, log
    assert finish["return_value"] == "bb"


def test_a_mapped_result_reaches_downstream_as_a_list(tmp_path, dag_folder):
    file = dag_folder.write("mapped.py", MAPPED)
    # The worker hands over a mapped task's results as one list, in map index order.
    worker = FakeWorker(tmp_path, xcoms={("add", "return_value"): [11, 12, 13]})
    code, finish, log = worker.run(file, "mapped", "total")
    assert code == 0, log
    assert finish["return_value"] == 36


def test_map_index_is_in_the_context(tmp_path, dag_folder):
    file = dag_folder.write("where.py", """
        from updraft import DAG, task

        with DAG("where"):
            @task
            def where(x, ti=None):
                return [x, ti.map_index]

            where.expand(x=["a", "b"])
    """)
    worker = FakeWorker(tmp_path)
    code, finish, log = worker.run(file, "where", "where", map_index=1, map_kwargs={"x": "b"})
    assert code == 0, log
    assert finish["return_value"] == ["b", 1]
