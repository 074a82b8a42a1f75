"""Rendering of templated task arguments in Python tasks. With jinja2 installed, templates are
Jinja (undefined names are errors, as Airflow's StrictUndefined); without it, a small renderer
handles `{{ name }}` and `{{ a.b.c }}` (attribute or key lookups) only and refuses anything
else with an error that says so."""

import re

try:  # pragma: no cover - which branch runs depends on the environment
    import jinja2
except ImportError:  # pragma: no cover
    jinja2 = None

_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")


class TemplateError(Exception):
    """A template that cannot be rendered."""


# Airflow's date filters: `{{ logical_date | ds }}`.
FILTERS = {
    "ds": lambda value: value.strftime("%Y-%m-%d"),
    "ds_nodash": lambda value: value.strftime("%Y%m%d"),
    "ts": lambda value: value.isoformat(),
    "ts_nodash": lambda value: value.strftime("%Y%m%dT%H%M%S"),
    "ts_nodash_with_tz": lambda value: value.isoformat().replace("-", "").replace(":", ""),
}
_environment = None


def _jinja():
    global _environment
    if _environment is None:
        _environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
        _environment.filters.update(FILTERS)
    return _environment


def render(text, context):
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    if jinja2 is not None:
        try:
            return _jinja().from_string(text).render(**context)
        except jinja2.TemplateError as err:
            raise TemplateError(f"{type(err).__name__}: {err} in template {text!r}") from None
    return render_simple(text, context)


def render_simple(text, context):
    def lookup(match):
        path = match.group(1).split(".")
        if path[0] not in context:
            raise TemplateError(f"{path[0]!r} is undefined in template {text!r}")
        value = context[path[0]]
        for name in path[1:]:
            if isinstance(value, dict) and name in value:
                value = value[name]
            elif hasattr(value, name):
                value = getattr(value, name)
            else:
                raise TemplateError(f"{match.group(1)!r} is undefined in template {text!r}")
        return "" if value is None else str(value)

    rest = _SIMPLE.sub("", text)
    if "{{" in rest or "{%" in rest or "{#" in rest:
        raise TemplateError(
            f"template {text!r} needs Jinja (install jinja2 in the task's Python): without it "
            f"only {{{{ name }}}} and {{{{ a.b }}}} are rendered"
        )
    return _SIMPLE.sub(lookup, text)
