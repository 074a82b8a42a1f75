"""An extract-transform-load pipeline written with TaskFlow: each task's return value is the
next task's argument, passed through XCom by updraft."""

import json
from datetime import datetime

from airflow.decorators import dag, task


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "python"],
)
def taskflow_etl():
    """Order totals: extract the day's orders, sum them, report the total."""

    @task
    def extract():
        orders = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(orders)

    @task(multiple_outputs=True)
    def transform(orders: dict):
        return {"total": round(sum(orders.values()), 2), "count": len(orders)}

    @task
    def load(total: float, count: int, ds=None):
        print(f"{ds}: {count} orders, total {total:.2f}")
        return total

    summary = transform(extract())
    load(summary["total"], summary["count"])


taskflow_etl()
