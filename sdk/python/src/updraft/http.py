"""`HttpOperator` (Airflow's `http` provider): one request to an endpoint of an `http`
connection. Without Python callables it runs natively in updraft's worker (`operator: http`);
with `response_check` or `response_filter` it is a Python task that makes the request itself,
with the standard library, as Airflow's `HttpHook` would (docs/python-protocol.md)."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from .baseoperator import BaseOperator
from .exceptions import AirflowException, NotSupportedByUpdraft

# Extra keys that configure Airflow's `requests` session instead of naming headers.
_SESSION_KEYS = {"stream", "verify", "proxies", "cert", "max_redirects", "trust_env", "timeout",
                 "allow_redirects", "check_response"}


class Response:
    """What `response_check` and `response_filter` get: the parts of a `requests.Response`
    tasks use."""

    def __init__(self, status_code, reason, headers, content, url):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    @property
    def ok(self):
        return self.status_code < 400

    def json(self, **kwargs):
        return json.loads(self.text, **kwargs)

    def raise_for_status(self):
        if not self.ok:
            raise AirflowException(f"{self.status_code}:{self.reason}")


class HttpOperator(BaseOperator):
    """Calls `endpoint` of the `http_conn_id` connection with `method`; the response body is
    the XCom (or what `response_filter` makes of the response)."""

    template_fields = ("endpoint", "data", "headers")
    template_fields_renderers = {"headers": "json", "data": "py"}
    template_ext = ()
    ui_color = "#f4a460"

    def __init__(self, *, endpoint=None, method="POST", data=None, headers=None,
                 response_check=None, response_filter=None, extra_options=None,
                 http_conn_id="http_default", log_response=False, auth_type=None,
                 tcp_keep_alive=True, tcp_keep_alive_idle=120, tcp_keep_alive_count=20,
                 tcp_keep_alive_interval=30, pagination_function=None, deferrable=False,
                 retry_args=None, **kwargs):
        for name, value in (("auth_type", auth_type), ("pagination_function",
                            pagination_function), ("retry_args", retry_args)):
            if value is not None:
                raise NotSupportedByUpdraft(f"HttpOperator's {name}")
        if deferrable:
            raise NotSupportedByUpdraft("Deferrable operators (HttpOperator(deferrable=True))")
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.method = (method or "POST").upper()
        self.endpoint = endpoint or ""
        self.data = data
        self.headers = headers or {}
        self.response_check = response_check
        self.response_filter = response_filter
        self.extra_options = extra_options or {}
        self.log_response = log_response
        # The worker makes the request unless a Python callable must see the response.
        self._updraft_kind = "python" if (response_check or response_filter) else "http"

    def http_document(self):
        """The `http:` of the task's document (`operator: http`)."""
        doc = {"http_conn_id": self.http_conn_id, "method": self.method,
               "endpoint": self.endpoint}
        if self.data is not None:
            if isinstance(self.data, dict):
                doc["data"] = {str(k): str(v) for k, v in self.data.items()}
            elif isinstance(self.data, (str, int, float)):
                doc["data"] = str(self.data)
            else:
                raise TypeError(f"HttpOperator data must be a str or a dict, not "
                                f"{type(self.data).__name__}")
        if self.headers:
            doc["headers"] = {str(k): str(v) for k, v in self.headers.items()}
        if self.extra_options.get("check_response") is False:
            doc["expected_status"] = list(range(100, 600))
        if self.log_response:
            doc["log_response"] = True
        return doc

    def execute(self, context):
        response = call(self.http_conn_id, self.method, self.endpoint, self.data,
                        self.headers, self.extra_options)
        if self.log_response:
            print(response.text, flush=True)
        if self.extra_options.get("check_response", True):
            if not response.ok:
                print(f"HTTP error: {response.reason}\n{response.text}", flush=True)
                raise AirflowException(f"{response.status_code}:{response.reason}")
        if self.response_check is not None and not self.response_check(response):
            raise AirflowException("Response check returned False.")
        if self.response_filter is not None:
            return self.response_filter(response)
        return response.text


class SimpleHttpOperator(HttpOperator):
    """Airflow 2's name of HttpOperator."""


def base_url(connection):
    host = connection.host or ""
    if "://" in host:
        base = host
    else:
        base = f"{connection.schema or 'http'}://{host}"
    if connection.port:
        base += f":{connection.port}"
    return base


def join_url(base, endpoint):
    if base and not base.endswith("/") and endpoint and not endpoint.startswith("/"):
        return f"{base}/{endpoint}"
    return (base or "") + (endpoint or "")


def call(conn_id, method, endpoint, data, headers, extra_options):
    """One request as Airflow's `HttpHook.run` makes it; the response, whatever its status."""
    from .models import Connection

    connection = Connection.get_connection_from_secrets(conn_id)
    url = join_url(base_url(connection), endpoint)
    all_headers = {}
    extra = connection.extra_dejson if hasattr(connection, "extra_dejson") else {}
    for key, value in (extra or {}).items():
        if key not in _SESSION_KEYS and isinstance(value, str):
            all_headers[key] = value
    all_headers.update({str(k): str(v) for k, v in (headers or {}).items()})
    if connection.login:
        token = f"{connection.login}:{connection.password or ''}".encode()
        all_headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    body = None
    if method == "GET" and data:
        query = urllib.parse.urlencode(data) if isinstance(data, dict) else str(data)
        url += ("&" if "?" in url else "?") + query
    elif method != "HEAD" and data is not None:
        if isinstance(data, dict):
            body = urllib.parse.urlencode(data).encode()
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            body = str(data).encode()
    print(f"Calling HTTP method {method} {url}", flush=True)
    request = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    timeout = extra_options.get("timeout") if extra_options else None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.reason, dict(answer.headers), answer.read(),
                            url)
    except urllib.error.HTTPError as err:
        return Response(err.code, err.reason, dict(err.headers or {}), err.read(), url)
