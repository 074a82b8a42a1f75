"""`airflow.sdk.definitions.asset`: updraft's assets."""

from updraft.assets import Asset, AssetAll, AssetAny, BaseAsset, Dataset  # noqa: F401
from updraft.compat import refuse_names as _refuse_names

__getattr__ = _refuse_names(__name__, {
    "AssetAlias": "AssetAlias", "AssetWatcher": "AssetWatcher", "AssetRef": "Asset.ref",
})
