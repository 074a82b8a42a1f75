"""Notifiers and deadline alerts: what task and DAG callbacks (`on_failure_callback`, …) and
`deadline=` may name. Each notifier becomes a notifier document in the DAG (kind `webhook`,
`slack` or `smtp`); updraft delivers it off the scheduler's path, retried with backoff, with
its text fields rendered against the event's context (`{{ dag.dag_id }}`, `{{ ti.task_id }}`,
`{{ run_id }}`, `{{ exception }}`, …).

A callback that is Python code (a function, or a `BaseNotifier` subclass with its own
`notify(context)`) becomes a document of kind `python` naming where it was given (the task,
the argument, its position in it); updraft calls it by running the DAG file again at the run's
version (`updraft._callback`)."""

import datetime

from .exceptions import NotSupportedByUpdraft

CALLBACK_KEYS = ("on_failure_callback", "on_success_callback", "on_retry_callback",
                 "on_execute_callback", "on_skipped_callback")
DAG_CALLBACK_KEYS = ("on_success_callback", "on_failure_callback")

PYTHON_DEADLINE_CALLBACKS = ("Python code as a deadline's callback (name a SlackWebhookNotifier, "
                             "SmtpNotifier or WebhookNotifier instead)")


class BaseNotifier:
    """Airflow's `BaseNotifier`: a subclass implements `notify(context)`; calling the notifier
    with the context renders its `template_fields` and calls `notify`. The notifiers below
    are delivered by updraft itself; any other subclass runs as a Python callback."""

    template_fields = ()

    def notify(self, context):
        raise NotImplementedError

    def render_template_fields(self, context):
        from .runtime_values import resolve
        from .templates import render

        for field in self.template_fields:
            value = getattr(self, field, None)
            if value is not None:
                setattr(self, field, resolve(value, context, render=lambda t: render(t, context)))

    def __call__(self, context, *args, **kwargs):
        if not isinstance(context, dict):
            raise TypeError("a notifier is called with the callback's context (a dict)")
        self.render_template_fields(context)
        self.notify(context)

    def _document(self):
        """The notifier document updraft delivers on its own; `None`: Python code to call."""
        return None


def _addresses(key, value):
    if value is None:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    if isinstance(value, (list, tuple, set)):
        return [str(a) for a in value]
    raise TypeError(f"{key} must be an address or a list of addresses, not {value!r}")


