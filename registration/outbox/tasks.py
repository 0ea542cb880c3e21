"""The outbox's Celery tasks. Their names stay those they had in registration/tasks.py, so that
the routes to the "mail" queue, the beat schedule and messages queued before a deploy still
find them."""

from celery import shared_task

from . import send


@shared_task(name="registration.tasks.send_outbox_email", ignore_result=True)
def send_outbox_email(email_id: int) -> None:
    send.outbox_send(email_id=email_id)


@shared_task(name="registration.tasks.outbox_drain", ignore_result=True)
def outbox_drain() -> None:
    send.outbox_drain()


@shared_task(name="registration.tasks.outbox_sweep", ignore_result=True)
def outbox_sweep() -> None:
    send.outbox_sweep()
