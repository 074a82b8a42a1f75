"""Variables and connections, read from the environment first (`AIRFLOW_VAR_<KEY>`,
`AIRFLOW_CONN_<ID>`, as Airflow's environment secrets backend) and then from updraft's store
through the worker. Outside a running task only the environment is available."""

import json
import os

from . import supervisor
from .exceptions import AirflowNotFoundException, NotSupportedByUpdraft
from .param import NOTSET


def _no_store(what):
    return AirflowNotFoundException(
        f"{what} is not available here: updraft's variables and connections are read inside a "
        f"running task (set the AIRFLOW_VAR_*/AIRFLOW_CONN_* environment variable, or give a "
        f"default, to read it while the DAG file is parsed)"
    )


class Variable:
    """Airflow's `Variable`: `Variable.get(key, default_var=..., deserialize_json=...)` and
    `Variable.set(key, value, serialize_json=...)`."""

    @classmethod
    def get(cls, key, default_var=NOTSET, deserialize_json=False, default=NOTSET):
        if default is not NOTSET:
            default_var = default
        value = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
        if value is None:
            client = supervisor.current()
            if client is None:
                if default_var is not NOTSET:
                    return default_var
                raise _no_store(f"Variable {key!r}")
            reply = client.request("variable_get", key=key)
            if not reply.get("found"):
                if default_var is not NOTSET:
                    return default_var
                raise KeyError(f"Variable {key} does not exist")
            value = reply.get("value")
        return json.loads(value) if deserialize_json else value

    @classmethod
    def set(cls, key, value, description=None, serialize_json=False):
        if serialize_json:
            text = json.dumps(value, indent=2)
        else:
            text = value if isinstance(value, str) else str(value)
        client = supervisor.current()
        if client is None:
            raise _no_store(f"Variable.set({key!r})")
        client.request("variable_set", key=key, value=text)

    @classmethod
    def setdefault(cls, key, default, description=None, deserialize_json=False):
        value = cls.get(key, default_var=None, deserialize_json=deserialize_json)
        if value is None:
            cls.set(key, default, serialize_json=deserialize_json)
            return default
        return value

    @classmethod
    def delete(cls, key):
        raise NotSupportedByUpdraft("Variable.delete in a task")

    @classmethod
    def update(cls, key, value, serialize_json=False):
        cls.set(key, value, serialize_json=serialize_json)


class Connection:
    """A connection's fields (read-only: updraft's tasks do not create connections)."""

    def __init__(self, conn_id=None, conn_type=None, host=None, schema=None, login=None,
                 password=None, port=None, extra=None, description=None, uri=None):
        self.conn_id = conn_id
        self.conn_type = conn_type
        self.host = host
        self.schema = schema
        self.login = login
        self.password = password
        self.port = int(port) if port not in (None, "") else None
        self.extra = extra if extra is None or isinstance(extra, str) else json.dumps(extra)
        self.description = description
        if uri:
            self._parse_uri(uri)

    def _parse_uri(self, uri):
        import urllib.parse

        parts = urllib.parse.urlsplit(uri)
        self.conn_type = parts.scheme.replace("-", "_")
        self.host = urllib.parse.unquote(parts.hostname) if parts.hostname else None
        self.port = parts.port
        self.login = urllib.parse.unquote(parts.username) if parts.username else None
        self.password = urllib.parse.unquote(parts.password) if parts.password else None
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        self.schema = urllib.parse.unquote(path) or None
        query = dict(urllib.parse.parse_qsl(parts.query))
        self.extra = json.dumps(query) if query else None

    @property
    def extra_dejson(self):
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_uri(self):
        import urllib.parse

        scheme = (self.conn_type or "").replace("_", "-")
        auth = ""
        if self.login is not None or self.password is not None:
            auth = urllib.parse.quote(self.login or "", safe="")
            if self.password is not None:
                auth += ":" + urllib.parse.quote(self.password, safe="")
            auth += "@"
        host = self.host or ""
        if self.port is not None:
            host += f":{self.port}"
        uri = f"{scheme}://{auth}{host}"
        if self.schema:
            uri += "/" + urllib.parse.quote(self.schema, safe="")
        if self.extra_dejson:
            uri += "?" + urllib.parse.urlencode(self.extra_dejson)
        return uri

    def get_password(self):
        return self.password

    def get_extra(self):
        return self.extra

    @classmethod
    def get_connection_from_secrets(cls, conn_id):
        from_env = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if from_env is not None:
            if from_env.lstrip().startswith("{"):
                fields = json.loads(from_env)
                fields.pop("conn_id", None)
                return cls(conn_id=conn_id, **fields)
            return cls(conn_id=conn_id, uri=from_env)
        client = supervisor.current()
        if client is None:
            raise _no_store(f"Connection {conn_id!r}")
        reply = client.request("connection_get", conn_id=conn_id)
        if not reply.get("found"):
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        fields = dict(reply.get("connection") or {})
        fields["conn_id"] = conn_id
        known = ("conn_id", "conn_type", "host", "schema", "login", "password", "port", "extra",
                 "description")
        return cls(**{k: v for k, v in fields.items() if k in known})

    get = get_connection_from_secrets

    def __repr__(self):
        return f"Connection({self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"


class BaseHook:
    """Airflow's hook base: here only `get_connection`."""

    @classmethod
    def get_connection(cls, conn_id):
        return Connection.get_connection_from_secrets(conn_id)

    def get_conn(self):
        raise NotImplementedError
