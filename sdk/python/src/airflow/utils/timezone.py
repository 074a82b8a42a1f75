"""Airflow's `airflow.utils.timezone` helpers: aware datetimes in UTC."""

import datetime as _dt

utc = _dt.timezone.utc


def datetime(*args, **kwargs):
    """A datetime in UTC unless `tzinfo` is given (Airflow's `timezone.datetime`)."""
    kwargs.setdefault("tzinfo", utc)
    return _dt.datetime(*args, **kwargs)


def utcnow():
    return _dt.datetime.now(utc)


def is_naive(value):
    return value.utcoffset() is None


def make_aware(value, timezone=None):
    if not is_naive(value):
        raise ValueError("make_aware expects a naive datetime")
    return value.replace(tzinfo=timezone or utc)


def convert_to_utc(value):
    if value is None:
        return None
    if is_naive(value):
        value = value.replace(tzinfo=utc)
    return value.astimezone(utc)


def parse(text):
    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return convert_to_utc(value)
