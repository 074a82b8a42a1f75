"""Airflow 2's `airflow.datasets`: datasets are updraft's assets."""

from updraft.assets import Dataset, DatasetAll, DatasetAny  # noqa: F401
from updraft.compat import refuse_names as _refuse_names

__getattr__ = _refuse_names(__name__, {"DatasetAlias": "AssetAlias"})
