"""The fork server: a child per request, its own process group, exactly the environment and
directory asked for, the stdio passed with the request, and its exit status reported."""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from conftest import SDK_SRC, FakeWorker

TASKS = """
    import os
    from updraft import DAG, task

    with DAG("forked"):
        @task
        def report():
            print("printed by the forked task")
            return {"env": sorted(k for k in os.environ if k.startswith("FORK_")),
                    "cwd": os.getcwd(), "pgid_is_pid": os.getpgid(0) == os.getpid()}

        @task
        def fail():
            raise RuntimeError("boom")

        report(); fail()
"""


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "fork.sock")
    env = dict(os.environ, PYTHONPATH=str(SDK_SRC), FORK_SERVER_ONLY="1")
    process = subprocess.Popen([sys.executable, "-m", "updraft._forkserver", path],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert process.stdout.readline() == b"ready\n"
    yield path, process
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def fork(server_path, env, cwd, log_path):
    """Asks for a child the way the worker does; (pid, the final status message)."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(server_path)
    request = json.dumps({"op": "fork", "env": env, "cwd": cwd}).encode() + b"\n"
    socket.send_fds(client, [request], [null, log, log])
    os.close(log)
    os.close(null)
    lines = client.makefile("rb")
    started = json.loads(lines.readline())
    assert started["ok"], started
    status = json.loads(lines.readline())
    client.close()
    return started["pid"], status


def test_a_forked_task_runs_in_its_own_group_with_the_given_env(tmp_path, dag_folder, server):
    file = dag_folder.write("forked.py", TASKS)
    worker = FakeWorker(tmp_path)
    context = worker.context(file, "forked", "report")
    served = threading.Thread(target=worker._serve, args=(listen(worker), context),
                              daemon=True)
    served.start()
    env = {"PYTHONPATH": f"{SDK_SRC}:{dag_folder.path}", "FORK_ONE": "1",
           "UPDRAFT_SUPERVISOR": worker.socket_path, "PATH": os.environ["PATH"]}
    pid, status = fork(server[0], env, str(tmp_path), tmp_path / "task.log")
    served.join(timeout=30)
    assert status == {"exit_code": 0}
    finish = [r for r in worker.requests if r["op"] == "finish"][0]
    assert finish["return_value"] == {"env": ["FORK_ONE"], "cwd": str(tmp_path),
                                      "pgid_is_pid": True}
    assert "printed by the forked task" in (tmp_path / "task.log").read_text()


def test_a_failed_task_reports_exit_code_1(tmp_path, dag_folder, server):
    file = dag_folder.write("forked.py", TASKS)
    worker = FakeWorker(tmp_path)
    context = worker.context(file, "forked", "fail")
    served = threading.Thread(target=worker._serve, args=(listen(worker), context),
                              daemon=True)
    served.start()
    env = {"PYTHONPATH": f"{SDK_SRC}:{dag_folder.path}",
           "UPDRAFT_SUPERVISOR": worker.socket_path}
    _, status = fork(server[0], env, str(dag_folder.path), tmp_path / "task.log")
    served.join(timeout=30)
    assert status == {"exit_code": 1}
    assert "RuntimeError: boom" in (tmp_path / "task.log").read_text()


def test_a_killed_task_reports_its_signal(tmp_path, server):
    log = tmp_path / "task.log"
    # No worker listens: the child would fail to connect; kill it first by its group.
    env = {"PYTHONPATH": str(SDK_SRC), "UPDRAFT_SUPERVISOR": str(tmp_path / "slow.sock")}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "slow.sock"))
    listener.listen(1)  # accepts the connection but never answers `start`
    result = {}

    def ask():
        result["pid"], result["status"] = fork(server[0], env, str(tmp_path), log)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    connection, _ = listener.accept()
    pid = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    child = int.from_bytes(pid[:4], sys.byteorder)
    os.killpg(child, 9)
    asking.join(timeout=30)
    assert result["status"] == {"signal": 9}
    assert result["pid"] == child
    connection.close()
    listener.close()


def test_a_request_without_file_descriptors_is_refused(server):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(server[0])
    client.sendall(b'{"op": "fork", "env": {}}\n')
    answer = json.loads(client.makefile("rb").readline())
    assert answer["ok"] is False and "3 file descriptors" in answer["error"]


def listen(worker):
    """The FakeWorker's socket, listening before the fork server starts the task."""
    if os.path.exists(worker.socket_path):
        os.unlink(worker.socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(worker.socket_path)
    listener.listen(1)
    worker.requests = []
    return listener
