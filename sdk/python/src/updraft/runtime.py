"""Running one Python task: load its DAG file, build the context, render the templated fields,
execute, and turn the result or exception into the `finish` message (state, retry, error,
tasks to skip, return value)."""

import datetime
import json
import os
import subprocess
import sys
import traceback

from . import context as task_context
from .exceptions import AirflowException, AirflowFailException, AirflowSkipException
from .loader import dags_of_file
from .mapping import apply_map_kwargs
from .runtime_values import resolve
from .serialize import python_kind
from .templates import TemplateError, render


def _render_field(task, value, context, folders):
    def render_text(text):
        # As in Airflow, a value ending in one of the task's template extensions names a
        # template file (relative to the DAG file's folder), which must exist.
        if task.template_ext and text.endswith(tuple(task.template_ext)):
            paths = [os.path.join(folder, text) for folder in folders]
            path = next((p for p in paths if os.path.isfile(p)), None)
            if path is None:
                raise TemplateError(
                    f"template file {text!r} not found in {' or '.join(folders)}")
            with open(path, encoding="utf-8") as file:
                text = file.read()
        return render(text, context)

    return resolve(value, context, render=render_text)


def render_template_fields(task, context, dag_file, dag_folder=None):
    """Renders the task's templated fields in place. Template files are looked up next to the
    DAG file the task runs (its pinned source), then in the DAG folder it came from."""
    folders = [os.path.dirname(dag_file)]
    if dag_folder and dag_folder not in folders:
        folders.append(dag_folder)
    for field in task.template_fields:
        value = getattr(task, field, None)
        if value is not None:
            setattr(task, field, _render_field(task, value, context, folders))
    # Positional and keyword arguments of a TaskFlow call or a PythonOperator may hold
    # XComArgs and @dag params even when the class lists no template fields.
    for field in ("op_args", "op_kwargs"):
        if field not in task.template_fields and hasattr(task, field):
            setattr(task, field, resolve(getattr(task, field), context))


def rendered_fields(task):
    """The task's templated fields after rendering, as JSON can hold them (for
    `updraft tasks render`)."""
    fields = {}
    for field in task.template_fields:
        value = getattr(task, field, None)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)
        fields[field] = value
    return fields


def run_bash(task, command, context, render_command):
    """Runs a command produced by the task with bash, streaming its output to the log. The last
    line is the result; an exit code in skip_on_exit_code skips, any other non-zero fails."""
    if render_command and isinstance(command, str):
        command = render(command, context)
    if not isinstance(command, str) or not command.strip():
        raise TypeError("The returned value from the TaskFlow callable must be a non-empty "
                        f"string, not {command!r}")
    env = dict(os.environ)
    env.pop("UPDRAFT_SUPERVISOR", None)
    for key, value in (task.env or {}).items():
        # A BashOperator's env was rendered with its templated fields; a @task.bash's is
        # rendered here (it may pull upstream results: `env={"N": other["count"]}`).
        env[key] = render(value, context) if render_command else value
    print(f"Running command: {command}", flush=True)
    sys.stderr.flush()
    process = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, cwd=task.cwd or None)
    last = None
    for raw in process.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        last = line
    code = process.wait()
    skip_codes = task.skip_on_exit_code if task.skip_on_exit_code is not None else [99]
    if code in skip_codes:
        raise AirflowSkipException(f"Bash command returned exit code {code}. Skipping.")
    if code != 0:
        raise AirflowException(
            f"Bash command failed. The command returned a non-zero exit code {code}."
        )
    return last


def branch_skips(task, chosen):
    """The direct downstream tasks a branch did not choose (Airflow's skip_all_except)."""
    dag = task.dag
    if chosen is None:
        chosen = []
    elif isinstance(chosen, str):
        chosen = [chosen]
    elif isinstance(chosen, (list, tuple, set, frozenset)):
        chosen = list(chosen)
    else:
        raise AirflowException(
            f"'branch_task_ids' expected all task IDs are strings. Invalid tasks found: "
            f"{chosen!r}"
        )
    invalid = [c for c in chosen if not isinstance(c, str)
               or (not dag.has_task(c) and c not in dag.task_group_dict)]
    if invalid:
        raise AirflowException(
            f"'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {invalid}."
        )
    keep = set()
    for task_id in chosen:
        if task_id in dag.task_group_dict:
            members = [t.task_id for t in dag.task_group_dict[task_id]._tasks()]
        else:
            members = [task_id]
        for member in members:
            keep.add(member)
            # A chosen task's own downstream stays (a "join" after an empty branch runs).
            keep.update(dag.get_task(member).get_flat_relative_ids())
    return sorted(t for t in task.downstream_task_ids if t not in keep)


