"""`airflow.providers.standard.operators.trigger_dagrun`: updraft's TriggerDagRunOperator."""

from updraft.cross_dag import TriggerDagRunOperator

__all__ = ["TriggerDagRunOperator"]
