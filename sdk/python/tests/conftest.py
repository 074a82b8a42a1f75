"""Fixtures: running the SDK's entry points as real subprocesses, and a stand-in for updraft's
worker that serves the task protocol on a real Unix socket."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

SDK_SRC = Path(__file__).resolve().parents[1] / "src"


def _env(folder, extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{SDK_SRC}{os.pathsep}{folder}"
    env.pop("UPDRAFT_SUPERVISOR", None)
    env.update(extra or {})
    return env


class DagFolder:
    """A DAG folder in a temporary directory."""

    def __init__(self, path):
        self.path = path

    def write(self, name, source):
        file = self.path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(source))
        return file

    def parse(self, name, env=None):
        """Runs `python -m updraft._parse`; the answer, with the process's stderr."""
        file = self.path / name
        done = subprocess.run(
            [sys.executable, "-m", "updraft._parse", str(file)], cwd=self.path,
            env=_env(self.path, env), capture_output=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        lines = done.stdout.decode().splitlines()
        assert len(lines) == 1, done.stdout.decode()
        answer = json.loads(lines[0])
        answer["stderr"] = done.stderr.decode()
        return answer

    def dag(self, name, dag_id=None):
        """The document of the file's only DAG (or the one named)."""
        answer = self.parse(name)
        assert answer["error"] is None, answer["error"]
        dags = {d["dag_id"]: d for d in answer["dags"]}
        if dag_id is None:
            assert len(dags) == 1, list(dags)
            return next(iter(dags.values()))
        return dags[dag_id]


@pytest.fixture
def dag_folder(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    return DagFolder(folder)


def tasks_by_id(document):
    return {t["task_id"]: t for t in document["tasks"]}


class FakeWorker:
    """Plays updraft's worker for one task try: answers `start` with the context, keeps XComs,
    variables and connections in dicts, and records every request."""

    def __init__(self, tmp_path, xcoms=None, variables=None, connections=None):
        self.socket_path = str(tmp_path / "supervisor.sock")
        self.xcoms = dict(xcoms or {})  # (task_id, key) -> value
        self.variables = dict(variables or {})
        self.connections = dict(connections or {})
        self.requests = []
        self.pushed = {}

    def context(self, dag_file, dag_id, task_id, **overrides):
        base = {
            "dag_file": str(dag_file), "dag_id": dag_id, "task_id": task_id,
            "run_id": "scheduled__2024-03-01T00:00:00+00:00", "try_number": 1,
            "map_index": -1, "logical_date": "2024-03-01T00:00:00+00:00",
            "data_interval_start": "2024-03-01T00:00:00+00:00",
            "data_interval_end": "2024-03-02T00:00:00+00:00", "ds": "2024-03-01",
            "ds_nodash": "20240301", "ts": "2024-03-01T00:00:00+00:00",
            "run_type": "scheduled", "params": {}, "conf": {},
            "dag_run": {"run_id": "scheduled__2024-03-01T00:00:00+00:00",
                        "run_type": "scheduled", "conf": {},
                        "logical_date": "2024-03-01T00:00:00+00:00",
                        "start_date": "2024-03-02T00:00:05+00:00"},
            "upstream": [],
        }
        base.update(overrides)
        return base

    def _answer(self, request, context):
        op = request.get("op")
        if op == "start":
            return {"ok": True, "context": context}
        if op == "xcom_pull":
            ids = request["task_ids"]
            ids = [ids] if isinstance(ids, str) else ids
            return {"ok": True, "values": [self.xcoms.get((t, request["key"])) for t in ids]}
        if op == "xcom_push":
            self.pushed[request["key"]] = request["value"]
            return {"ok": True}
        if op == "variable_get":
            key = request["key"]
            return {"ok": True, "found": key in self.variables,
                    "value": self.variables.get(key, "")}
        if op == "variable_set":
            self.variables[request["key"]] = request["value"]
            return {"ok": True}
        if op == "connection_get":
            conn = self.connections.get(request["conn_id"])
            return {"ok": True, "found": conn is not None, "connection": conn}
        if op == "finish":
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _serve(self, server, context):
        connection, _ = server.accept()
        with connection, connection.makefile("rwb") as stream:
            for line in stream:
                request = json.loads(line)
                self.requests.append(request)
                stream.write(json.dumps(self._answer(request, context)).encode() + b"\n")
                stream.flush()
                if request.get("op") == "finish":
                    return

    def run(self, dag_file, dag_id, task_id, env=None, **context_overrides):
        """Runs `python -m updraft._run` for the task; (exit code, finish message, log)."""
        context = self.context(dag_file, dag_id, task_id, **context_overrides)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        server.listen(1)
        self.requests = []
        thread = threading.Thread(target=self._serve, args=(server, context), daemon=True)
        thread.start()
        folder = Path(dag_file).parent
        try:
            done = subprocess.run(
                [sys.executable, "-m", "updraft._run"], cwd=folder,
                env=_env(folder, dict(env or {}, UPDRAFT_SUPERVISOR=self.socket_path)),
                capture_output=True, timeout=60,
            )
        finally:
            server.close()
        thread.join(timeout=10)
        finishes = [r for r in self.requests if r.get("op") == "finish"]
        log = done.stdout.decode() + done.stderr.decode()
        return done.returncode, (finishes[0] if finishes else None), log


@pytest.fixture
def worker(tmp_path):
    return FakeWorker(tmp_path)
