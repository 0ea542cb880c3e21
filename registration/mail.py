"""The e-mail outbox: a row written in the caller's transaction, sent after commit, swept later.

A row names what to send (kind, application, language); the message is rendered when it is
sent, from data that is committed by then. So a draw can queue 100,000 result e-mails in its
own transaction with one bulk insert.

Sending is claimed with a conditional update (queued → sending), so a task that runs twice, or
the sweep racing a task, sends an e-mail once. A worker killed between the SMTP hand-off and the
"sent" update leaves the row in "sending"; the sweep re-queues it after
OUTBOX_STALE_SENDING_SECONDS, the one window in which a duplicate can go out.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from .models import Application, OutboxEmail
from .tokens import my_application_url

log = logging.getLogger(__name__)

OUTBOX_STALE_SENDING_SECONDS = 600
BATCH_SIZE = 200


def outbox_enqueue(*, kind: str, application: Application, to: str | None = None) -> OutboxEmail:
    """Queue one e-mail to the parent (or to ``to``); it is sent once the transaction commits."""
    email = OutboxEmail.objects.create(
        application=application,
        kind=kind,
        to=to or application.email,
        language=application.language,
    )
    transaction.on_commit(lambda: schedule_send(email.pk))
    return email


def outbox_enqueue_bulk(*, kind: str, applications: Iterable[Application]) -> int:
    """Queue one e-mail per application with one insert; a drain task sends them after commit."""
    rows = OutboxEmail.objects.bulk_create(
        (
            OutboxEmail(application=a, kind=kind, to=a.email, language=a.language)
            for a in applications
        ),
        batch_size=5000,
    )
    transaction.on_commit(schedule_drain)
    return len(rows)


def outbox_enqueue_query(*, kind: str, applications: QuerySet[Application]) -> None:
    """Queue one e-mail per application of a query with a single INSERT … SELECT (a draw
    queues 100,000 this way in about a second); a drain task sends them after commit."""
    select, params = applications.values_list("pk", "email", "language").query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(c)
        for c in (
            "application_id",
            "to",
            "language",
            "kind",
            "status",
            "attempts",
            "subject",
            "body_text",
            "body_html",
            "last_error",
            "created_at",
        )
    )
    sql = (
        f"INSERT INTO {quote(OutboxEmail._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT q.*, %s, %s, 0, '', '', '', '', %s FROM ({select}) q"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (str(kind), "queued", timezone.now(), *params))
    transaction.on_commit(schedule_drain)


def schedule_send(email_id: int) -> None:
    """Hand one e-mail to a worker. Never raises: if the broker is down the sweep sends it."""
    from .tasks import send_outbox_email

    try:
        send_outbox_email.delay(email_id)
    except Exception:
        log.warning(
            "Could not enqueue outbox e-mail %s; the sweep will send it", email_id, exc_info=True
        )


def schedule_drain() -> None:
    from .tasks import outbox_drain

    try:
        outbox_drain.delay()
    except Exception:
        log.warning("Could not enqueue the outbox drain; the sweep will send", exc_info=True)


def render(email: OutboxEmail) -> tuple[str, str, str]:
    """Subject, text and HTML of an e-mail, in the parent's language."""
    assert email.application is not None
    application = email.application
    context: dict[str, Any] = {
        "application": application,
        "link": my_application_url(application.number, email.language),
        "office_phone": settings.OFFICE_PHONE,
        "site_url": settings.SITE_URL,
    }
    if email.kind in (OutboxEmail.Kind.RESULT, OutboxEmail.Kind.PROMOTED):
        from lottery.results import result_context

        context.update(result_context(application))
    with translation.override(email.language):
        subject = " ".join(render_to_string(f"emails/{email.kind}_subject.txt", context).split())
        # Name the seminar, never the children's situation, so the subject is safe on a lock screen.
        prefix = gettext("[Learning spaces seminar]")
        subject = f"{prefix} {subject}"
        text = render_to_string(f"emails/{email.kind}.txt", context)
        html = render_to_string(f"emails/{email.kind}.html", context)
    return subject, text, html


def _claim(email_ids: list[int]) -> list[OutboxEmail]:
    """Claim queued e-mails for this worker; any already claimed elsewhere are left out."""
    claimed = []
    for pk in email_ids:
        if OutboxEmail.objects.filter(pk=pk, status=OutboxEmail.Status.QUEUED).update(
            status=OutboxEmail.Status.SENDING,
            claimed_at=timezone.now(),
            attempts=F("attempts") + 1,
        ):
            claimed.append(pk)
    return list(
        OutboxEmail.objects.filter(pk__in=claimed).select_related(
            "application__edition",
            "application__choice_1__session",
            "application__choice_2__session",
            "application__choice_3__session",
        )
    )


def _send_claimed(email: OutboxEmail, connection: BaseEmailBackend) -> bool:
    subject, text, html = render(email)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except smtplib.SMTPResponseException as e:
        _record_failure(
            email, f"{e.smtp_code} {e.smtp_error!r}", permanent=500 <= e.smtp_code < 600
        )
        return False
    except smtplib.SMTPRecipientsRefused as e:
        _record_failure(email, repr(e.recipients), permanent=True)
        return False
    except Exception as e:  # connection refused, timeouts: try again later
        _record_failure(email, repr(e), permanent=False)
        return False
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxEmail.Status.SENT,
        sent_at=timezone.now(),
        last_error="",
        subject=subject,
        body_text=text,
        body_html=html,
    )
    return True


def _record_failure(email: OutboxEmail, error: str, *, permanent: bool) -> None:
    status = OutboxEmail.Status.FAILED if permanent else OutboxEmail.Status.QUEUED
    log.warning("Outbox e-mail %s not sent (%s): %s", email.pk, status, error)
    OutboxEmail.objects.filter(pk=email.pk).update(status=status, last_error=error[:2000])


def outbox_send_many(email_ids: list[int]) -> int:
    """Send these e-mails over one SMTP connection; returns how many this call sent."""
    emails = _claim(email_ids)
    if not emails:
        return 0
    with get_connection() as connection:
        return sum(_send_claimed(email, connection) for email in emails)


def outbox_send(*, email_id: int) -> bool:
    return outbox_send_many([email_id]) == 1


def _due(before: dt.datetime, limit: int) -> list[int]:
    return list(
        OutboxEmail.objects.filter(status=OutboxEmail.Status.QUEUED, created_at__lte=before)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_drain(*, limit: int = 100_000) -> int:
    """Send every queued e-mail, a batch per connection. Returns how many were sent."""
    sent = 0
    while sent < limit:
        batch = _due(timezone.now(), BATCH_SIZE)
        if not batch:
            break
        sent_now = outbox_send_many(batch)
        sent += sent_now
        if sent_now == 0 and len(batch) < BATCH_SIZE:
            break  # what is left keeps failing for now: the sweep retries later
    return sent


def outbox_sweep(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Send what a lost task left behind. Returns how many e-mails were sent."""
    now = now or timezone.now()
    OutboxEmail.objects.filter(
        status=OutboxEmail.Status.SENDING,
        claimed_at__lt=now - dt.timedelta(seconds=OUTBOX_STALE_SENDING_SECONDS),
    ).update(status=OutboxEmail.Status.QUEUED)
    due = _due(now - dt.timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS), limit)
    return sum(outbox_send_many(due[i : i + BATCH_SIZE]) for i in range(0, len(due), BATCH_SIZE))
