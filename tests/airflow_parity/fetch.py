"""Fetches the example and tutorial DAG files that Airflow ships, from the pinned wheels of
apache-airflow-core and apache-airflow-providers-standard on the package index (the wheels are
kept in a cache directory, so later runs need no network). Nothing of Airflow is kept in this
repository: the files are read from the wheels at test time. Only the DAG files are taken, and
the SQL template files they read; other helpers (plugins, libs) stay in the wheel.

    python tests/airflow_parity/fetch.py DEST     # writes DEST/<file>.py, prints their names
"""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.json"
DEFAULT_CACHE = HERE.parents[1] / ".cache" / "airflow-parity"

# Where each wheel keeps the DAG files of its examples; the key is how expected.json names the
# wheel a file comes from.
EXAMPLE_DIRS = {
    "core": ("apache-airflow-core", "airflow/example_dags/"),
    "standard": ("apache-airflow-providers-standard", "airflow/providers/standard/example_dags/"),
}
# What pip prints when it cannot reach the package index (as opposed to a wrong pin).
UNREACHABLE_SIGNS = ("NewConnectionError", "Failed to establish a new connection",
                     "Max retries exceeded", "Temporary failure in name resolution",
                     "ConnectTimeoutError", "ProxyError", "Network is unreachable")


class IndexUnreachable(RuntimeError):
    """The package index could not be reached and the wheels are not in the cache."""


def load_expected():
    return json.loads(EXPECTED.read_text())


def wheel_path(cache, project, version, python=sys.executable):
    """The cached wheel of `project==version`, downloaded (without dependencies) if missing."""
    stem = f"{project.replace('-', '_')}-{version}-"
    found = sorted(p for p in cache.glob(f"{stem}*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "20",
         "--dest", str(cache), f"{project}=={version}"],
        capture_output=True, text=True, timeout=600,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        if any(sign in output for sign in UNREACHABLE_SIGNS):
            raise IndexUnreachable(f"pip download {project}=={version}: the package index is "
                                   f"unreachable ({output.strip().splitlines()[-1]})")
        raise RuntimeError(f"pip download {project}=={version} failed:\n{output}")
    found = sorted(p for p in cache.glob(f"{stem}*.whl"))
    if not found:
        raise RuntimeError(f"pip download {project}=={version} left no wheel in {cache}")
    return found[0]


def extract_examples(dest, cache=DEFAULT_CACHE, pins=None, python=sys.executable):
    """Writes the example DAG files of the pinned wheels into `dest` (one flat folder, as a DAG
    folder, with the SQL templates they read in `sql/`); {DAG file name: the wheel's key in
    EXAMPLE_DIRS}."""
    pins = pins or load_expected()["airflow"]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    origin = {}
    for key, (project, folder) in EXAMPLE_DIRS.items():
        wheel = wheel_path(Path(cache), project, pins[project], python)
        pattern = re.compile(re.escape(folder) + r"([^/]+\.py)$")
        # Template files the examples name (tutorial_taskflow_templates reads sql/*.sql).
        templates = re.compile(re.escape(folder) + r"(sql/[^/]+\.sql)$")
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                template = templates.match(member)
                if template:
                    (dest / "sql").mkdir(exist_ok=True)
                    (dest / template.group(1)).write_bytes(archive.read(member))
                match = pattern.match(member)
                if not match or match.group(1) == "__init__.py":
                    continue
                name = match.group(1)
                if name in origin:
                    raise RuntimeError(f"{name} is in both the {origin[name]} and {key} wheels")
                (dest / name).write_bytes(archive.read(member))
                origin[name] = key
    return origin


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for name, key in sorted(extract_examples(sys.argv[1]).items()):
        print(f"{key}\t{name}")
