"""A small extract-transform-load pipeline written with TaskFlow: each task's return value is
the next task's argument, passed through XCom by updraft."""

from datetime import datetime

from airflow.decorators import dag, task


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "python"],
)
def taskflow_etl():
    """Weather station readings: read the day's temperatures, summarise them, publish."""

    @task
    def read_station():
        return [{"hour": h, "celsius": c} for h, c in ((6, 11.5), (12, 19.0), (18, 15.5))]

    @task(multiple_outputs=True)
    def summarise(readings: list):
        temperatures = [r["celsius"] for r in readings]
        return {"mean": sum(temperatures) / len(temperatures), "peak": max(temperatures)}

    @task
    def publish(mean: float, peak: float, ds=None):
        print(f"{ds}: mean {mean:.1f} C, peak {peak:.1f} C")
        return round(mean, 1)

    summary = summarise(read_station())
    publish(summary["mean"], summary["peak"])


taskflow_etl()
