"""DockerOperator: an `operator: docker` task for updraft's worker, with Airflow's arguments."""

from conftest import tasks_by_id

DOCKER_DAG = """
    from datetime import datetime, timedelta
    from airflow import DAG
    from airflow.providers.docker.operators.docker import DockerOperator

    class Mount(dict):
        # What docker.types.Mount is: a dict with Docker's API keys.
        def __init__(self, target, source, type="bind", read_only=False):
            super().__init__(Target=target, Source=source, Type=type, ReadOnly=read_only)

    with DAG("boxes", start_date=datetime(2024, 1, 1), schedule=None):
        DockerOperator(task_id="full", image="etl:{{ params.tag }}",
                       command="python run.py --day {{ ds }}",
                       environment={"DAY": "{{ ds }}", "N": 3},
                       private_environment={"TOKEN": "s3cret"},
                       mounts=[Mount(target="/data", source="/srv/data", read_only=True),
                               "/tmp/in:/in"],
                       working_dir="/data", user="1000:1000", network_mode="none",
                       auto_remove="success", mem_limit="512m", cpus=0.5,
                       docker_url="unix:///run/docker.sock", skip_on_exit_code=[42],
                       execution_timeout=timedelta(minutes=5))
        DockerOperator(task_id="plain", image="busybox")
        DockerOperator(task_id="listed", image="busybox", command="['echo', 'a b']",
                       auto_remove=True, mem_limit=1024 * 1024)
"""


def test_a_docker_task_serializes_to_operator_docker(dag_folder):
    dag_folder.write("boxes.py", DOCKER_DAG)
    tasks = tasks_by_id(dag_folder.dag("boxes.py"))
    full = tasks["full"]
    assert full["operator"] == "docker"
    assert full["docker"] == {
        "image": "etl:{{ params.tag }}",
        "command": "python run.py --day {{ ds }}",
        "environment": {"DAY": "{{ ds }}", "N": "3", "TOKEN": "s3cret"},
        "mounts": [{"target": "/data", "type": "bind", "source": "/srv/data",
                    "read_only": True},
                   {"source": "/tmp/in", "target": "/in", "type": "bind"}],
        "working_dir": "/data", "user": "1000:1000", "network_mode": "none",
        "docker_url": "unix:///run/docker.sock", "auto_remove": "success",
        "mem_limit": "512m", "cpus": 0.5,
    }
    assert full["skip_on_exit_code"] == [42]
    assert full["execution_timeout"] == 300
    assert tasks["plain"]["docker"] == {"image": "busybox"}
    # Airflow's DockerOperator skips on no exit code by default, unlike BashOperator.
    assert tasks["plain"]["skip_on_exit_code"] == []
    assert tasks["listed"]["docker"] == {"image": "busybox", "command": ["echo", "a b"],
                                         "auto_remove": "force", "mem_limit": 1048576}


def test_an_unsupported_docker_argument_names_itself(dag_folder):
    dag_folder.write("tty.py", """
        from airflow import DAG
        from airflow.providers.docker.operators.docker import DockerOperator
        with DAG("tty"):
            DockerOperator(task_id="t", image="busybox", tty=True)
    """)
    error = dag_folder.parse("tty.py")["error"]
    assert error["message"].startswith(
        "NotSupportedByUpdraft: DockerOperator's tty is not supported yet by updraft")
