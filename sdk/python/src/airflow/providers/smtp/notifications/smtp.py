"""`airflow.providers.smtp.notifications.smtp`: updraft's SmtpNotifier, delivered by
updraft itself."""

from updraft.notifications import SmtpNotifier, send_smtp_notification

__all__ = ["SmtpNotifier", "send_smtp_notification"]
