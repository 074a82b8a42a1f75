"""The task side of the worker's Unix socket: JSON lines, one response per request (see
docs/python-protocol.md)."""

import json
import socket
import threading

_client = None


class SupervisorError(RuntimeError):
    """The worker refused a request or the socket broke."""


class Client:
    def __init__(self, path):
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(path)
        self._reader = self._socket.makefile("rb")
        self._lock = threading.Lock()

    def request(self, op, **fields):
        message = dict(op=op, **fields)
        line = json.dumps(message, allow_nan=False).encode() + b"\n"
        with self._lock:
            try:
                self._socket.sendall(line)
                answer = self._reader.readline()
            except OSError as err:
                raise SupervisorError(f"the worker's socket failed during {op!r}: {err}") from None
        if not answer:
            raise SupervisorError(f"the worker closed the socket during {op!r}")
        try:
            reply = json.loads(answer)
        except ValueError:
            raise SupervisorError(f"the worker answered {op!r} with invalid JSON") from None
        if not reply.get("ok"):
            raise SupervisorError(reply.get("error") or f"the worker refused {op!r}")
        return reply

    def close(self):
        try:
            self._reader.close()
            self._socket.close()
        except OSError:
            pass


def connect(path):
    global _client
    _client = Client(path)
    return _client


# Set while a fork server's preloader executes a DAG file for the tasks it will fork: a file
# that reads variables or connections then gets them only in a running task, so it is loaded
# per try instead.
preloading = False
asked_while_preloading = False


def current():
    """The worker connection of this task process, or None (parsing, unit tests)."""
    global asked_while_preloading
    if preloading:
        asked_while_preloading = True
    return _client
