"""The fork server's DAG preloaders: a task forked with `preload` finds its DAG file executed
once for all its tries, a changed module of the user's is imported again, and a file that can
only be loaded in a running task is executed by each task, as without preloading."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import SDK_SRC, FakeWorker

COUNTED = """
    import os
    import helper
    from updraft import DAG, task

    with open(os.environ["LOADS_FILE"], "a") as loads:
        loads.write(f"{os.getpid()}\\n")

    with DAG("preloaded"):
        @task
        def report():
            return {"helper": helper.VALUE, "flag": os.environ.get("PER_TRY"),
                    "loaded_with": LOADED_WITH}

        report()

    LOADED_WITH = os.environ.get("STABLE")
"""


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "fork.sock")
    env = dict(os.environ, PYTHONPATH=str(SDK_SRC))
    process = subprocess.Popen([sys.executable, "-m", "updraft._forkserver", path],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    assert process.stdout.readline() == b"ready\n"
    yield path, process
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def run_task(server_path, tmp_path, dag_file, folder, stable=None, per_try=None,
             task_id="report"):
    """Forks one try of `task_id` with preloading, served by a FakeWorker; (exit status
    message, finish message, log)."""
    worker = FakeWorker(tmp_path)
    if os.path.exists(worker.socket_path):
        os.unlink(worker.socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(worker.socket_path)
    listener.listen(1)
    context = worker.context(dag_file, "preloaded", task_id)
    served = threading.Thread(target=worker._serve, args=(listener, context), daemon=True)
    served.start()
    stable_env = {"PYTHONPATH": f"{SDK_SRC}:{folder}", "PATH": os.environ["PATH"],
                  "LOADS_FILE": str(tmp_path / "loads"), **(stable or {})}
    env = dict(stable_env, UPDRAFT_SUPERVISOR=worker.socket_path, **(per_try or {}))
    log_path = tmp_path / "task.log"
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(server_path)
    request = {"op": "fork", "env": env, "cwd": str(folder),
               "preload": {"dag_file": str(dag_file), "env": stable_env}}
    socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [null, log, log])
    os.close(log)
    os.close(null)
    lines = client.makefile("rb")
    started = json.loads(lines.readline())
    assert started["ok"], started
    status = json.loads(lines.readline())
    client.close()
    served.join(timeout=30)
    listener.close()
    finishes = [r for r in worker.requests if r["op"] == "finish"]
    return status, (finishes[0] if finishes else None), log_path.read_text()


def loads(tmp_path):
    path = tmp_path / "loads"
    return path.read_text().split() if path.exists() else []


def test_tries_of_a_preloaded_file_do_not_execute_it_again(tmp_path, dag_folder, server):
    dag_folder.write("helper.py", "VALUE = 1\n")
    file = dag_folder.write("preloaded.py", COUNTED)
    results = [run_task(server[0], tmp_path, file, dag_folder.path, stable={"STABLE": "s"},
                        per_try={"PER_TRY": str(n)}) for n in range(3)]
    for n, (status, finish, log) in enumerate(results):
        assert status == {"exit_code": 0}, log
        assert finish["return_value"] == {"helper": 1, "flag": str(n), "loaded_with": "s"}
    assert len(loads(tmp_path)) == 1


def test_a_changed_module_of_the_users_is_imported_again(tmp_path, dag_folder, server):
    helper = dag_folder.write("helper.py", "VALUE = 1\n")
    file = dag_folder.write("preloaded.py", COUNTED)
    first = run_task(server[0], tmp_path, file, dag_folder.path)
    helper.write_text("VALUE = 22\n")
    second = run_task(server[0], tmp_path, file, dag_folder.path)
    assert first[1]["return_value"]["helper"] == 1
    assert second[1]["return_value"]["helper"] == 22
    assert len(loads(tmp_path)) == 2


def test_another_stable_environment_gets_its_own_preloader(tmp_path, dag_folder, server):
    dag_folder.write("helper.py", "VALUE = 1\n")
    file = dag_folder.write("preloaded.py", COUNTED)
    one = run_task(server[0], tmp_path, file, dag_folder.path, stable={"STABLE": "one"})
    two = run_task(server[0], tmp_path, file, dag_folder.path, stable={"STABLE": "two"})
    assert one[1]["return_value"]["loaded_with"] == "one"
    assert two[1]["return_value"]["loaded_with"] == "two"
    assert len(loads(tmp_path)) == 2


def test_a_file_reading_variables_at_import_is_executed_by_each_task(tmp_path, dag_folder,
                                                                      server):
    dag_folder.write("helper.py", "VALUE = 1\n")
    file = dag_folder.write("preloaded.py", COUNTED.replace(
        "import helper\n", "import helper\n    from updraft import Variable\n"
        "    WHERE = Variable.get('where', default_var='nowhere')\n"))
    for _ in range(2):
        status, finish, log = run_task(server[0], tmp_path, file, dag_folder.path)
        assert status == {"exit_code": 0}, log
    # Once by the preloader that gave up, then once per task.
    assert len(loads(tmp_path)) == 3
    server[1].stdin.close()
    server[1].wait(timeout=30)
    assert "reads variables or connections at import time" in server[1].stderr.read().decode()


def test_a_file_that_fails_to_preload_fails_in_the_task_with_its_error(tmp_path, dag_folder,
                                                                        server):
    file = dag_folder.write("preloaded.py", "raise RuntimeError('broken at import')\n")
    status, finish, log = run_task(server[0], tmp_path, file, dag_folder.path)
    assert status == {"exit_code": 1}
    assert finish["state"] == "failed"
    assert "broken at import" in log


def test_a_killed_preloader_is_replaced(tmp_path, dag_folder, server):
    dag_folder.write("helper.py", "VALUE = 1\n")
    file = dag_folder.write("preloaded.py", COUNTED)
    run_task(server[0], tmp_path, file, dag_folder.path)
    (preloader,) = [int(p) for p in loads(tmp_path)]
    os.kill(preloader, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{preloader}") and time.monotonic() < deadline:
        time.sleep(0.01)
    status, finish, log = run_task(server[0], tmp_path, file, dag_folder.path)
    assert status == {"exit_code": 0}, log
    assert finish["return_value"]["helper"] == 1
    assert len(loads(tmp_path)) == 2
