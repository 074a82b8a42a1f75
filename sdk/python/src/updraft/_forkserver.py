"""`python3 -m updraft._forkserver SOCKET`: an optional fast start for Python tasks. A process
that has imported the SDK once forks a child per task, so a task does not pay the interpreter's
start-up and the SDK's import (docs/python-protocol.md, "Fork server").

Per task the worker connects to SOCKET and sends one JSON line
`{"op": "fork", "env": {...}, "cwd": "..."}` with three file descriptors attached (SCM_RIGHTS:
the child's stdin, stdout and stderr). The server answers `{"ok": true, "pid": N}` once the child
exists, and later, when it ends, `{"exit_code": C}` or `{"signal": S}` on the same connection.
The child is its own process group leader, gets exactly `env` as its environment and `cwd`,
then runs what `python3 -m updraft._run` runs. The server writes `ready` to stdout when it
listens and exits when its stdin closes or its parent dies (taking its children with it)."""

import ctypes
import json
import os
import selectors
import signal
import socket
import sys

# Imported before any fork, so children start with them loaded.
import logging  # noqa: F401
import updraft  # noqa: F401
import airflow  # noqa: F401
import updraft.runtime  # noqa: F401
import updraft._run  # noqa: F401

PR_SET_PDEATHSIG = 1
START_DIR = os.getcwd()
MAX_REQUEST = 1024 * 1024
REQUEST_TIMEOUT_S = 10


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


def run_child(connection, listener, fds, request, server_pid):
    """In the forked child: become the task process, never return."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        if os.getppid() != server_pid:
            # The server died before the death signal was armed.
            os._exit(1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        listener.close()
        connection.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        os.environ.clear()
        os.environ.update(env)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        # `python3 -m` puts its working directory first on sys.path: the task's, not the
        # server's.
        if sys.path and sys.path[0] == START_DIR:
            sys.path[0] = os.getcwd()
        for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        sys.argv = [updraft._run.__file__]
        code = updraft._run.main()
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException as err:  # noqa: BLE001 - the child must never return to the server loop
        try:
            os.write(2, f"updraft._forkserver: the task process failed to start: {err!r}\n"
                     .encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def send(connection, message):
    try:
        connection.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


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


def serve(path):
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "child")
    import stat

    if stat.S_ISFIFO(os.fstat(0).st_mode) or stat.S_ISSOCK(os.fstat(0).st_mode):
        selector.register(0, selectors.EVENT_READ, "stdin")
    children = {}
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            if key.data == "stdin":
                if not os.read(0, 4096):
                    return
            elif key.data == "child":
                try:
                    while os.read(wake_read, 4096):
                        pass
                except BlockingIOError:
                    pass
                reap(children)
            else:
                connection, _ = listener.accept()
                handle(connection, listener, children)
        reap(children)


def handle(connection, listener, children):
    fds = []
    try:
        # A client that connects and sends nothing must not hold up every other task.
        connection.settimeout(REQUEST_TIMEOUT_S)
        data, fds = read_request(connection)
        connection.settimeout(None)
        request = json.loads(data)
        if request.get("op") != "fork" or len(fds) != 3:
            raise ValueError("expected {\"op\": \"fork\", ...} with 3 file descriptors")
        sys.stdout.flush()
        sys.stderr.flush()
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            run_child(connection, listener, fds, request, server_pid)
        # The child does it too; done here as well, the group exists before the worker learns
        # the pid, so a kill(-pid) sent at once (a cancel) cannot miss it.
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        children[pid] = connection
        send(connection, {"ok": True, "pid": pid})
    except (OSError, ValueError) as err:
        send(connection, {"ok": False, "error": str(err)})
        connection.close()
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def reap(children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        if os.WIFSIGNALED(status):
            send(connection, {"signal": os.WTERMSIG(status)})
        else:
            send(connection, {"exit_code": os.WEXITSTATUS(status)})
        connection.close()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 -m updraft._forkserver SOCKET_PATH\n")
        return 2
    die_with_parent()
    serve(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
