from celery import shared_task

from . import audit, mail, retention, tickets


@shared_task(ignore_result=True)
def send_outbox_email(email_id: int) -> None:
    mail.outbox_send(email_id=email_id)


@shared_task(ignore_result=True)
def outbox_drain() -> None:
    mail.outbox_drain()


@shared_task(ignore_result=True)
def outbox_sweep() -> None:
    mail.outbox_sweep()


@shared_task(ignore_result=True)
def reminders_send() -> None:
    """Hourly: queue the reminders that are due (idempotent)."""
    tickets.reminders_send()


@shared_task(ignore_result=True)
def retention_shred() -> None:
    """Daily: shred the personal data of editions past their retention period (idempotent)."""
    retention.retention_shred(actor_label=audit.SYSTEM)
