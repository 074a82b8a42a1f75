"""A DAG preloader: a child of the fork server that has executed one DAG file (one pinned
version) and forks the task children of that file, so that a task does not execute its DAG
file again (docs/python-protocol.md, "Fork server").

It talks to the server over a SOCK_SEQPACKET pair. First it sends one message:
`{"ok": true, "files": [[path, mtime_ns, size], ...]}` (the user's modules the file imported,
which the server checks before each request) or `{"ok": false, "error": ...}` when the file
cannot be preloaded (it raised, or it read a variable or connection while it was executed,
which only a running task can). Then every message from the server is a fork request: the
request's JSON with four descriptors, the worker's connection and the child's stdin, stdout,
stderr. The preloader forks, answers on that connection as the server would, and reports the
child's exit status there. It exits when the server closes its end and its children ended,
and dies with the server."""

import gc
import json
import os
import selectors
import socket
import sys
import traceback

from . import supervisor
from ._forking import Forker, become, die_with_parent
from .loader import load_dag_file, preload

MAX_MESSAGE = 256 * 1024
SDK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_module_files(before):
    """(path, mtime_ns, size) of the modules imported since `before` that are the user's:
    not the interpreter's library, not installed packages, not the SDK."""
    skipped = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                            SDK_ROOT)}
    files = []
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.abspath(path)
        if any(path.startswith(root + os.sep) for root in skipped):
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        files.append([path, stat.st_mtime_ns, stat.st_size])
    return files


def load(dag_file):
    """Executes the DAG file; the server's first message."""
    before = set(sys.modules)
    supervisor.preloading = True
    try:
        dags = load_dag_file(dag_file)
    except BaseException:  # noqa: BLE001 - any failure means: load it per try instead
        return {"ok": False, "error": traceback.format_exc(limit=-3).strip()}
    finally:
        supervisor.preloading = False
    if supervisor.asked_while_preloading:
        return {"ok": False, "error": "it reads variables or connections at import time"}
    preload(dag_file, dags)
    return {"ok": True, "files": user_module_files(before)}


def serve(control, preload_request):
    """Runs in the fork server's forked child; never returns."""
    code = 1
    try:
        die_with_parent()
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        os.close(devnull)
        become(preload_request["env"], preload_request.get("cwd"))
        first = load(preload_request["dag_file"])
        control.sendall(json.dumps(first).encode())
        if first["ok"]:
            # Objects made so far are never collected: a child does not write to their pages
            # just to track them (less copying after each fork).
            gc.collect()
            gc.freeze()
            Preloader(control).run()
        code = 0
    except BaseException:  # noqa: BLE001 - the preloader must never return to the server loop
        pass
    finally:
        os._exit(code)


class Preloader(Forker):
    def __init__(self, control):
        super().__init__()
        self.control = control
        self.owned.append(control)
        self.selector.register(control, selectors.EVENT_READ, ("control", None))

    def run(self):
        open_control = True
        while open_control or self.children:
            for key, _ in self.selector.select():
                kind, _ = key.data
                if kind == "child":
                    self.drain_wake()
                    self.reap()
                elif not self.take_request():
                    self.selector.unregister(self.control)
                    open_control = False
            self.reap()

    def take_request(self):
        """Forks the child of the next request; False once the server closed its end."""
        try:
            message, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, 4)
        except OSError:
            return False
        if not message:
            for fd in fds:
                os.close(fd)
            return False
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            return True
        connection = socket.socket(fileno=fds[0])
        try:
            request = json.loads(message)
        except ValueError as err:
            from ._forking import send

            send(connection, {"ok": False, "error": f"bad request: {err}"})
            connection.close()
            for fd in fds[1:]:
                os.close(fd)
            return True
        self.fork_task(connection, fds[1:], request)
        return True