def short_circuit_skips(task, condition):
    if condition:
        print(f"Condition result is {condition!r}; proceeding downstream", flush=True)
        return []
    print(f"Condition result is {condition!r}; skipping downstream tasks", flush=True)
    if getattr(task, "ignore_downstream_trigger_rules", True):
        return sorted(task.get_flat_relative_ids())
    return sorted(task.downstream_task_ids)


def latest_only_skips(task, context, now=None):
    """Skips the direct downstream tasks unless the run's data interval is the latest one."""
    run = context["dag_run"]
    start, end = context["data_interval_start"], context["data_interval_end"]
    if run.run_type == "manual" or start is None or end is None or end <= start:
        # A manual run, or a schedule without periods (@once): nothing later can supersede it.
        print("Manual or unscheduled run: not skipping downstream tasks", flush=True)
        return []
    now = now or datetime.datetime.now(datetime.timezone.utc)
    # The next interval is taken to be as long as this one (exact for fixed intervals and
    # regular cron schedules).
    right = end + (end - start)
    if end < now <= right:
        print("Latest run: not skipping downstream tasks", flush=True)
        return []
    print(f"Not the latest run ({end} < now <= {right} is false): skipping downstream",
          flush=True)
    return sorted(task.downstream_task_ids)


def poke_result(result, outcome):
    """A sensor's poke: truthy (or a done PokeReturnValue) ends the wait, with the
    PokeReturnValue's `xcom_value` as the result; otherwise `sensor_done` is false and nothing
    is pushed (updraft pokes again)."""
    from .sensors import PokeReturnValue

    if isinstance(result, PokeReturnValue):
        done, value = bool(result.is_done), result.xcom_value
    else:
        done, value = bool(result), None
    if not done:
        print("Poke returned False: not there yet", flush=True)
        outcome["sensor_done"] = False
        return None
    print("Success criteria met. Exiting.", flush=True)
    return value


def _check_json(value, what):
    try:
        json.dumps(value, allow_nan=False)
    except TypeError as err:
        raise TypeError(f"{err} (the {what})") from None
    except ValueError as err:
        raise ValueError(f"{err} (the {what})") from None


def finish_message(info, push):
    """Runs the task described by the worker's context; the `finish` message's fields."""
    from .taskflow import DecoratedPythonOperator

    outcome = {"state": "success", "retry": False, "error": None, "skip": []}
    try:
        dag_file = info["dag_file"]
        dags = [d for d in dags_of_file(dag_file) if d.dag_id == info["dag_id"]]
        if not dags:
            raise AirflowException(f"DAG {info['dag_id']!r} is not defined in {dag_file}")
        dag = dags[-1]
        task = dag.get_task(info["task_id"])
        apply_map_kwargs(task, info.get("map_kwargs"))
        context = task_context.build_context(info, dag, task)
        task_context._stack.append(context)
        render_template_fields(task, context, dag_file, info.get("dag_folder"))
        if info.get("render_only"):
            outcome["rendered"] = rendered_fields(task)
            for field, value in outcome["rendered"].items():
                print(f"# {field}\n{value}", flush=True)
            return outcome
        result = task.execute(context)
        kind = python_kind(task)
        if kind == "bash":
            result = run_bash(task, result, context,
                              render_command=isinstance(task, DecoratedPythonOperator))
            if getattr(task, "output_processor", None) is not None:
                result = task.output_processor(result)
        elif kind == "branch":
            outcome["skip"] = branch_skips(task, result)
        elif kind == "short_circuit":
            outcome["skip"] = short_circuit_skips(task, result)
        elif kind == "latest_only":
            outcome["skip"] = latest_only_skips(task, context)
        elif kind == "sensor":
            result = poke_result(result, outcome)
        if task.do_xcom_push and result is not None:
            if getattr(task, "multiple_outputs", False):
                if not isinstance(result, dict):
                    raise TypeError(f"Returned output was type {type(result).__name__} "
                                    f"expected dictionary for multiple_outputs")
                for key, value in result.items():
                    if not isinstance(key, str):
                        raise TypeError("Returned dictionary keys must be strings when using "
                                        f"multiple_outputs, found {key!r} ({type(key).__name__})"
                                        " instead")
                    _check_json(value, f"value of key {key!r}")
                    push(key, value)
            _check_json(result, "task's return value")
            print(f"Done. Returned value was: {result!r}", flush=True)
            outcome["return_value"] = result
    except AirflowSkipException as err:
        print(f"Task skipped: {err}" if str(err) else "Task skipped", flush=True)
        outcome.update(state="skipped", skip=[])
    except AirflowFailException as err:
        traceback.print_exc()
        outcome.update(state="failed", retry=False, error=f"{type(err).__name__}: {err}",
                       skip=[])
    except BaseException as err:  # noqa: BLE001 - any failure of the task is a failed try
        traceback.print_exc()
        outcome.update(state="failed", retry=True, error=f"{type(err).__name__}: {err}",
                       skip=[])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return outcome
