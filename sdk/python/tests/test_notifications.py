"""Callbacks, notifiers and deadline alerts in Python DAG files: the notifier documents the
loader reads, Airflow's import paths, and what updraft refuses by name."""

from conftest import tasks_by_id


def test_task_and_dag_callbacks_become_notifier_documents(dag_folder):
    dag_folder.write("callbacks.py", """
        from datetime import timedelta
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier
        from updraft.notifications import WebhookNotifier

        hook = WebhookNotifier("http://127.0.0.1:9/hook", headers={"X-Token": "t"})
        slack = SlackWebhookNotifier(text="{{ dag.dag_id }} failed: {{ exception }}")
        with DAG("callbacks", on_success_callback=hook, on_failure_callback=[slack, hook],
                 default_args={"email": "ops@example.com, dev@example.com",
                               "email_on_retry": False, "on_retry_callback": hook}):
            BashOperator(task_id="t", bash_command="exit 1",
                         on_failure_callback=SmtpNotifier(to="me@example.com",
                                                          subject="{{ ti.task_id }} failed"),
                         on_execute_callback=[hook])
    """)
    doc = dag_folder.dag("callbacks.py")
    webhook = {"kind": "webhook", "url": "http://127.0.0.1:9/hook", "headers": {"X-Token": "t"}}
    assert doc["on_success_callback"] == [webhook]
    assert doc["on_failure_callback"] == [
        {"kind": "slack", "slack_webhook_conn_id": "slack_default",
         "text": "{{ dag.dag_id }} failed: {{ exception }}"},
        webhook,
    ]
    task = tasks_by_id(doc)["t"]
    assert task["on_failure_callback"] == [
        {"kind": "smtp", "to": ["me@example.com"], "smtp_conn_id": "smtp_default",
         "subject": "{{ ti.task_id }} failed"},
    ]
    assert task["on_execute_callback"] == [webhook]
    assert task["on_retry_callback"] == [webhook]
    assert task["email"] == ["ops@example.com", "dev@example.com"]
    assert task["email_on_retry"] is False
    assert "email_on_failure" not in task  # Airflow's default (true) is left out


def test_deadline_alerts_become_documents(dag_folder):
    dag_folder.write("deadline.py", """
        from datetime import datetime, timedelta, timezone
        from airflow.sdk import DAG
        from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        from updraft import EmptyOperator

        with DAG("deadline", deadline=[
            DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                          interval=timedelta(minutes=15),
                          callback=AsyncCallback(SlackWebhookNotifier,
                                                 kwargs={"text": "{{ dag_run.run_id }} is late"})),
            DeadlineAlert(reference=DeadlineReference.FIXED_DATETIME(
                              datetime(2026, 1, 1, 6, tzinfo=timezone.utc)),
                          interval=timedelta(hours=1),
                          callback=SlackWebhookNotifier(slack_webhook_conn_id="alerts")),
        ]):
            EmptyOperator(task_id="t")
    """)
    doc = dag_folder.dag("deadline.py")
    assert doc["deadline"] == [
        {"reference": "dagrun_queued_at", "interval": 900.0,
         "callback": [{"kind": "slack", "slack_webhook_conn_id": "slack_default",
                       "text": "{{ dag_run.run_id }} is late"}]},
        {"reference": {"fixed_datetime": "2026-01-01T06:00:00+00:00"}, "interval": 3600.0,
         "callback": [{"kind": "slack", "slack_webhook_conn_id": "alerts",
                       "text": "This is a default message"}]},
    ]


def test_python_callbacks_become_references_to_where_they_were_given(dag_folder):
    dag_folder.write("pycb.py", """
        from airflow.sdk import DAG, task
        from airflow.notifications.basenotifier import BaseNotifier
        from airflow.providers.standard.operators.empty import EmptyOperator
        from updraft.notifications import WebhookNotifier

        def alert(context):
            pass

        class Mine(BaseNotifier):
            def notify(self, context):
                pass

        hook = WebhookNotifier("http://127.0.0.1:9/hook")
        with DAG("pycb", on_success_callback=alert, on_failure_callback=[hook, Mine()],
                 default_args={"on_retry_callback": alert}):
            EmptyOperator(task_id="t", on_failure_callback=[hook, alert, Mine()])

            @task(on_success_callback=alert)
            def add():
                return 1

            add()
            add()
    """)
    doc = dag_folder.dag("pycb.py")
    assert doc["on_success_callback"] == [
        {"kind": "python", "callback": "on_success_callback", "index": 0}]
    assert doc["on_failure_callback"] == [
        {"kind": "webhook", "url": "http://127.0.0.1:9/hook"},
        {"kind": "python", "callback": "on_failure_callback", "index": 1}]
    tasks = tasks_by_id(doc)
    assert tasks["t"]["on_failure_callback"] == [
        {"kind": "webhook", "url": "http://127.0.0.1:9/hook"},
        {"kind": "python", "callback": "on_failure_callback", "index": 1, "task_id": "t"},
        {"kind": "python", "callback": "on_failure_callback", "index": 2, "task_id": "t"}]
    assert tasks["t"]["on_retry_callback"] == [
        {"kind": "python", "callback": "on_retry_callback", "index": 0, "task_id": "t"}]
    # A TaskFlow call renamed after its arguments were read names itself as it ends up.
    assert tasks["add__1"]["on_success_callback"] == [
        {"kind": "python", "callback": "on_success_callback", "index": 0, "task_id": "add__1"}]


def test_python_code_as_a_deadline_callback_is_refused_by_name(dag_folder):
    dag_folder.write("deadline.py", """
        from datetime import timedelta
        from updraft import DAG
        from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
        DAG('d', deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                                        interval=timedelta(1), callback=AsyncCallback(print)))
    """)
    error = dag_folder.parse("deadline.py")["error"]
    assert error is not None
    assert error["message"].startswith(
        "NotSupportedByUpdraft: Python code as a deadline's callback"), error


def test_a_callback_that_is_not_callable_is_an_error_naming_the_key(dag_folder):
    dag_folder.write("bad.py", "from updraft import DAG\nDAG('d', on_failure_callback='x')\n")
    error = dag_folder.parse("bad.py")["error"]
    assert error is not None
    assert error["message"].startswith(
        "TypeError: on_failure_callback must be a callable, a notifier or a list"), error


def test_bad_notifier_arguments_fail_with_the_reason(dag_folder):
    cases = {
        "no_to": ("from airflow.providers.smtp.notifications.smtp import SmtpNotifier\n"
                  "SmtpNotifier(to=[])",
                  "ValueError: SmtpNotifier needs at least one address in to="),
        "reference": ("from airflow.sdk.definitions.deadline import DeadlineAlert\n"
                      "DeadlineAlert(reference='queued', interval=timedelta(1), callback=None)",
                      "TypeError: reference must be a DeadlineReference"),
        "webhook": ("from updraft.notifications import WebhookNotifier\nWebhookNotifier()",
                    "ValueError: WebhookNotifier needs url= or http_conn_id="),
    }
    for name, (code, message) in cases.items():
        dag_folder.write(f"{name}.py", "from datetime import timedelta\n" + code + "\n")
        error = dag_folder.parse(f"{name}.py")["error"]
        assert error is not None and error["message"].startswith(message), (name, error)
