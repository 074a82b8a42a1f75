"""`Param`: a DAG parameter with a default and a JSON Schema subset, serialized as the params
spec format of updraft's DAG documents (type, enum, bounds, lengths, format, description)."""

import json

from .exceptions import NotSupportedByUpdraft, ParamValidationError

NOTSET = object()

# Keys the updraft params spec understands besides `default`.
SPEC_KEYS = ("type", "description", "title", "enum", "minimum", "maximum", "minLength",
             "maxLength", "format")
# Keys Airflow's trigger form uses for display only: they change nothing updraft checks.
DISPLAY_ONLY_KEYS = ("section", "values_display", "examples", "description_md",
                     "custom_html_form", "const")
ANY_TYPE = ["string", "number", "integer", "boolean", "array", "object"]


class Param:
    """A DAG param: `Param(5, type="integer", minimum=1, description="how many")`."""

    def __init__(self, default=NOTSET, description=None, **schema):
        self.value = default
        self.description = description
        for key in schema:
            if key not in SPEC_KEYS and key not in DISPLAY_ONLY_KEYS:
                raise NotSupportedByUpdraft(
                    f"Param schema key {key!r}",
                    "supported: " + ", ".join(k for k in SPEC_KEYS if k != "description"),
                )
        self.schema = schema

    @property
    def has_value(self):
        return self.value is not NOTSET

    def resolve(self, value=NOTSET, suppress_exception=False):
        """The param's value (the given one, else the default)."""
        if value is NOTSET:
            value = self.value
        if value is NOTSET:
            if suppress_exception:
                return None
            raise ParamValidationError("No value passed and Param has no default value")
        return value

    def dump(self):
        """The spec as an updraft DAG document writes it."""
        spec = {k: v for k, v in self.schema.items() if k in SPEC_KEYS}
        if self.description is not None:
            spec["description"] = self.description
        if self.has_value:
            spec["default"] = self.value
        elif "type" not in spec:
            # No default and no type: a value of any type must be given, as Airflow requires.
            spec["type"] = list(ANY_TYPE)
        return spec

    def __repr__(self):
        return f"Param({self.value!r}, {self.schema!r})"


class ParamsDict(dict):
    """A DAG's params: reading a key gives the param's value, as Airflow's ParamsDict does."""

    def __init__(self, values=None):
        super().__init__()
        for key, value in (values or {}).items():
            self[key] = value

    def __setitem__(self, key, value):
        if not isinstance(value, Param):
            value = Param(value)
        super().__setitem__(key, value)

    def __getitem__(self, key):
        return super().__getitem__(key).resolve(suppress_exception=True)

    def get_param(self, key):
        return super().__getitem__(key)

    def dump(self):
        return {key: self.get_param(key).dump() for key in self}

    def update(self, other=(), **kwargs):
        pairs = other.items() if hasattr(other, "items") else other
        for key, value in list(pairs) + list(kwargs.items()):
            if isinstance(other, ParamsDict) and key in other:
                value = other.get_param(key)
            self[key] = value


def serialize_params(params):
    """The `params` mapping of a DAG document, or a TypeError naming the param that JSON cannot
    hold."""
    out = {}
    for name in params:
        param = params.get_param(name) if isinstance(params, ParamsDict) else params[name]
        if not isinstance(param, Param):
            param = Param(param)
        if not param.schema and param.description is None and param.has_value:
            entry = param.value
            # A plain mapping with `type` or `default` would be read as a spec: wrap it.
            if isinstance(entry, dict) and ("type" in entry or "default" in entry):
                entry = {"type": "object", "default": entry}
        else:
            entry = param.dump()
        try:
            json.dumps(entry, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TypeError(f"param {name!r} cannot be stored as JSON: {err}") from None
        out[name] = entry
    return out
