"""What a parent with a place needs for the day: the admission ticket, the calendar file, the
online viewing link and the reminder e-mail (SPEC §3, My application).

The ticket's QR code holds the application number signed with the site's key and nothing else:
a lost printout or a photo of it tells a finder no name, and reception reads the number back
with read_ticket(). It has no timestamp, so a ticket printed in January still works on the day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from lottery.models import LotteryRun, Place

from . import audit
from .mail import outbox_enqueue_bulk
from .models import Application, Option, OutboxEmail, Session

TICKET_SALT = "registration.ticket"
# When a session leaves online_link_shown_from empty.
ONLINE_LINK_DAYS_BEFORE = 3


class TicketInvalid(signing.BadSignature):
    """A scanned code that this site did not make, or that was altered."""


def make_ticket(number: str) -> str:
    """The text of the QR code: ``<number>:<signature>``."""
    return signing.Signer(salt=TICKET_SALT).sign(number)


def read_ticket(token: str) -> str:
    """The application number in a scanned ticket; raises TicketInvalid if it was not ours."""
    try:
        return signing.Signer(salt=TICKET_SALT).unsign(token.strip())
    except signing.BadSignature as e:
        raise TicketInvalid(str(e)) from e


def ticket_svg(token: str) -> SafeString:
    """The QR code as inline SVG: drawn on the server, so the page needs no script and no CDN.

    Scale 1 without width and height: the page's CSS sizes it. A white background and the
    quiet zone (border) keep it readable on a phone in dark mode."""
    svg = segno.make(token, error="m", micro=False).svg_inline(
        scale=1,
        border=4,
        omitsize=True,
        dark="#000",
        light="#fff",
        svgclass="ticket-qr",
        lineclass=None,
        title=_("QR code of your admission ticket"),
    )
    # crispEdges: without it browsers draw thin seams between the rows of modules.
    svg = svg.replace("<svg ", '<svg role="img" shape-rendering="crispEdges" ', 1)
    # segno writes the whole document from the token alone (our own signed text).
    return mark_safe(svg)  # noqa: S308


def current_place(application: Application) -> Place | None:
    """The place an active application holds now (after withdrawals and promotions)."""
    if application.status != Application.Status.ACTIVE:
        return None
    return (
        Place.objects.filter(application=application)
        .select_related("option__session__edition")
        .first()
    )


def online_link_shown_from(session: Session) -> dt.datetime:
    return session.online_link_shown_from or session.starts() - dt.timedelta(
        days=ONLINE_LINK_DAYS_BEFORE
    )


def online_link(place: Place | None, now: dt.datetime | None = None) -> str:
    """The viewing link of an online place once it may be shown; empty for anyone else."""
    if place is None or place.option.is_venue:
        return ""
    session = place.option.session
    if (now or timezone.now()) < online_link_shown_from(session):
        return ""
    return session.online_url


def session_ends(session: Session) -> dt.datetime:
    return dt.datetime.combine(
        session.date, session.ends_at, tzinfo=timezone.get_default_timezone()
    )


def admission_context(
    application: Application, place: Place | None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """What My application shows a parent holding a place: ticket, map, viewing link, calendar.

    ``place`` is the one result_context() loaded; a withdrawn application holds none."""
    if application.status != Application.Status.ACTIVE or place is None:
        return {"holding": None}
    session = place.option.session
    context: dict[str, Any] = {
        "holding": place,
        "holding_session": session,
        "holding_ends": session_ends(session),
    }
    if place.option.is_venue:
        context["ticket_svg"] = ticket_svg(make_ticket(application.number))
    else:
        context["online_url"] = online_link(place, now)
        context["online_link_from"] = online_link_shown_from(session)
    return context


def calendar_ics(
    *, application: Application, place: Place, now: dt.datetime | None = None
) -> bytes:
    """One VEVENT for the session held, in UTC (no VTIMEZONE needed), lines ending in CRLF.

    The summary is the seminar's neutral name, never the edition's title as staff typed it:
    calendars show it on lock screens and share it with others. No private link goes in:
    calendars are synced and shared, the link to My application is not for others."""
    now = now or timezone.now()
    session = place.option.session
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    title = _("Seminar: Diverse Learning Spaces and Safe Havens Outside School")

    event = Event()
    # Stable per application and session: a second download updates the same event, and a
    # move from the venue to online (same session) too.
    event.add("uid", f"{application.number}-{session.edition.code}-{session.code}@{host}")
    event.add("dtstamp", now.astimezone(dt.UTC))
    event.add("dtstart", session.starts().astimezone(dt.UTC))
    event.add("dtend", session_ends(session).astimezone(dt.UTC))
    event.add("summary", f"{title} ({session.name})")
    if place.option.is_venue:
        event.add("location", f"{session.venue}, {session.address}")
        if session.map_url:
            event.add("url", session.map_url)
        description = _(
            "Application number: %(number)s. Please bring your admission ticket (QR code) "
            "from your application page, printed or on your phone."
        ) % {"number": application.number}
    else:
        event.add("location", str(Option.Kind.ONLINE.label))
        description = _(
            "Application number: %(number)s. The viewing link is shown on your application "
            "page and e-mailed to you before the session."
        ) % {"number": application.number}
    event.add("description", description)

    calendar = Calendar()
    calendar.add("prodid", "-//Tokyo Metropolitan Government//Seminar registration//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical()


def reminder_due_at(option: Option) -> dt.datetime:
    """When the reminder of a place in this option goes out: ``reminder_days_before`` days
    before the session, and for an online place not before its viewing link may be shown, so
    that every online parent gets the link by e-mail in that one reminder."""
    session = option.session
    due = session.starts() - dt.timedelta(days=session.reminder_days_before)
    if not option.is_venue:
        due = max(due, online_link_shown_from(session))
    return due


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
        if reminder_due_at(option) <= now < option.session.starts():
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
