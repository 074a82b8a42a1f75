"""`airflow.providers.docker.operators.docker`: updraft's DockerOperator."""

from updraft.docker import DockerOperator

__all__ = ["DockerOperator"]
