"""`python3 -m updraft._forkserver SOCKET`: an optional fast start for Python tasks. A process
that has imported the SDK once forks a child per task, so a task does not pay the interpreter's
start-up and the SDK's import (docs/python-protocol.md, "Fork server").

Per task the worker connects to SOCKET and sends one JSON line
`{"op": "fork", "env": {...}, "cwd": "...", "preload": {...}}` with three file descriptors
attached (SCM_RIGHTS: the child's stdin, stdout and stderr). The server answers
`{"ok": true, "pid": N}` once the child exists, and later, when it ends, `{"exit_code": C}` or
`{"signal": S}` on the same connection. The child is its own process group leader, gets exactly
`env` as its environment and `cwd`, then runs what `python3 -m updraft._run` runs.

With `"preload": {"dag_file": F, "env": {...}}` the child is forked by a preloader of F instead
(`updraft._preloader`): a child of this server that executed F once, under `env` (the task's
environment without what differs per try), so that the task finds its DAG built. One preloader
per (file, environment, directory); the least recently used and the idle ones are ended. A file
that cannot be preloaded is executed by each child, as without `preload`.

The server writes `ready` to stdout when it listens and exits when its stdin closes or its
parent dies (taking its children with it)."""

import gc
import json
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections import OrderedDict

# Imported before any fork, so children start with them loaded.
import logging  # noqa: F401
import updraft  # noqa: F401
import airflow  # noqa: F401
import updraft.runtime  # noqa: F401
import updraft._run  # noqa: F401

from updraft import _preloader
from updraft._forking import Forker, die_with_parent, send

MAX_REQUEST = 1024 * 1024
REQUEST_TIMEOUT_S = 10
MAX_PRELOADERS = 16
PRELOADER_IDLE_S = 600.0
PRELOAD_TIMEOUT_S = 60.0
MAX_REFUSED = 256


def read_request(connection):
    """The request line and the file descriptors sent with it."""
    data, fds, _, _ = socket.recv_fds(connection, 65536, 3)
    fds = list(fds)
    while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
        more = connection.recv(65536)
        if not more:
            break
        data += more
    return data, fds


class Preloading:
    """The server's side of one preloader."""

    def __init__(self, pid, control):
        self.pid = pid
        self.control = control
        self.ready = False
        self.files = []
        self.pending = []
        self.started = time.monotonic()
        self.used = self.started

    def fresh(self):
        """Whether the user's modules it imported are unchanged on disk."""
        for path, mtime_ns, size in self.files:
            try:
                now = os.stat(path)
            except OSError:
                return False
            if now.st_mtime_ns != mtime_ns or now.st_size != size:
                return False
        return True


