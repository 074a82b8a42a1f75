"""`python3 -m updraft._parse FILE`: executes a DAG file and writes one JSON object to stdout:
`{"dags": [...], "imports": [...], "error": null | {...}}` (docs/python-protocol.md). The file's
own output goes to stderr. Exit code 0 whether or not the file is broken."""

import json
import os
import sys
import traceback


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _real(path):
    return os.path.realpath(path) if path else path


def _frames(tb):
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def describe_error(err, dag_file, folder, fallback=None):
    """The error object: message, the file and line it points at, the traceback."""
    message = f"{type(err).__name__}: {err}"
    tb = err.__traceback__
    # Leave out the frames of this runner and importlib that precede the DAG file's.
    start = tb
    while start is not None and _real(start.tb_frame.f_code.co_filename) != dag_file:
        start = start.tb_next
    shown = start if start is not None else tb
    text = "".join(traceback.format_exception(type(err), err, shown))
    file, line = None, None
    if isinstance(err, SyntaxError) and err.filename:
        file, line = err.filename, err.lineno
    else:
        frames = [(f, n) for f, n in _frames(tb) if not f.startswith("<")]
        inside = [(f, n) for f, n in frames if _inside(_real(f), folder)]
        chosen = inside[-1] if inside else (frames[-1] if frames else (None, None))
        if fallback is not None and not inside:
            chosen = fallback
        file, line = chosen
    return {
        "message": message,
        "file": os.path.abspath(file) if file else dag_file,
        "line": line,
        "traceback": text,
    }


class ImportRecorder:
    """First on sys.meta_path while the file runs: notes every module file under the DAG folder
    that an import finds, also one that then fails to load (a broken helper must still count as
    an import, so that fixing it re-parses the file). It finds nothing itself."""

    def __init__(self, folder):
        self.folder = folder
        self.found = set()

    def find_spec(self, name, path=None, target=None):
        import importlib.machinery

        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None)
        if origin and origin.endswith(".py") and _inside(_real(origin), self.folder):
            self.found.add(_real(origin))
        return None

    def invalidate_caches(self):
        pass


def imported_modules(before, dag_file, folder, recorder=None):
    found = set(recorder.found) if recorder is not None else set()
    found.discard(dag_file)
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = _real(os.path.abspath(path))
        if path != dag_file and _inside(path, folder):
            found.add(path)
    return sorted(found)


def parse(dag_file, folder):
    """The answer for one DAG file (a dict ready for JSON)."""
    before = set(sys.modules)
    answer = {"dags": [], "imports": [], "error": None}
    recorder = ImportRecorder(folder)
    sys.meta_path.insert(0, recorder)
    try:
        from .loader import load_dag_file

        dags = load_dag_file(dag_file)
    except BaseException as err:  # noqa: BLE001 - any failure of the file is its import error
        answer["error"] = describe_error(err, dag_file, folder)
        answer["imports"] = imported_modules(before, dag_file, folder, recorder)
        return answer
    finally:
        sys.meta_path.remove(recorder)
    answer["imports"] = imported_modules(before, dag_file, folder, recorder)
    documents, seen = [], {}
    for dag in dags:
        where = (dag.fileloc or dag_file, dag.lineno)
        try:
            if dag.dag_id in seen:
                raise ValueError(
                    f"DAG {dag.dag_id!r} is defined twice in this file (line {seen[dag.dag_id]} "
                    f"and line {dag.lineno})"
                )
            seen[dag.dag_id] = dag.lineno
            documents.append(dag.to_document())
        except Exception as err:  # noqa: BLE001 - reported as the file's import error
            answer["error"] = describe_error(err, dag_file, folder, fallback=where)
            return answer
    answer["dags"] = documents
    return answer


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 -m updraft._parse /absolute/path/of/dag_file.py\n")
        return 2
    dag_file = _real(os.path.abspath(argv[1]))
    folder = _real(os.getcwd())
    # The answer owns stdout: the file's prints (Python's and its subprocesses') go to stderr.
    sys.stdout.flush()
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    answer = parse(dag_file, folder)
    sys.stderr.flush()
    data = (json.dumps(answer) + "\n").encode()
    while data:
        written = os.write(answer_fd, data)
        data = data[written:]
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stderr.flush()
    os._exit(code)
