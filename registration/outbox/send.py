"""Send queued e-mails: claim each just before it goes, deliver it over one SMTP connection a
batch, retry temporary failures, and sweep what a lost task left behind (see the package's
docstring for the one window in which an e-mail can go twice)."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import audit
from ..models import Application, Option, OutboxEmail
from ..results import edition_options
from ..tokens import with_token
from . import rate
from .render import render

log = logging.getLogger(__name__)

BATCH_SIZE = 200


def _resolve_link_requests(email_ids: list[int]) -> None:
    """Give each queued link request among ``email_ids`` its application (ApplicationQuerySet
    .linked_to), or delete it: an address that never applied leaves nothing behind. Each is
    resolved once, by a conditional update, even with two workers on it."""
    requests = OutboxEmail.objects.filter(
        pk__in=email_ids,
        kind=OutboxEmail.Kind.LINK,
        application__isnull=True,
        status=OutboxEmail.Status.QUEUED,
    )
    for pk, to in requests.values_list("pk", "to"):
        unresolved = requests.filter(pk=pk)
        application = Application.objects.linked_to(to).first()
        with transaction.atomic():
            if application is None:
                unresolved.delete()
            # To the address the application holds: the one its parent typed when applying.
            elif unresolved.update(application=application, to=application.email):
                audit.log_action(
                    "application.link_resent", actor_label=audit.PARENT, application=application
                )


class MailServerUnavailable(Exception):
    """The SMTP server cannot be reached: stop this batch; the e-mails stay queued."""


def _claim(email: OutboxEmail) -> bool:
    """Claim one queued e-mail for this worker just before it is sent (queued → sending). False
    if another worker has it. Claiming one at a time means a worker killed mid-batch leaves at
    most one e-mail in "sending": the only one that might already have gone out."""
    now = timezone.now()
    return bool(
        OutboxEmail.objects.filter(pk=email.pk, status=OutboxEmail.Status.QUEUED).update(
            status=OutboxEmail.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def _deliver(
    email: OutboxEmail, connection: BaseEmailBackend, options: dict[str, Option] | None = None
) -> bool:
    """Send one claimed e-mail and record the outcome. Returns True if it was sent. Raises
    ConnectionError when the connection to the SMTP server was lost (after recording this
    e-mail's failure), so that the caller opens a new one."""
    try:
        subject, text, html = render(email, options=options)
    except Exception as e:  # a bug in rendering: try later, then show it to the office
        log.exception("Outbox e-mail %s could not be rendered", email.pk)
        _record_failure(email, repr(e), permanent=False)
        return False
    # The parent's token goes into the message only, never into the row that staff can read: a
    # stored link would let anyone in the office open My application as the parent.
    number = email.application.number if email.application else ""
    message = EmailMultiAlternatives(
        subject=subject,
        body=with_token(text, number),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        connection=connection,
        alternatives=[(with_token(html, number), "text/html")],
    )
    try:
        message.send()
    except smtplib.SMTPSenderRefused as e:  # our sender, not this parent: stop the batch
        _record_failure(email, f"{e.smtp_code} {e.smtp_error!r}", permanent=False)
        raise MailServerUnavailable(f"sender refused: {e.smtp_code} {e.smtp_error!r}") from e
    except smtplib.SMTPResponseException as e:  # the server answered a code for this message
        _record_failure(email, f"{e.smtp_code} {e.smtp_error!r}", permanent=e.smtp_code >= 500)
        _ready_for_next(connection, closing=e.smtp_code == 421)
        return False
    except smtplib.SMTPRecipientsRefused as e:
        permanent = any(code >= 500 for code, _ in e.recipients.values())
        _record_failure(email, repr(e.recipients), permanent=permanent)
        _ready_for_next(connection, closing=any(c == 421 for c, _ in e.recipients.values()))
        return False
    except (smtplib.SMTPException, OSError) as e:  # disconnected, timed out, reset
        _record_failure(email, repr(e), permanent=False)
        raise ConnectionError(str(e)) from e
    except Exception as e:  # anything else (a bad header, say): try later, then show the office
        log.exception("Outbox e-mail %s could not be sent", email.pk)
        _record_failure(email, repr(e), permanent=False)
        return False
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxEmail.Status.SENT,
        sent_at=timezone.now(),
        next_attempt_at=None,
        last_error="",
        subject=subject,
        body_text=text,
        body_html=html,
    )
    return True


def _ready_for_next(connection: BaseEmailBackend, *, closing: bool) -> None:
    """After a refusal the SMTP session must be reset before the next e-mail (smtplib does not
    always do it: a refused DATA command leaves the transaction open, and the next MAIL FROM
    would be refused with 503). A 421 closes the connection. Raises ConnectionError when the
    caller must open a new one."""
    smtp = getattr(connection, "connection", None)  # smtplib.SMTP of Django's SMTP backend
    if smtp is None:
        return
    if closing:
        raise ConnectionError("the server closed the connection (421)")
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError) as e:
        raise ConnectionError(f"RSET failed: {e!r}") from e


