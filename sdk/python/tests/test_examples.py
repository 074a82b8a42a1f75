"""The example Python DAGs of the repository (examples/dags/*.py) parse, and their Python
tasks run one after the other through the task protocol with each other's XComs."""

from pathlib import Path

from conftest import FakeWorker, tasks_by_id

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "dags"


def copy_examples(dag_folder):
    for example in EXAMPLES.glob("*.py"):
        dag_folder.write(example.name, example.read_text())


def test_every_example_parses(dag_folder):
    copy_examples(dag_folder)
    found = {}
    for example in sorted(EXAMPLES.glob("*.py")):
        answer = dag_folder.parse(example.name)
        assert answer["error"] is None, (example.name, answer["error"])
        for document in answer["dags"]:
            found[document["dag_id"]] = sorted(tasks_by_id(document))
    assert found == {
        "python_branching": ["choose", "fast_path", "join", "thorough.check",
                             "thorough.process"],
        "taskflow_etl": ["publish", "read_station", "summarise"],
        "tutorial": ["pause", "report_window", "show_date"],
    }


def run_in_order(tmp_path, file, dag_id, task_ids, **context):
    """Runs the tasks in order, each seeing the XComs the earlier ones pushed."""
    xcoms, finishes = {}, {}
    for task_id in task_ids:
        worker = FakeWorker(tmp_path, xcoms=xcoms)
        code, finish, log = worker.run(file, dag_id, task_id, **context)
        assert finish is not None, log
        finishes[task_id] = (code, finish, log)
        for key, value in worker.pushed.items():
            xcoms[(task_id, key)] = value
        if "return_value" in finish:
            xcoms[(task_id, "return_value")] = finish["return_value"]
    return finishes


def test_taskflow_etl_passes_results_along(tmp_path, dag_folder):
    copy_examples(dag_folder)
    finishes = run_in_order(tmp_path, dag_folder.path / "taskflow_etl.py", "taskflow_etl",
                            ["read_station", "summarise", "publish"])
    assert finishes["summarise"][1]["return_value"] == {"mean": 15.333333333333334,
                                                         "peak": 19.0}
    code, finish, log = finishes["publish"]
    assert (code, finish["return_value"]) == (0, 15.3)
    assert "2024-03-01: mean 15.3 C, peak 19.0 C" in log


def test_python_branching_follows_the_param(tmp_path, dag_folder):
    copy_examples(dag_folder)
    file = dag_folder.path / "python_branching.py"
    fast = run_in_order(tmp_path, file, "python_branching", ["choose"],
                        params={"path": "fast", "rows": 10})
    assert fast["choose"][1]["skip"] == ["thorough.check"]
    thorough = run_in_order(tmp_path, file, "python_branching",
                            ["choose", "thorough.check", "thorough.process"],
                            params={"path": "thorough", "rows": 4})
    assert thorough["choose"][1]["skip"] == ["fast_path"]
    assert thorough["thorough.check"][1]["skip"] == []
    assert thorough["thorough.process"][1]["return_value"] == "processing 4 rows"
    empty = run_in_order(tmp_path, file, "python_branching", ["thorough.check"],
                         params={"path": "thorough", "rows": 0})
    assert empty["thorough.check"][1]["skip"] == ["join", "thorough.process"]
