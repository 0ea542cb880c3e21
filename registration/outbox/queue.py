"""Queue e-mails: one row each, written in the caller's transaction, handed to a worker after
commit (see the package's docstring)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .. import audit
from ..models import Application, OutboxEmail
from .tasks import outbox_drain, send_outbox_email

log = logging.getLogger(__name__)


def outbox_enqueue(*, kind: str, application: Application, to: str | None = None) -> OutboxEmail:
    """Queue one e-mail to the parent (or to ``to``); it is sent once the transaction commits."""
    email = OutboxEmail.objects.create(
        application=application,
        kind=kind,
        to=to or application.email,
        language=application.language,
    )
    transaction.on_commit(lambda: schedule_send(email.pk), robust=True)
    return email


def outbox_enqueue_link_request(*, to: str, language: str) -> OutboxEmail:
    """Queue "e-mail me my link" for an address, not knowing whether it applied: the worker
    finds its application when it sends (_resolve_link_requests), or deletes the request."""
    email = OutboxEmail.objects.create(kind=OutboxEmail.Kind.LINK, to=to, language=language)
    transaction.on_commit(lambda: schedule_send(email.pk), robust=True)
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
    transaction.on_commit(schedule_drain, robust=True)
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
    transaction.on_commit(schedule_drain, robust=True)


def schedule_send(email_id: int) -> None:
    """Hand one e-mail to a worker. Never raises: if the broker is down the sweep sends it."""
    try:
        send_outbox_email.delay(email_id)
    except Exception:
        log.warning(
            "Could not enqueue outbox e-mail %s; the sweep will send it", email_id, exc_info=True
        )


def schedule_drain() -> None:
    try:
        outbox_drain.delay()
    except Exception:
        log.warning("Could not enqueue the outbox drain; the sweep will send", exc_info=True)


@transaction.atomic
def outbox_resend(emails: QuerySet[OutboxEmail], *, actor: User | None) -> int:
    """Staff send failed e-mails again, to the application's current address (the office may
    have corrected it), each with a line in its application's history. Returns how many were
    queued; e-mails that are not failed are left as they are."""
    count = 0
    for email in emails.filter(status=OutboxEmail.Status.FAILED).select_related("application"):
        to = email.application.email if email.application else email.to
        if OutboxEmail.objects.filter(pk=email.pk, status=OutboxEmail.Status.FAILED).update(
            status=OutboxEmail.Status.QUEUED, to=to, attempts=0, next_attempt_at=None
        ):
            count += 1
            audit.log_action(
                "email.resent",
                actor=actor,
                application=email.application,
                data={"email": email.pk, "kind": email.kind, "error": email.last_error[:200]},
            )
    if count:
        transaction.on_commit(schedule_drain, robust=True)
    return count
