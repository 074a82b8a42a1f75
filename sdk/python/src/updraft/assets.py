"""Assets (Airflow 3's data-aware scheduling): `Asset`, its Airflow 2 name `Dataset`, the
conditions `AssetAll` / `AssetAny` (`&` / `|`), `AssetOrTimeSchedule`, and what a running task
sees of the events that triggered its run (`triggering_asset_events`).

Serialized as the DAG document's `schedule` and each task's `outlets` / `inlets` (see
`docs/python-protocol.md`)."""

import datetime

from .exceptions import NotSupportedByUpdraft

DEFAULT_GROUP = "asset"
MAX_LENGTH = 1500


def _check(field, value):
    if not isinstance(value, str):
        raise TypeError(f"An asset's {field} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"An asset's {field} cannot be empty")
    if len(value) > MAX_LENGTH:
        raise ValueError(f"An asset's {field} cannot be longer than {MAX_LENGTH} characters")
    if field == "uri" and value.lower().startswith("airflow://"):
        raise ValueError(f"The asset uri {value!r} uses the reserved 'airflow' scheme")
    return value


class BaseAsset:
    """What `&` and `|` combine."""

    def __and__(self, other):
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def __or__(self, other):
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)


class Asset(BaseAsset):
    """An asset, known by its name and its URI; either alone names both, as in Airflow."""

    def __init__(self, name=None, uri=None, *, group=None, extra=None, watchers=None):
        if watchers:
            raise NotSupportedByUpdraft("AssetWatcher", "Asset(watchers=...)")
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        if name is None:
            name = uri
        elif uri is None:
            uri = name
        self.name = _check("name", name)
        self.uri = _check("uri", uri)
        self.group = group or DEFAULT_GROUP
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"An asset's extra must be a dict, not {type(extra).__name__}")
        self.extra = dict(extra or {})

    def __eq__(self, other):
        return isinstance(other, Asset) and (self.name, self.uri) == (other.name, other.uri)

    def __hash__(self):
        return hash((self.name, self.uri))

    def __repr__(self):
        return f"Asset(name={self.name!r}, uri={self.uri!r}, group={self.group!r})"

    def to_document(self):
        doc = {"name": self.name, "uri": self.uri}
        if self.group != DEFAULT_GROUP:
            doc["group"] = self.group
        if self.extra:
            doc["extra"] = self.extra
        return doc


class Dataset(Asset):
    """Airflow 2's name of an asset: `Dataset(uri, extra=None)`."""

    def __init__(self, uri=None, extra=None, *, name=None, group=None):
        super().__init__(name=name, uri=uri, group=group, extra=extra)


class _Condition(BaseAsset):
    key = ""

    def __init__(self, *objects):
        for obj in objects:
            if not isinstance(obj, BaseAsset):
                raise TypeError(f"{type(self).__name__} takes assets and conditions, "
                                f"not {type(obj).__name__}")
        self.objects = list(objects)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def to_document(self):
        return {self.key: [condition_document(o) for o in self.objects]}


class AssetAll(_Condition):
    """Every one of its assets (`a & b`, or a list as a schedule)."""

    key = "all"

    def __and__(self, other):
        if isinstance(other, BaseAsset) and not isinstance(other, AssetAny):
            return AssetAll(*self.objects, other)
        return super().__and__(other)


class AssetAny(_Condition):
    """Any one of its assets (`a | b`)."""

    key = "any"

    def __or__(self, other):
        if isinstance(other, BaseAsset) and not isinstance(other, AssetAll):
            return AssetAny(*self.objects, other)
        return super().__or__(other)


DatasetAll = AssetAll
DatasetAny = AssetAny


def condition_document(obj):
    """The document form of an asset schedule: an asset, a list (all), `all`/`any`."""
    if isinstance(obj, (list, tuple)):
        if not obj:
            raise ValueError("An empty list of assets never triggers a run")
        return {"all": [condition_document(o) for o in obj]}
    if isinstance(obj, (Asset, _Condition)):
        return obj.to_document()
    if type(obj).__name__ in ("AssetAlias", "DatasetAlias"):
        raise NotSupportedByUpdraft("AssetAlias")
    raise TypeError(f"A schedule on assets holds assets, not {type(obj).__name__}")


def is_asset_schedule(schedule):
    return isinstance(schedule, (BaseAsset, AssetOrTimeSchedule)) or (
        isinstance(schedule, (list, tuple)) and all(isinstance(s, BaseAsset) for s in schedule))


class AssetOrTimeSchedule:
    """Runs on a time schedule and also when the assets' condition is met (Airflow's
    `airflow.timetables.assets.AssetOrTimeSchedule`)."""

    def __init__(self, *, timetable, assets):
        self.timetable = timetable
        self.assets = assets

    def to_document(self, time_text):
        return {"cron": time_text(self.timetable), "assets": condition_document(self.assets)}


class CronTriggerTimetable:
    """Airflow's `CronTriggerTimetable(cron, timezone=...)`: a run at each tick, which is what
    updraft's cron schedules do. Only its cron expression is used; the DAG's time zone
    applies."""

    def __init__(self, cron, *, timezone=None, interval=datetime.timedelta(), run_immediately=False):
        if interval:
            raise NotSupportedByUpdraft("CronTriggerTimetable(interval=...)")
        if run_immediately:
            raise NotSupportedByUpdraft("CronTriggerTimetable(run_immediately=...)")
        self.cron = cron
        self.timezone = timezone


def outlet_documents(key, values, where):
    """A task's `outlets` or `inlets` as the document stores them; anything else than assets
    (Airflow 2 lineage objects, aliases) is refused by name."""
    if values is None:
        return []
    if isinstance(values, BaseAsset) and not isinstance(values, _Condition):
        values = [values]
    docs = []
    for value in values:
        if isinstance(value, Asset):
            docs.append(value.to_document())
        elif type(value).__name__ in ("AssetAlias", "DatasetAlias"):
            raise NotSupportedByUpdraft("AssetAlias", f"{key}= in {where}")
        else:
            raise NotSupportedByUpdraft(f"{type(value).__name__} in {key} (lineage)",
                                        f"{key}= in {where}")
    return docs


class AssetEvent:
    """One event of `triggering_asset_events`: the asset, its extra, where it came from."""

    def __init__(self, doc):
        asset = doc.get("asset") or {}
        self.asset = Asset(name=asset.get("name"), uri=asset.get("uri"), group=asset.get("group"))
        self.extra = doc.get("extra") or {}
        self.source_dag_id = doc.get("source_dag_id")
        self.source_task_id = doc.get("source_task_id")
        self.source_run_id = doc.get("source_run_id")
        self.source_map_index = doc.get("source_map_index", -1)
        stamp = doc.get("timestamp")
        self.timestamp = datetime.datetime.fromisoformat(stamp) if stamp else None

    def __repr__(self):
        return (f"AssetEvent(asset={self.asset!r}, source_dag_id={self.source_dag_id!r}, "
                f"source_run_id={self.source_run_id!r}, timestamp={self.timestamp!r})")


class TriggeringAssetEvents(dict):
    """The events that triggered the run, by asset URI; an `Asset` works as a key too."""

    def __getitem__(self, key):
        if isinstance(key, Asset):
            key = key.uri
        return super().__getitem__(key)

    def __contains__(self, key):
        if isinstance(key, Asset):
            key = key.uri
        return super().__contains__(key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def triggering_asset_events(doc):
    return TriggeringAssetEvents({
        uri: [AssetEvent(e) for e in events] for uri, events in (doc or {}).items()
    })