def retry_delay(attempts: int) -> dt.timedelta:
    """How long a temporary failure waits before the next try: 1, 2, 4 … × the base delay."""
    seconds = settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.OUTBOX_RETRY_MAX_SECONDS))


def _record_failure(email: OutboxEmail, error: str, *, permanent: bool) -> None:
    attempts = email.attempts + 1  # counted by _claim
    if permanent or attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        status, next_attempt_at = OutboxEmail.Status.FAILED, None
    else:
        status, next_attempt_at = OutboxEmail.Status.QUEUED, timezone.now() + retry_delay(attempts)
    log.warning("Outbox e-mail %s not sent (%s, attempt %s): %s", email.pk, status, attempts, error)
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=status, next_attempt_at=next_attempt_at, last_error=error[:2000]
    )


def _open(connection: BaseEmailBackend) -> None:
    try:
        connection.open()
    except Exception as e:
        raise MailServerUnavailable(repr(e)) from e


def outbox_send_many(email_ids: list[int]) -> int:
    """Send these e-mails over one SMTP connection, at the configured rate; returns how many
    this call sent. Raises MailServerUnavailable if the server cannot be reached; the e-mails
    not yet tried stay queued, untouched."""
    _resolve_link_requests(email_ids)
    emails = list(
        OutboxEmail.objects.filter(pk__in=email_ids, status=OutboxEmail.Status.QUEUED)
        .select_related(
            "application__edition",
            "application__choice_1__session",
            "application__choice_2__session",
            "application__choice_3__session",
            "application__lottery_result__option__session",
            "application__place__option__session",
        )
        .order_by("created_at", "pk")
    )
    if not emails:
        return 0
    options = edition_options({e.application.edition_id for e in emails if e.application})
    sent = 0
    connection = get_connection()
    _open(connection)
    try:
        for email in emails:
            if not _claim(email):
                continue
            # After the claim, so that e-mails claimed by another worker cost no slot; a worker
            # killed while it waits leaves one e-mail in "sending" that was never sent.
            rate.wait()
            try:
                edition_id = email.application.edition_id if email.application else None
                sent += _deliver(email, connection, options.get(edition_id) if edition_id else None)
            except ConnectionError:
                connection.close()
                _open(connection)
    finally:
        connection.close()
    return sent


def outbox_send(*, email_id: int) -> bool:
    try:
        return outbox_send_many([email_id]) == 1
    except MailServerUnavailable as e:
        log.warning("Mail server unavailable (%s): e-mail %s stays queued", e, email_id)
        return False


def _due(*, created_before: dt.datetime, now: dt.datetime, limit: int) -> list[int]:
    return list(
        OutboxEmail.objects.filter(status=OutboxEmail.Status.QUEUED, created_at__lte=created_before)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _send_due(*, created_before: dt.datetime, now: dt.datetime, limit: int) -> int:
    """Send due e-mails a batch per connection until none is left or the server is away. Every
    batch leaves the due set (sent, failed, claimed elsewhere, or waiting for a retry)."""
    sent = done = 0
    while done < limit:
        batch = _due(created_before=created_before, now=now, limit=min(BATCH_SIZE, limit - done))
        if not batch:
            break
        try:
            sent += outbox_send_many(batch)
        except MailServerUnavailable as e:
            log.warning("Mail server unavailable (%s): the sweep tries again later", e)
            break
        done += len(batch)
    return sent


def outbox_drain(*, limit: int = 1_000_000) -> int:
    """Send every queued e-mail that is due. Returns how many were sent."""
    now = timezone.now()
    return _send_due(created_before=now, now=now, limit=limit)


def outbox_sweep(*, now: dt.datetime | None = None, limit: int = 10_000) -> int:
    """Send what a lost task or a dead worker left behind, and the retries that are due.
    Returns how many e-mails were sent."""
    now = now or timezone.now()
    stale = OutboxEmail.objects.filter(
        status=OutboxEmail.Status.SENDING,
        claimed_at__lt=now - dt.timedelta(seconds=settings.OUTBOX_STALE_SENDING_SECONDS),
    )
    # An e-mail whose every try ended its worker (or the database) goes to the office.
    stale.filter(attempts__gte=settings.OUTBOX_MAX_ATTEMPTS).update(
        status=OutboxEmail.Status.FAILED, last_error="gave up: the worker stopped at every try"
    )
    stale.update(status=OutboxEmail.Status.QUEUED)
    created_before = now - dt.timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
    return _send_due(created_before=created_before, now=now, limit=limit)
