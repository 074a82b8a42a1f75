"""`python -m updraft._parse`: the answer on stdout, the file's output on stderr, the imports
under the DAG folder, and import errors with file, line and traceback."""

import json
import os
import subprocess
import sys

from conftest import SDK_SRC


def test_prints_of_the_file_and_its_subprocesses_go_to_stderr(dag_folder):
    dag_folder.write("noisy.py", """
        import os, sys
        from updraft import DAG, EmptyOperator
        print("printed by the file")
        os.system("echo from a subprocess")
        sys.stdout.write("written to sys.stdout\\n")
        with DAG("noisy"):
            EmptyOperator(task_id="t")
    """)
    answer = dag_folder.parse("noisy.py")
    assert [d["dag_id"] for d in answer["dags"]] == ["noisy"]
    for text in ("printed by the file", "from a subprocess", "written to sys.stdout"):
        assert text in answer["stderr"]


def test_every_dag_of_a_file_once_in_creation_order(dag_folder):
    dag_folder.write("several.py", """
        from updraft import DAG, EmptyOperator, dag, task

        for name in ("first", "second"):
            with DAG(name):
                EmptyOperator(task_id="t")

        unused_variable = DAG("third")
        EmptyOperator(task_id="t", dag=unused_variable)

        @dag
        def fourth():
            EmptyOperator(task_id="t")

        fourth()
    """)
    answer = dag_folder.parse("several.py")
    assert answer["error"] is None
    assert [d["dag_id"] for d in answer["dags"]] == ["first", "second", "third", "fourth"]


def test_imports_lists_modules_of_the_dag_folder_transitively(dag_folder):
    dag_folder.write("common/__init__.py", "")
    dag_folder.write("common/names.py", "from common.deeper import BASE\nNAME = BASE + '_x'\n")
    dag_folder.write("common/deeper.py", "BASE = 'imported'\n")
    dag_folder.write("helper.py", "VALUE = 1\n")
    dag_folder.write("user.py", """
        import json
        import helper
        from common.names import NAME
        from updraft import DAG, EmptyOperator
        with DAG(NAME):
            EmptyOperator(task_id="t")
    """)
    answer = dag_folder.parse("user.py")
    assert [d["dag_id"] for d in answer["dags"]] == ["imported_x"]
    folder = os.path.realpath(dag_folder.path)
    assert answer["imports"] == sorted(
        os.path.join(folder, p) for p in
        ("common/__init__.py", "common/names.py", "common/deeper.py", "helper.py")
    )


def test_an_exception_points_at_the_deepest_frame_in_the_dag_folder(dag_folder):
    dag_folder.write("lib.py", """
        def load_config():
            return {}["missing"]
    """)
    dag_folder.write("broken.py", """
        from updraft import DAG
        import lib
        CONFIG = lib.load_config()
    """)
    answer = dag_folder.parse("broken.py")
    error = answer["error"]
    assert answer["dags"] == []
    assert error["message"] == "KeyError: 'missing'"
    assert error["file"] == os.path.realpath(dag_folder.path / "lib.py")
    assert error["line"] == 3
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert 'broken.py", line 4' in error["traceback"]
    assert "importlib" not in error["traceback"]
    assert answer["imports"] == [os.path.realpath(dag_folder.path / "lib.py")]


def test_a_syntax_error_reports_its_own_file_and_line(dag_folder):
    dag_folder.write("syntax.py", "from updraft import DAG\n\nwith DAG('x') as d\n    pass\n")
    error = dag_folder.parse("syntax.py")["error"]
    assert error["message"].startswith("SyntaxError: ")
    assert error["file"] == os.path.realpath(dag_folder.path / "syntax.py")
    assert error["line"] == 3


def test_an_error_in_the_sdk_points_at_the_dag_files_line(dag_folder):
    dag_folder.write("sdk_error.py", """
        from updraft import DAG, BashOperator

        with DAG("sdk_error"):
            BashOperator(task_id="t", bash_command="x", retries=-1)
    """)
    error = dag_folder.parse("sdk_error.py")["error"]
    assert error["message"] == "ValueError: retries must be a whole number of at least 0, not -1"
    assert error["file"].endswith("sdk_error.py")
    assert error["line"] == 5


