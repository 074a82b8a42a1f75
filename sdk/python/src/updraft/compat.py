"""What the `airflow` shim package needs beyond the SDK's API: refusing Airflow modules and
names updraft does not have with an error that names the feature."""

import importlib.abc
import importlib.util
import sys

from .exceptions import NotSupportedByUpdraft

# Airflow modules (and everything under them) that updraft lacks, with the feature's name.
UNSUPPORTED_MODULES = {
    "airflow.providers.docker.decorators": "@task.docker",
    "airflow.providers.docker.hooks": "DockerHook",
    "airflow.providers.docker.operators.docker_swarm": "DockerSwarmOperator",
    "airflow.providers.cncf.kubernetes": "KubernetesPodOperator",
    "airflow.providers.http.hooks": "HttpHook",
    "airflow.providers.http.triggers": "Deferrable operators (HTTP triggers)",
    "airflow.providers.http.notifications": "Notifiers",
    "airflow.sensors.bash": "BashSensor",
    "airflow.providers.standard.sensors.bash": "BashSensor",
    "airflow.sensors.weekday": "DayOfWeekSensor",
    "airflow.providers.standard.sensors.weekday": "DayOfWeekSensor",
    "airflow.sensors.filesystem_async": "Deferrable operators (triggers)",
    "airflow.providers.standard.triggers": "Deferrable operators (triggers)",
    "airflow.triggers": "Deferrable operators (triggers)",
    "airflow.assets": "Asset",
    "airflow.timetables": "Custom timetables",
    "airflow.operators.email": "EmailOperator",
    "airflow.operators.email_operator": "EmailOperator",
    "airflow.providers.smtp": "EmailOperator (SMTP provider)",
    "airflow.operators.subdag": "SubDagOperator",
    "airflow.operators.generic_transfer": "GenericTransfer",
    "airflow.operators.datetime": "BranchDateTimeOperator",
    "airflow.providers.standard.operators.datetime": "BranchDateTimeOperator",
    "airflow.operators.weekday": "BranchDayOfWeekOperator",
    "airflow.providers.standard.operators.weekday": "BranchDayOfWeekOperator",
    "airflow.providers.standard.operators.smooth": "SmoothOperator",
    "airflow.operators.smooth": "SmoothOperator",
    "airflow.providers.common.sql": "SQL operators (common.sql provider)",
    "airflow.providers.postgres": "The PostgreSQL provider",
    "airflow.providers.mysql": "The MySQL provider",
    "airflow.providers.amazon": "The Amazon provider",
    "airflow.providers.google": "The Google provider",
    "airflow.providers.microsoft": "The Microsoft provider",
    "airflow.providers.slack": "The Slack provider",
    "airflow.providers.ssh": "SSHOperator",
    "airflow.providers.sftp": "The SFTP provider",
    "airflow.configuration": "airflow.configuration (Airflow's config)",
    "airflow.settings": "airflow.settings",
    "airflow.api": "Airflow's Python API client",
    "airflow.plugins_manager": "Airflow plugins",
    "airflow.listeners": "Airflow listeners",
    "airflow.lineage": "Lineage",
    "airflow.notifications": "Notifiers",
    "airflow.secrets": "Secrets backends",
}


def _feature(module):
    best = None
    for prefix in UNSUPPORTED_MODULES:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    if best is not None:
        return UNSUPPORTED_MODULES[best]
    if module.startswith("airflow.providers."):
        return f"The {module.split('.')[2]} provider"
    return f"The module {module}"


class _RefusingLoader(importlib.abc.Loader):
    """An empty module whose every name is refused: `from airflow.x.y import Thing` fails
    naming Thing (the import of the module itself succeeds, so the error can name the class)."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module_name = module.__name__

        def __getattr__(name):
            if name.startswith("__"):
                raise AttributeError(name)
            feature = name if name[:1].isupper() else _feature(f"{module_name}.{name}")
            raise NotSupportedByUpdraft(feature, f"{module_name}.{name}")

        module.__getattr__ = __getattr__


class AirflowModuleFinder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: an `airflow.*` module the shim package does not have loads as a
    module that refuses every name it is asked for, naming the feature, instead of Python's bare
    "No module named"."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("airflow."):
            return importlib.util.spec_from_loader(fullname, _RefusingLoader(), is_package=True)
        return None


def install_finder():
    if not any(isinstance(f, AirflowModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(AirflowModuleFinder())


def refuse_names(module_name, names):
    """A module `__getattr__` that refuses `names` ({name: feature}) and reports other missing
    names as Python does."""

    def __getattr__(name):
        if name in names:
            raise NotSupportedByUpdraft(names[name] or name, f"{module_name}.{name}")
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__


def refusing_decorator(feature):
    """A decorator that updraft does not have: importing it works, using it raises."""

    def decorator(*args, **kwargs):
        raise NotSupportedByUpdraft(feature)

    return decorator
