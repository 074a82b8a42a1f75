"""HttpOperator: without Python callables it is an `operator: http` task for updraft's worker;
with `response_check`/`response_filter` it is a Python task making the request itself."""

import http.server
import json
import threading

import pytest

from conftest import tasks_by_id

HTTP_DAG = """
    from datetime import datetime
    from airflow import DAG
    from airflow.providers.http.operators.http import HttpOperator
    from airflow.operators.http_operator import SimpleHttpOperator

    with DAG("calls", start_date=datetime(2024, 1, 1), schedule=None):
        HttpOperator(task_id="native", http_conn_id="api", method="get",
                     endpoint="items/{{ ds }}", data={"page": 2},
                     headers={"Accept": "application/json"}, log_response=True)
        SimpleHttpOperator(task_id="posted", endpoint="create", data='{"a": 1}')
        HttpOperator(task_id="filtered", http_conn_id="api", method="GET", endpoint="items",
                     response_check=lambda response: response.status_code == 200,
                     response_filter=lambda response: response.json()["items"][1])
"""


def test_an_http_task_without_callables_is_native(dag_folder):
    dag_folder.write("calls.py", HTTP_DAG)
    tasks = tasks_by_id(dag_folder.dag("calls.py"))
    assert tasks["native"]["operator"] == "http"
    assert tasks["native"]["http"] == {
        "http_conn_id": "api", "method": "GET", "endpoint": "items/{{ ds }}",
        "data": {"page": "2"}, "headers": {"Accept": "application/json"},
        "log_response": True}
    assert tasks["posted"]["http"] == {"http_conn_id": "http_default", "method": "POST",
                                       "endpoint": "create", "data": '{"a": 1}'}
    assert tasks["filtered"]["operator"] == "python"


@pytest.fixture
def items_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        seen = []

        def do_GET(self):
            Handler.seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps({"items": [{"id": 1}, {"id": 2}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], Handler.seen
    server.shutdown()


def test_a_filtered_http_task_calls_the_connection_and_returns_the_filtered_value(
        dag_folder, worker, items_server):
    port, seen = items_server
    file = dag_folder.write("calls.py", HTTP_DAG)
    code, finish, log = worker.run(
        file, "calls", "filtered",
        env={"AIRFLOW_CONN_API": f"http://user:pw-secret@127.0.0.1:{port}"})
    assert code == 0, log
    assert finish["state"] == "success"
    assert finish["return_value"] == {"id": 2}
    assert seen[0][0] == "/items"
    assert seen[0][1].startswith("Basic ")
