from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def lottery_tick() -> None:
    """Freeze and draw the editions whose time has come (idempotent)."""
    services.lottery_scheduled()
