"""Assets in Python DAG files: `outlets`, schedules on assets with `&` / `|`, Airflow 2's
`Dataset`, `AssetOrTimeSchedule`, and what is refused by name."""

from conftest import tasks_by_id


def test_outlets_and_an_asset_condition_are_written_in_the_loaders_format(dag_folder):
    dag_folder.write("assets.py", """
        from airflow.sdk import DAG, Asset
        from airflow.providers.standard.operators.bash import BashOperator

        raw = Asset("s3://raw/orders")
        clean = Asset(name="clean", uri="s3://clean/orders", group="tables", extra={"t": 1})

        with DAG("produce", schedule=None):
            BashOperator(task_id="load", bash_command="true", outlets=[raw, clean],
                         inlets=[Asset("src")])

        with DAG("consume", schedule=raw & (clean | Asset("other"))):
            BashOperator(task_id="use", bash_command="true")
    """)
    produce = dag_folder.dag("assets.py", "produce")
    load = tasks_by_id(produce)["load"]
    assert load["outlets"] == [
        {"name": "s3://raw/orders", "uri": "s3://raw/orders"},
        {"name": "clean", "uri": "s3://clean/orders", "group": "tables", "extra": {"t": 1}},
    ]
    assert load["inlets"] == [{"name": "src", "uri": "src"}]
    consume = dag_folder.dag("assets.py", "consume")
    assert consume["schedule"] == {"all": [
        {"name": "s3://raw/orders", "uri": "s3://raw/orders"},
        {"any": [{"name": "clean", "uri": "s3://clean/orders", "group": "tables",
                  "extra": {"t": 1}},
                 {"name": "other", "uri": "other"}]},
    ]}


def test_a_list_of_datasets_is_all_of_them(dag_folder):
    dag_folder.write("datasets.py", """
        from airflow import DAG
        from airflow.datasets import Dataset
        from airflow.operators.empty import EmptyOperator

        with DAG("consume", schedule=[Dataset("s3://a"), Dataset("s3://b")]):
            EmptyOperator(task_id="use")
    """)
    doc = dag_folder.dag("datasets.py")
    assert doc["schedule"] == {"all": [{"name": "s3://a", "uri": "s3://a"},
                                       {"name": "s3://b", "uri": "s3://b"}]}


def test_asset_or_time_schedule_has_both(dag_folder):
    dag_folder.write("either.py", """
        import datetime
        from airflow.sdk import DAG, Asset
        from airflow.timetables.assets import AssetOrTimeSchedule
        from airflow.timetables.trigger import CronTriggerTimetable
        from airflow.operators.empty import EmptyOperator

        with DAG("either", start_date=datetime.datetime(2024, 1, 1),
                 schedule=AssetOrTimeSchedule(
                     timetable=CronTriggerTimetable("0 1 * * 3", timezone="UTC"),
                     assets=Asset("a") | Asset("b"))):
            EmptyOperator(task_id="use")
    """)
    doc = dag_folder.dag("either.py")
    assert doc["schedule"] == {"cron": "0 1 * * 3", "assets": {"any": [
        {"name": "a", "uri": "a"}, {"name": "b", "uri": "b"}]}}


def test_what_assets_cannot_be_is_an_import_error(dag_folder):
    cases = {
        "empty.py": ("Asset()", "TypeError"),
        "reserved.py": ("Asset(uri='airflow://x')", "ValueError"),
        "lineage.py": ("BashOperator(task_id='t', bash_command='true', outlets=['a file'])",
                       "NotSupportedByUpdraft"),
    }
    for name, (statement, error) in cases.items():
        dag_folder.write(name, f"""
            from airflow.sdk import DAG, Asset
            from airflow.operators.bash import BashOperator
            with DAG("{name[:-3]}"):
                {statement}
        """)
        message = dag_folder.parse(name)["error"]["message"]
        assert message.startswith(error), message
