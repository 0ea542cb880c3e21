"""What a parent with a place needs for the day: the admission ticket's QR code, the calendar
file and the online viewing link (SPEC §3, My application). The ticket's signed text is
tokens.make_ticket; the reminder e-mail is registration/reminders.py."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from lottery.models import Place

from .models import Application, Option
from .tokens import make_ticket


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


def online_link(place: Place | None, now: dt.datetime | None = None) -> str:
    """The viewing link of an online place once it may be shown; empty for anyone else."""
    if place is None or place.option.is_venue:
        return ""
    session = place.option.session
    if (now or timezone.now()) < session.online_link_from():
        return ""
    return session.online_url


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
        "holding_ends": session.ends(),
    }
    if place.option.is_venue:
        context["ticket_svg"] = ticket_svg(make_ticket(application.number))
    else:
        context["online_url"] = online_link(place, now)
        context["online_link_from"] = session.online_link_from()
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
    event.add("dtend", session.ends().astimezone(dt.UTC))
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
