"""What the fork server and its DAG preloaders share: forking a task child from a request,
turning the child into the task process, and reporting the exit statuses of the children a
process forked (docs/python-protocol.md, "Fork server")."""

import ctypes
import json
import os
import selectors
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
START_DIR = os.getcwd()

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def die_with_parent():
    """Linux: SIGKILL when the parent exits (best effort elsewhere: stdin's EOF still works)."""
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except AttributeError:
        pass


def send(connection, message):
    try:
        connection.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def become(env, cwd):
    """Exactly `env` as the environment, `cwd` as the directory, and `sys.path` as
    `python3 -m` with that PYTHONPATH would have it."""
    os.environ.clear()
    os.environ.update(env)
    if cwd:
        os.chdir(cwd)
    # `python3 -m` puts its working directory first on sys.path: the task's, not the
    # server's.
    if sys.path and sys.path[0] == START_DIR:
        sys.path[0] = os.getcwd()
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def request_env(request):
    return {str(k): str(v) for k, v in (request.get("env") or {}).items()}


class Forker:
    """A process that forks task children: its event loop's selector, the pipe SIGCHLD wakes it
    on, and the connection each child's exit status goes to. Everything it owns is closed in
    its children (`owned`)."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)
        self.selector.register(self.wake_read, selectors.EVENT_READ, ("child", None))
        self.children = {}
        self.owned = []

    def close_in_child(self):
        """In a forked child: drop the parent's loop without touching the (shared) epoll
        instance's registrations."""
        signal.set_wakeup_fd(-1)
        self.selector.close()
        for fd in (self.wake_read, self.wake_write):
            try:
                os.close(fd)
            except OSError:
                pass
        for connection in self.children.values():
            connection.close()
        for thing in self.owned:
            try:
                thing.close()
            except OSError:
                pass

    def drain_wake(self):
        try:
            while os.read(self.wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def fork_task(self, connection, fds, request):
        """Forks the task child for `request` with `fds` as its stdio, and answers its pid on
        `connection`, which later gets its exit status. The caller's `fds` are closed."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            parent_pid = os.getpid()
            pid = os.fork()
            if pid == 0:
                self.run_child(connection, fds, request, parent_pid)
            # The child does it too; done here as well, the group exists before the worker
            # learns the pid, so a kill(-pid) sent at once (a cancel) cannot miss it.
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            self.children[pid] = connection
            send(connection, {"ok": True, "pid": pid})
        except OSError as err:
            send(connection, {"ok": False, "error": str(err)})
            connection.close()
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def run_child(self, connection, fds, request, parent_pid):
        """In the forked child: become the task process, never return."""
        code = 1
        try:
            os.setpgid(0, 0)
            die_with_parent()
            if os.getppid() != parent_pid:
                # The parent died before the death signal was armed.
                os._exit(1)
            for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
                signal.signal(number, signal.SIG_DFL)
            self.close_in_child()
            connection.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            become(request_env(request), request.get("cwd"))
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            import updraft._run

            sys.argv = [updraft._run.__file__]
            code = updraft._run.main()
            import logging

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as err:  # noqa: BLE001 - the child must never return to the loop
            try:
                os.write(2, f"updraft._forkserver: the task process failed to start: {err!r}\n"
                         .encode())
            except OSError:
                pass
        finally:
            os._exit(code)

    def reap(self):
        # Not only the task children: the fork server's preloaders are reaped here too.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped(pid, status)

    def reaped(self, pid, status):
        connection = self.children.pop(pid, None)
        if connection is None:
            return
        if os.WIFSIGNALED(status):
            send(connection, {"signal": os.WTERMSIG(status)})
        else:
            send(connection, {"exit_code": os.WEXITSTATUS(status)})
        connection.close()