class Server(Forker):
    def __init__(self, path):
        super().__init__()
        if os.path.exists(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.owned.append(self.listener)
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept", None))
        self.preloaders = OrderedDict()
        self.refused = OrderedDict()
        self.watch_stdin = stat.S_ISFIFO(os.fstat(0).st_mode) or stat.S_ISSOCK(os.fstat(0).st_mode)
        if self.watch_stdin:
            self.selector.register(0, selectors.EVENT_READ, ("stdin", None))

    def run(self):
        # What is imported now is never collected: children do not copy its pages just to
        # track it.
        gc.collect()
        gc.freeze()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while True:
            for key, _ in self.selector.select(timeout=self.next_deadline()):
                kind, what = key.data
                if kind == "stdin":
                    if not os.read(0, 4096):
                        return
                elif kind == "child":
                    self.drain_wake()
                    self.reap()
                elif kind == "preloader":
                    self.preloader_spoke(what)
                else:
                    connection, _ = self.listener.accept()
                    self.handle(connection)
            self.reap()
            self.expire()

    def handle(self, connection):
        fds = []
        try:
            # A client that connects and sends nothing must not hold up every other task.
            connection.settimeout(REQUEST_TIMEOUT_S)
            data, fds = read_request(connection)
            connection.settimeout(None)
            request = json.loads(data)
            if request.get("op") != "fork" or len(fds) != 3:
                raise ValueError("expected {\"op\": \"fork\", ...} with 3 file descriptors")
        except (OSError, ValueError) as err:
            send(connection, {"ok": False, "error": str(err)})
            connection.close()
            for fd in fds:
                os.close(fd)
            return
        preload = request.get("preload")
        if isinstance(preload, dict) and isinstance(preload.get("dag_file"), str):
            self.through_preloader(connection, fds, request, preload)
        else:
            self.fork_task(connection, fds, request)

    def through_preloader(self, connection, fds, request, preload):
        preload = {"dag_file": preload["dag_file"], "env": preload.get("env") or {},
                   "cwd": request.get("cwd")}
        key = json.dumps([preload["dag_file"], preload["cwd"], sorted(preload["env"].items())])
        if key in self.refused:
            self.fork_task(connection, fds, request)
            return
        preloader = self.preloaders.get(key)
        if preloader is not None and preloader.ready and not preloader.fresh():
            self.retire(key)
            preloader = None
        if preloader is None:
            preloader = self.start_preloader(key, preload, connection, fds)
            if preloader is None:
                self.fork_task(connection, fds, request)
                return
        self.preloaders.move_to_end(key)
        preloader.used = time.monotonic()
        if preloader.ready:
            self.forward(key, preloader, connection, fds, request)
        else:
            preloader.pending.append((connection, fds, request))

    def start_preloader(self, key, preload, connection, fds):
        """Forks the preloader of `key`; the request at hand (`connection`, `fds`) is not the
        preloader's to hold."""
        while len(self.preloaders) >= MAX_PRELOADERS:
            self.retire(next(iter(self.preloaders)))
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            ours.close()
            self.close_in_child()
            connection.close()
            for fd in fds:
                os.close(fd)
            for other in self.preloaders.values():
                for connection, fds, _ in other.pending:
                    connection.close()
                    for fd in fds:
                        os.close(fd)
            _preloader.serve(theirs, preload)
        theirs.close()
        preloader = Preloading(pid, ours)
        self.preloaders[key] = preloader
        self.owned.append(ours)
        self.selector.register(ours, selectors.EVENT_READ, ("preloader", key))
        return preloader

    def preloader_spoke(self, key):
        preloader = self.preloaders.get(key)
        if preloader is None:
            return
        try:
            message = preloader.control.recv(_preloader.MAX_MESSAGE)
        except OSError:
            message = b""
        if preloader.ready or not message:
            # A ready preloader says nothing more: it ended (killed, or crashed).
            self.refuse(key, "the preloader ended while it loaded the file"
                        if not preloader.ready else None)
            self.retire(key)
            return
        try:
            first = json.loads(message)
        except ValueError:
            first = {"ok": False, "error": "an unreadable first message"}
        if not first.get("ok"):
            self.refuse(key, first.get("error") or "no reason given")
            self.retire(key)
            return
        preloader.ready = True
        preloader.files = first.get("files") or []
        pending, preloader.pending = preloader.pending, []
        for connection, fds, request in pending:
            self.forward(key, preloader, connection, fds, request)

    def forward(self, key, preloader, connection, fds, request):
        message = json.dumps(request).encode()
        if len(message) > _preloader.MAX_MESSAGE:
            self.fork_task(connection, fds, request)
            return
        try:
            socket.send_fds(preloader.control, [message], [connection.fileno()] + fds)
        except OSError:
            self.retire(key)
            self.fork_task(connection, fds, request)
            return
        connection.close()
        for fd in fds:
            os.close(fd)

    def refuse(self, key, reason):
        if reason is None:
            return
        dag_file = json.loads(key)[0]
        sys.stderr.write(f"updraft._forkserver: {dag_file} is executed by each task: {reason}\n")
        sys.stderr.flush()
        self.refused[key] = reason
        while len(self.refused) > MAX_REFUSED:
            self.refused.popitem(last=False)

    def retire(self, key):
        """Ends a preloader: closing its end lets it finish its running children and exit.
        What waited for it is forked here."""
        preloader = self.preloaders.pop(key, None)
        if preloader is None:
            return
        self.selector.unregister(preloader.control)
        self.owned.remove(preloader.control)
        preloader.control.close()
        for connection, fds, request in preloader.pending:
            self.fork_task(connection, fds, request)

    def next_deadline(self):
        if not self.preloaders:
            return None
        now = time.monotonic()
        deadlines = [(p.started + PRELOAD_TIMEOUT_S) if not p.ready else (p.used + PRELOADER_IDLE_S)
                     for p in self.preloaders.values()]
        return max(0.0, min(deadlines) - now)

    def expire(self):
        now = time.monotonic()
        for key, preloader in list(self.preloaders.items()):
            if not preloader.ready and now - preloader.started > PRELOAD_TIMEOUT_S:
                try:
                    os.kill(preloader.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.refuse(key, f"it did not load within {PRELOAD_TIMEOUT_S:.0f} s")
                self.retire(key)
            elif preloader.ready and now - preloader.used > PRELOADER_IDLE_S:
                self.retire(key)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 -m updraft._forkserver SOCKET_PATH\n")
        return 2
    die_with_parent()
    Server(argv[1]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