class SlackWebhookNotifier(BaseNotifier):
    """Airflow's `SlackWebhookNotifier` (Slack incoming webhooks): posts `text` (and `blocks`,
    `attachments`) to the webhook of `slack_webhook_conn_id` (its password: the URL or the
    token after `https://hooks.slack.com/services/`)."""

    template_fields = ("text", "blocks", "attachments")

    def __init__(self, *, slack_webhook_conn_id="slack_default",
                 text="This is a default message", blocks=None, unfurl_links=None,
                 unfurl_media=None, attachments=None, timeout=None, proxy=None,
                 retry_handlers=None, webhook_url=None):
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, not {type(text).__name__}")
        self.slack_webhook_conn_id = slack_webhook_conn_id
        self.webhook_url = webhook_url
        self.text = text
        self.blocks = blocks
        self.unfurl_links = unfurl_links
        self.unfurl_media = unfurl_media
        self.attachments = attachments
        self.timeout = timeout
        self.proxy = proxy
        self.retry_handlers = retry_handlers

    def _document(self):
        doc = {"kind": "slack", "slack_webhook_conn_id": self.slack_webhook_conn_id,
               "text": self.text}
        for key in ("webhook_url", "blocks", "attachments", "unfurl_links", "unfurl_media"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc


class SmtpNotifier(BaseNotifier):
    """Airflow's `SmtpNotifier`: an HTML email through the SMTP server of `smtp_conn_id`."""

    template_fields = ("from_email", "to", "subject", "html_content", "cc", "bcc")

    def __init__(self, to, from_email=None, subject=None, html_content=None, files=None,
                 cc=None, bcc=None, mime_subtype="mixed", mime_charset="utf-8",
                 custom_headers=None, smtp_conn_id="smtp_default", auth_type="basic",
                 template=None):
        if files:
            raise NotSupportedByUpdraft("attachments (files=) of SmtpNotifier", "files=")
        self.to = _addresses("to", to)
        if not self.to:
            raise ValueError("SmtpNotifier needs at least one address in to=")
        self.from_email = from_email
        self.subject = subject
        self.html_content = html_content
        self.cc = _addresses("cc", cc)
        self.bcc = _addresses("bcc", bcc)
        self.smtp_conn_id = smtp_conn_id

    def _document(self):
        doc = {"kind": "smtp", "to": self.to, "smtp_conn_id": self.smtp_conn_id}
        for key in ("from_email", "subject", "html_content"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        for key in ("cc", "bcc"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc


class WebhookNotifier(BaseNotifier):
    """Updraft's webhook: a JSON `POST` of the event (`{"event", "notification_id",
    "context"}`) to `url`, or to the host of an `http` connection joined with `endpoint`."""

    def __init__(self, url=None, *, http_conn_id=None, endpoint="", headers=None):
        if url is None and http_conn_id is None:
            raise ValueError("WebhookNotifier needs url= or http_conn_id=")
        self.url = url
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.headers = dict(headers or {})

    def _document(self):
        doc = {"kind": "webhook"}
        if self.url is not None:
            doc["url"] = self.url
        if self.http_conn_id is not None:
            doc["http_conn_id"] = self.http_conn_id
        if self.endpoint:
            doc["endpoint"] = self.endpoint
        if self.headers:
            doc["headers"] = {str(k): str(v) for k, v in self.headers.items()}
        return doc


# Airflow's function-style names for the same notifiers.
send_slack_webhook_notification = SlackWebhookNotifier
send_smtp_notification = SmtpNotifier


def callback_items(value):
    """A callback argument's callbacks, in order: the positions `kind: python` names."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def callback_documents(key, value, task_id=None, python=True):
    """The notifier documents of a callback argument: a notifier, a callable or a list of
    them. Python code becomes a reference to `key`'s `index`-th callback of `task_id` (of the
    DAG without one); with `python=False` it is refused."""
    out = []
    for index, item in enumerate(callback_items(value)):
        if not callable(item):
            raise TypeError(f"{key} must be a callable, a notifier or a list of them, "
                            f"not {item!r}")
        doc = item._document() if isinstance(item, BaseNotifier) else None
        if doc is None:
            if not python:
                name = getattr(item, "__qualname__", None) or type(item).__name__
                raise NotSupportedByUpdraft(PYTHON_DEADLINE_CALLBACKS, f"{key}={name}")
            doc = {"kind": "python", "callback": key, "index": index}
            if task_id is not None:
                doc["task_id"] = task_id
        out.append(doc)
    return out


class _Reference:
    def __init__(self, name, datetime_=None):
        self.name = name
        self.datetime = datetime_

    def _document(self):
        if self.name == "fixed_datetime":
            moment = self.datetime
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return {"fixed_datetime": moment.isoformat()}
        return self.name

    def __repr__(self):
        return f"DeadlineReference.{self.name.upper()}"


class DeadlineReference:
    """What a deadline counts from (Airflow 3.1's `DeadlineReference`)."""

    DAGRUN_LOGICAL_DATE = _Reference("dagrun_logical_date")
    DAGRUN_QUEUED_AT = _Reference("dagrun_queued_at")

    @staticmethod
    def FIXED_DATETIME(datetime_):  # noqa: N802 (Airflow's name)
        if not isinstance(datetime_, datetime.datetime):
            raise TypeError("FIXED_DATETIME needs a datetime.datetime")
        return _Reference("fixed_datetime", datetime_)


class AsyncCallback:
    """Airflow 3.1's callback of a deadline: a notifier class (or a notifier) and the keyword
    arguments it is made with."""

    def __init__(self, callback_callable, kwargs=None):
        self.callback_callable = callback_callable
        self.kwargs = dict(kwargs or {})

    def _notifier(self):
        target = self.callback_callable
        if isinstance(target, str):
            from . import compat  # noqa: F401 (the airflow shim resolves the path)
            module_name, _, name = target.rpartition(".")
            module = __import__(module_name, fromlist=[name])
            target = getattr(module, name)
        if isinstance(target, type) and issubclass(target, BaseNotifier):
            return target(**self.kwargs)
        if isinstance(target, BaseNotifier):
            return target
        name = getattr(target, "__qualname__", repr(target))
        raise NotSupportedByUpdraft(PYTHON_DEADLINE_CALLBACKS, f"AsyncCallback({name})")


SyncCallback = AsyncCallback


class DeadlineAlert:
    """Airflow 3.1's deadline alert: a run not finished `interval` after `reference` calls
    `callback` once."""

    def __init__(self, reference, interval, callback):
        if not isinstance(reference, _Reference):
            raise TypeError("reference must be a DeadlineReference, e.g. "
                            "DeadlineReference.DAGRUN_QUEUED_AT")
        if not isinstance(interval, datetime.timedelta):
            raise TypeError(f"interval must be a datetime.timedelta, not {interval!r}")
        self.reference = reference
        self.interval = interval
        self.callback = callback

    def _document(self):
        callback = self.callback
        if isinstance(callback, AsyncCallback):
            callback = callback._notifier()
        return {
            "reference": self.reference._document(),
            "interval": self.interval.total_seconds(),
            "callback": callback_documents("deadline callback", callback, python=False),
        }


def deadline_documents(value):
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, DeadlineAlert):
            raise TypeError(f"deadline must be a DeadlineAlert or a list of them, not {item!r}")
    return [item._document() for item in items]
