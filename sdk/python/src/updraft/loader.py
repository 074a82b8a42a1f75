"""Executing a DAG file as a module and collecting the DAGs it created (the parser and the task
runner both load files this way, so a task finds the same objects the parser saw)."""

import hashlib
import importlib.util
import os
import sys

from . import _registry


def module_name(path):
    """A module name no import can collide with, stable for a path (Airflow's scheme)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    digest = hashlib.sha1(path.encode()).hexdigest()
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return f"unusual_prefix_{digest}_{safe}"


# DAG files a fork server's preloader executed before forking: path -> its DAGs.
_preloaded = {}


def preload(path, dags):
    _preloaded[path] = dags


def dags_of_file(path):
    """The DAGs of the file at `path`: those preloaded, else the file executed now."""
    dags = _preloaded.get(path)
    return list(dags) if dags is not None else load_dag_file(path)


def load_dag_file(path):
    """Runs the file; the DAGs created while it ran, in creation order."""
    first = len(_registry.created_dags)
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        # A `with DAG(...)` left open by an exception must not swallow later DAGs.
        del _registry.dag_stack[:]
        del _registry.group_stack[:]
    dags = list(_registry.created_dags[first:])
    for dag in dags:
        link_template_references(dag)
    return dags


def link_template_references(dag):
    """An XComArg in a templated field of any operator (a user's own too) makes its task
    upstream, as Airflow does when the field is set."""
    from .nodes import XComArg
    from .runtime_values import find_references

    for task in list(dag.tasks):
        for field in task.template_fields:
            for reference in find_references(getattr(task, field, None)):
                if isinstance(reference, XComArg) and task not in reference._leaves():
                    reference >> task
