"""`airflow.providers.slack.notifications.slack_webhook`: updraft's SlackWebhookNotifier,
delivered by updraft itself."""

from updraft.notifications import SlackWebhookNotifier, send_slack_webhook_notification

__all__ = ["SlackWebhookNotifier", "send_slack_webhook_notification"]
