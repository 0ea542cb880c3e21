"""The e-mail outbox: write in the caller's transaction, send after commit, sweep what was left.

Sending is claimed with a conditional update (queued → sending), so a task that runs twice, or
the sweep racing the task, sends an e-mail once. A worker killed between the SMTP hand-off and
the "sent" update leaves the row in "sending"; the sweep re-queues it after
OUTBOX_STALE_SENDING_SECONDS, which is the one window in which a duplicate can go out.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .models import Application, OutboxEmail

log = logging.getLogger(__name__)

OUTBOX_STALE_SENDING_SECONDS = 600


def outbox_enqueue(
    *,
    kind: str,
    to: str,
    language: str,
    context: dict[str, Any],
    application: Application | None = None,
) -> OutboxEmail:
    """Render ``emails/<kind>`` in ``language`` and queue it; sent once the transaction commits."""
    with translation.override(language):
        ctx = {"office_phone": settings.OFFICE_PHONE, "site_url": settings.SITE_URL, **context}
        subject = " ".join(render_to_string(f"emails/{kind}_subject.txt", ctx).split())
        body_text = render_to_string(f"emails/{kind}.txt", ctx)
        body_html = render_to_string(f"emails/{kind}.html", ctx)
    email = OutboxEmail.objects.create(
        application=application,
        kind=kind,
        to=to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        language=language,
    )
    transaction.on_commit(lambda: schedule_send(email.pk))
    return email


def schedule_send(email_id: int) -> None:
    """Hand the e-mail to a worker. Never raises: if the broker is down the sweep sends it."""
    from .tasks import send_outbox_email

    try:
        send_outbox_email.delay(email_id)
    except Exception:
        log.warning(
            "Could not enqueue outbox e-mail %s; the sweep will send it", email_id, exc_info=True
        )


def outbox_send(*, email_id: int) -> bool:
    """Send one queued e-mail. Returns True if this call sent it."""
    now = timezone.now()
    claimed = OutboxEmail.objects.filter(pk=email_id, status=OutboxEmail.Status.QUEUED).update(
        status=OutboxEmail.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if claimed != 1:
        return False  # already sent, being sent, or failed for good
    email = OutboxEmail.objects.get(pk=email_id)
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send()
    except smtplib.SMTPResponseException as e:
        permanent = 500 <= e.smtp_code < 600
        _record_failure(email, f"{e.smtp_code} {e.smtp_error!r}", permanent=permanent)
        return False
    except smtplib.SMTPRecipientsRefused as e:
        _record_failure(email, repr(e.recipients), permanent=True)
        return False
    except Exception as e:  # connection refused, timeouts: try again later
        _record_failure(email, repr(e), permanent=False)
        return False
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxEmail.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return True


def _record_failure(email: OutboxEmail, error: str, *, permanent: bool) -> None:
    status = OutboxEmail.Status.FAILED if permanent else OutboxEmail.Status.QUEUED
    log.warning("Outbox e-mail %s not sent (%s): %s", email.pk, status, error)
    OutboxEmail.objects.filter(pk=email.pk).update(status=status, last_error=error[:2000])


def outbox_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Send what a lost task left behind. Returns how many e-mails were sent."""
    now = now or timezone.now()
    OutboxEmail.objects.filter(
        status=OutboxEmail.Status.SENDING,
        claimed_at__lt=now - dt.timedelta(seconds=OUTBOX_STALE_SENDING_SECONDS),
    ).update(status=OutboxEmail.Status.QUEUED)
    due = (
        OutboxEmail.objects.filter(
            status=OutboxEmail.Status.QUEUED,
            created_at__lte=now - dt.timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(outbox_send(email_id=pk) for pk in list(due))
