"""Airflow 2's path of TriggerDagRunOperator."""

from updraft.cross_dag import TriggerDagRunOperator

__all__ = ["TriggerDagRunOperator"]
