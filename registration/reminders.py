"""The reminder e-mail before each session (SPEC §3): the hourly job queues one per current
winner, once; the e-mail is rendered when sent, from the place held then."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from lottery.models import LotteryRun

from . import audit
from .models import Application, Option, OutboxEmail, Session
from .outbox.queue import outbox_enqueue_bulk


def reminders_send(*, now: dt.datetime | None = None) -> int:
    """Queue the reminder e-mail of every current winner whose session is near, once. Steps:

    1. find the options of drawn editions whose reminder is due and whose session has not
       started (a job that was down catches up, until the session starts);
    2. per session, in one transaction, lock the session row: two runs of this job (beat
       firing twice, a retried task) queue one after the other, and the second one's check
       sees the rows the first one committed;
    3. queue a reminder for each active application holding a place in a due option and
       having no reminder yet: the outbox row is the record, so a re-run sends nothing, and a
       parent promoted later still gets one at the next run;
    4. log how many were queued. The e-mails are rendered when sent, from the place held then.
    Returns how many reminders were queued.
    """
    now = now or timezone.now()
    due: dict[int, list[Option]] = defaultdict(list)
    options = (
        Option.objects.filter(
            session__date__gte=timezone.localdate(now),
            session__edition__lottery__state=LotteryRun.State.DRAWN,
        )
        .select_related("session__edition")
        .order_by("session_id", "pk")
    )
    for option in options:
        if option.reminder_due_at() <= now < option.session.starts():
            due[option.session_id].append(option)

    queued = 0
    for session_id, session_options in due.items():
        with transaction.atomic():
            session = (
                Session.objects.select_for_update().select_related("edition").get(pk=session_id)
            )
            already = OutboxEmail.objects.filter(
                kind=OutboxEmail.Kind.REMINDER, application=OuterRef("pk")
            )
            recipients = list(
                Application.objects.active()
                .filter(place__option__in=session_options)
                .exclude(Exists(already))
                .only("pk", "email", "language")
                .order_by("pk")
            )
            if not recipients:
                continue
            count = outbox_enqueue_bulk(kind=OutboxEmail.Kind.REMINDER, applications=recipients)
            audit.log_action(
                "reminders.queued",
                edition=session.edition,
                data={
                    "session": session.code,
                    "options": [o.code for o in session_options],
                    "count": count,
                },
            )
            queued += count
    return queued