def test_a_dag_that_cannot_be_serialized_points_at_its_creation(dag_folder):
    dag_folder.write("unserializable.py", """
        from datetime import datetime
        from updraft import DAG, EmptyOperator

        with DAG("first"):
            EmptyOperator(task_id="t")
        with DAG("bad_param", params={"when": datetime(2024, 1, 1)}):
            EmptyOperator(task_id="t")
    """)
    answer = dag_folder.parse("unserializable.py")
    assert answer["dags"] == []
    assert answer["error"]["message"].startswith(
        "TypeError: param 'when' cannot be stored as JSON: Object of type datetime")
    assert answer["error"]["line"] == 7


def test_a_dag_id_defined_twice_is_an_error(dag_folder):
    dag_folder.write("twice.py", """
        from updraft import DAG, EmptyOperator
        for _ in range(2):
            with DAG("same"):
                EmptyOperator(task_id="t")
    """)
    error = dag_folder.parse("twice.py")["error"]
    assert error["message"] == (
        "ValueError: DAG 'same' is defined twice in this file (line 4 and line 4)")


def test_sys_exit_in_a_file_is_an_import_error_not_a_crash(dag_folder):
    dag_folder.write("exits.py", "import sys\nsys.exit(3)\n")
    error = dag_folder.parse("exits.py")["error"]
    assert error["message"] == "SystemExit: 3"
    assert error["line"] == 2


def test_usage_error_without_a_file():
    done = subprocess.run([sys.executable, "-m", "updraft._parse"], capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(SDK_SRC)))
    assert done.returncode == 2
    assert b"usage: python3 -m updraft._parse" in done.stderr


def test_the_answer_is_one_json_line(dag_folder):
    dag_folder.write("unicode.py", """
        from updraft import DAG, EmptyOperator
        with DAG("unicode", description="naïve café ✓\\nsecond line"):
            EmptyOperator(task_id="t")
    """)
    done = subprocess.run(
        [sys.executable, "-m", "updraft._parse", str(dag_folder.path / "unicode.py")],
        cwd=dag_folder.path, capture_output=True,
        env=dict(os.environ, PYTHONPATH=f"{SDK_SRC}:{dag_folder.path}"),
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["dags"][0]["description"] == "naïve café ✓\nsecond line"


def test_a_broken_helper_module_is_still_listed_as_an_import(dag_folder):
    dag_folder.write("shaky.py", "def broken(:\n")
    dag_folder.write("uses_shaky.py", """
        from updraft import DAG
        import shaky
    """)
    answer = dag_folder.parse("uses_shaky.py")
    assert answer["error"]["message"].startswith("SyntaxError")
    assert answer["error"]["file"] == os.path.realpath(dag_folder.path / "shaky.py")
    assert answer["imports"] == [os.path.realpath(dag_folder.path / "shaky.py")]


def test_variables_while_parsing_come_from_the_environment_or_the_default(dag_folder):
    dag_folder.write("vars.py", """
        from updraft import DAG, EmptyOperator, Variable
        with DAG(Variable.get("dag_name") + "_" + Variable.get("missing", default_var="x")):
            EmptyOperator(task_id="t")
        Variable.get("required")
    """)
    answer = dag_folder.parse("vars.py", env={"AIRFLOW_VAR_DAG_NAME": "from_env"})
    assert answer["error"]["message"].startswith(
        "AirflowNotFoundException: Variable 'required' is not available here")
    dag_folder.write("vars_ok.py", """
        from updraft import DAG, EmptyOperator, Variable
        with DAG(Variable.get("dag_name") + "_" + Variable.get("missing", default_var="x")):
            EmptyOperator(task_id="t")
    """)
    answer = dag_folder.parse("vars_ok.py", env={"AIRFLOW_VAR_DAG_NAME": "from_env"})
    assert [d["dag_id"] for d in answer["dags"]] == ["from_env_x"]
