"""`python3 -m updraft._callback`: calls one Python callback of a DAG file for updraft's
notification delivery (docs/python-protocol.md). The request comes as JSON on stdin:
`{"dag_file", "dag_id", "task_id", "callback", "index", "context"}`; the DAG file is loaded,
the callback found again where the document said it was given (the task's or the DAG's
argument `callback`, position `index`), and called with the event's context as Airflow builds
it. Exit code 0 when it returned, 1 when it raised or could not be found (the traceback on
stderr)."""

import json
import logging
import sys
import traceback

TASK_EVENTS = ("task_failure", "task_success", "task_retry", "task_execute", "task_skipped")


class CallbackError(Exception):
    pass


def find_callback(dags, request):
    """The DAG, the task (`None` for a DAG's callback) and the callable of `request`."""
    from . import notifications

    dag = next((d for d in dags if d.dag_id == request["dag_id"]), None)
    if dag is None:
        raise CallbackError(f"the DAG file no longer defines DAG {request['dag_id']!r}")
    task_id = request.get("task_id")
    key = request["callback"]
    allowed = notifications.CALLBACK_KEYS if task_id else notifications.DAG_CALLBACK_KEYS
    if key not in allowed:
        raise CallbackError(f"{key!r} is not a callback argument")
    owner = dag
    if task_id:
        owner = dag.task_dict.get(task_id)
        if owner is None:
            raise CallbackError(f"DAG {dag.dag_id!r} has no task {task_id!r}")
    items = notifications.callback_items(getattr(owner, key, None))
    index = request["index"]
    if not isinstance(index, int) or not 0 <= index < len(items):
        where = f"task {task_id!r}" if task_id else f"DAG {dag.dag_id!r}"
        raise CallbackError(f"{key} of {where} has no callback at position {index}")
    return dag, (owner if task_id else None), items[index]


def callback_context(event, dag, task):
    """Airflow's callback context of `event` (the notification's context, as JSON)."""
    from .context import build_context
    from .exceptions import AirflowException

    info = dict(event)
    if info.get("ds") and "ds_nodash" not in info:
        info["ds_nodash"] = info["ds"].replace("-", "")
    info.setdefault("map_index", -1)
    context = build_context(info, dag, task)
    context["dag_run"].state = info.get("run_state")
    if info.get("event") in TASK_EVENTS:
        context["ti"].state = info.get("state")
    else:
        # A DAG's callback is about the run, not a task.
        for key in ("task", "ti", "task_instance", "map_index", "try_number"):
            context.pop(key, None)
        context["dag_run"].state = info.get("state")
    if info.get("exception") is not None:
        context["exception"] = AirflowException(info["exception"])
    if info.get("reason") is not None:
        context["reason"] = info["reason"]
    return context


def main():
    from ._run import configure_output
    from .loader import load_dag_file

    configure_output()
    try:
        request = json.load(sys.stdin)
        dags = load_dag_file(request["dag_file"])
        dag, task, callback = find_callback(dags, request)
        context = callback_context(request.get("context") or {}, dag, task)
    except CallbackError as err:
        sys.stderr.write(f"updraft._callback: {err}\n")
        return 1
    except Exception:  # noqa: BLE001 (any error of the DAG file is reported, not raised)
        traceback.print_exc()
        sys.stderr.write("updraft._callback: cannot load the callback\n")
        return 1
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    try:
        callback(context)
    except Exception as err:  # noqa: BLE001 (Airflow logs a failed callback and goes on)
        traceback.print_exc()
        sys.stderr.write(f"updraft._callback: {name} raised {type(err).__name__}: {err}\n")
        return 1
    logging.getLogger("updraft").info("callback %s done", name)
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
