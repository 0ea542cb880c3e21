"""Retention (SPEC.md §4): an edition's personal data is shredded ``RETENTION_DAYS`` after its
last session; the numbers behind the statistics and the lottery (whose audit file holds no
personal data) stay.

Applications are overwritten in place, never deleted: lottery results, places, arrivals and the
audit log point at them, and what the statistics count (status, choices, party, municipality,
grades, language, dates) are columns of those same rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session as BrowserSession
from django.db import transaction
from django.db.models import CharField, Max, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from childcare.models import Child

from . import audit
from .models import Application, AuditEvent, DuplicateFlag, Edition, OutboxEmail

log = logging.getLogger(__name__)

# Where the parents' pages (registration/views.py) keep an application in the browser session:
# the draft between 入力 and 送信 (every answer, allergies included), and the address the done
# page shows. Shredding an edition deletes every session that holds one of its keys.
DRAFT_KEY = "application-draft:{code}"
DONE_KEY = "application-done:{code}"


@dataclass(frozen=True)
class Shredded:
    edition: str
    last_session: dt.date
    counts: dict[str, int]


@dataclass(frozen=True)
class RetentionReport:
    editions: list[Shredded]
    expired_sessions: int


def retention_shred(
    *, actor_label: str, dry_run: bool = False, now: dt.datetime | None = None
) -> RetentionReport:
    """Shred what is past its retention period. Steps:

    1. find the editions, not yet shredded, whose last session is ``RETENTION_DAYS`` ago or more;
    2. shred each one in its own transaction (``_edition_shred``);
    3. delete expired browser sessions, which may still hold the draft of an application form.

    With ``dry_run`` it only counts the rows that would go. Safe to run any number of times, and
    concurrently: each edition is claimed once.
    """
    now = now or timezone.now()
    cutoff = timezone.localdate(now) - dt.timedelta(days=settings.RETENTION_DAYS)
    last_sessions: dict[int, dt.date] = dict(
        Edition.objects.filter(shredded_at__isnull=True)
        .annotate(last_session=Max("sessions__date"))
        .filter(last_session__lte=cutoff)
        .values_list("pk", "last_session")
    )
    done = []
    for edition in Edition.objects.filter(pk__in=last_sessions).order_by("code"):
        if dry_run:
            counts: dict[str, int] | None = {
                **_counts(_personal_rows(edition)),
                "browser_sessions": len(_edition_sessions(edition, now=now)),
            }
        else:
            counts = _edition_shred(edition=edition, actor_label=actor_label, now=now)
        if counts is not None:
            done.append(Shredded(edition.code, last_sessions[edition.pk], counts))
    expired = BrowserSession.objects.filter(expire_date__lt=now)
    expired_sessions = expired.count() if dry_run else expired.delete()[0]
    return RetentionReport(done, expired_sessions)


@transaction.atomic
def _edition_shred(
    *, edition: Edition, actor_label: str, now: dt.datetime
) -> dict[str, int] | None:
    """Overwrite or delete every personal field of one edition, and log the counts. Returns None
    if another run claimed the edition first."""
    # The claim: of two runs at once (the daily task and a staff member's command), one shreds.
    if not Edition.objects.filter(pk=edition.pk, shredded_at__isnull=True).update(shredded_at=now):
        return None
    rows = _personal_rows(edition)
    counts = _counts(rows)
    rows["applications"].update(
        family_name="",
        given_name="",
        family_name_kana="",
        given_name_kana="",
        # Unique per row: the database allows one active application per address and edition.
        email=Concat(Value("shredded-"), Cast("pk", CharField()), Value("@shredded.invalid")),
        phone="",
        status_reason="",
        needs_sign_language=False,
        needs_wheelchair_space=False,
        needs_other="",
        questions="",
    )
    rows["children"].delete()
    rows["duplicate_flags"].delete()
    # Sent e-mails keep their kind, status and times; SMTP errors quote the address.
    rows["outbox_emails"].update(to="", subject="", body_text="", body_html="", last_error="")
    rows["audit_events"].update(reason="")
    rows["audit_events"].filter(application__isnull=False).update(data={})
    counts["browser_sessions"] = BrowserSession.objects.filter(
        session_key__in=_edition_sessions(edition, now=now)
    ).delete()[0]
    audit.log_action(
        "edition.shredded",
        actor_label=actor_label,
        edition=edition,
        data={"retention_days": settings.RETENTION_DAYS, **counts},
    )
    log.info("Shredded the personal data of edition %s: %s", edition.code, counts)
    return counts


def _personal_rows(edition: Edition) -> dict[str, QuerySet[Any]]:
    """Per table, the rows of an edition that hold personal data."""
    return {
        "applications": Application.objects.filter(edition=edition),
        "children": Child.objects.filter(application__edition=edition),
        "duplicate_flags": DuplicateFlag.objects.filter(application__edition=edition),
        "outbox_emails": OutboxEmail.objects.filter(application__edition=edition),
        # An application's history (its details and the reasons staff typed), and any reason
        # given for an action on the edition itself; the edition's own details are lottery
        # hashes and counts, and stay.
        "audit_events": AuditEvent.objects.filter(
            Q(application__edition=edition) | (Q(edition=edition) & ~Q(reason=""))
        ),
    }


def _edition_sessions(edition: Edition, *, now: dt.datetime) -> list[str]:
    """The unexpired browser sessions that hold a draft or the address of one of this edition's
    applications (expired ones go in retention_shred's last step). Each session is decoded:
    its data is signed, not searchable in SQL."""
    keys = {DRAFT_KEY.format(code=edition.code), DONE_KEY.format(code=edition.code)}
    store = SessionStore()
    return [
        key
        for key, data in BrowserSession.objects.filter(expire_date__gte=now)
        .values_list("session_key", "session_data")
        .iterator(chunk_size=2000)
        if keys & store.decode(data).keys()
    ]


def _counts(rows: dict[str, QuerySet[Any]]) -> dict[str, int]:
    return {table: query.count() for table, query in rows.items()}
