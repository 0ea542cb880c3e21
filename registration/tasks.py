"""The Celery tasks of registration. Celery finds this module in each app; the outbox's tasks
are defined in outbox/tasks.py under their names here and registered by importing it."""

from celery import shared_task

from . import audit, reminders, retention
from .outbox import tasks as outbox_tasks

__all__ = ["outbox_tasks", "reminders_send", "retention_shred"]


@shared_task(ignore_result=True)
def reminders_send() -> None:
    """Hourly: queue the reminders that are due (idempotent)."""
    reminders.reminders_send()


@shared_task(ignore_result=True)
def retention_shred() -> None:
    """Daily: shred the personal data of editions past their retention period (idempotent)."""
    retention.retention_shred(actor_label=audit.SYSTEM)
