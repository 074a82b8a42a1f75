"""Drives updraft's REST API with Airflow's own Python client (apache-airflow-client).

Every step goes through the client's typed API and asserts the values it answers, so a
response the client's strict models cannot read fails here. Only the token comes from a plain
POST to /auth/token, as Airflow's documentation does it (the client has no call for it).

Usage: airflow_client_check.py URL USERNAME PASSWORD DAG_ID
The DAG must have exactly two tasks, `greet` (whose log says "hello from updraft") and
`after`, downstream of it.
"""

import datetime
import json
import sys
import time
import urllib.request

import airflow_client.client as afc
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.pool_body import PoolBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody
from airflow_client.client.models.variable_body import VariableBody

RUN_TIMEOUT_S = 60


def token(url, username, password):
    request = urllib.request.Request(
        f"{url}/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def check(url, username, password, dag_id):
    config = afc.Configuration(host=url, access_token=token(url, username, password))
    with afc.ApiClient(config) as client:
        dags = afc.DAGApi(client)
        runs = afc.DagRunApi(client)
        tis = afc.TaskInstanceApi(client)

        listed = dags.get_dags(limit=100)
        assert dag_id in [d.dag_id for d in listed.dags], listed
        assert listed.total_entries >= 1
        step("list DAGs")

        assert dags.patch_dag(dag_id, DAGPatchBody(is_paused=True)).is_paused is True
        assert dags.get_dag(dag_id).is_paused is True
        assert dags.patch_dag(dag_id, DAGPatchBody(is_paused=False)).is_paused is False
        assert dags.get_dag(dag_id).is_paused is False
        step("pause and unpause")

        run_id = "triggered_by_airflow_client"
        logical_date = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
        body = TriggerDAGRunPostBody(
            dag_run_id=run_id, logical_date=logical_date, conf={"who": "client"}, note="hi"
        )
        run = runs.trigger_dag_run(dag_id, body)
        assert run.dag_run_id == run_id and run.dag_id == dag_id, run
        assert run.logical_date == logical_date, run
        assert run.conf == {"who": "client"}, run
        assert run.state in ("queued", "running", "success"), run
        step("trigger a run")

        deadline = time.monotonic() + RUN_TIMEOUT_S
        while run.state not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {run.state} after {RUN_TIMEOUT_S} s"
            time.sleep(0.1)
            run = runs.get_dag_run(dag_id, run_id)
        assert run.state == "success", run
        assert run.end_date is not None and run.start_date <= run.end_date, run
        step("wait for the run")

        listed = tis.get_task_instances(dag_id, run_id)
        assert listed.total_entries == 2, listed
        states = {ti.task_id: ti.state for ti in listed.task_instances}
        assert states == {"greet": "success", "after": "success"}, states
        assert all(ti.try_number == 1 for ti in listed.task_instances), listed
        step("list task instances")

        log = tis.get_log(dag_id, run_id, "greet", 1)
        lines = log.content.actual_instance
        text = "\n".join(getattr(line, "event", line) for line in lines)
        assert "hello from updraft" in text, text
        step("read a log")

        variables = afc.VariableApi(client)
        made = variables.post_variable(
            VariableBody(key="client_check", value="42", description="set by the client")
        )
        assert made.key == "client_check" and made.value == "42", made
        read = variables.get_variable("client_check")
        assert read.value == "42" and read.description == "set by the client", read
        step("set and read a variable")

        pools = afc.PoolApi(client)
        made = pools.post_pool(PoolBody(name="client_pool", slots=3, description="for the client"))
        assert made.name == "client_pool" and made.slots == 3 and made.open_slots == 3, made
        read = pools.get_pool("client_pool")
        assert read.slots == 3 and read.description == "for the client", read
        step("create a pool")


steps = 0


def step(name):
    global steps
    steps += 1
    print(f"ok {steps} - {name}", flush=True)


if __name__ == "__main__":
    check(*sys.argv[1:5])
    print(f"all {steps} steps ok")
