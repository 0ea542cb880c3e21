"""After the draw, on My application: the admission ticket, the calendar file, the map and the
online viewing link, and the result and promotion e-mails that point to the ticket."""

from __future__ import annotations

import datetime as dt
import functools
import re
from types import SimpleNamespace

import icalendar
import pytest
import time_machine
from django.core import mail, signing
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from lottery import services as lottery
from lottery.models import LotteryResult
from registration import services, tickets, tokens
from registration.models import OutboxEmail
from registration.outbox import send as outbox
from registration.tokens import make_token
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import closed_edition

pytestmark = pytest.mark.django_db

ONLINE_URL = "https://stream.example.jp/watch/abc123"
MAP_URL = "https://maps.example.jp/?q=tama-hall"


@functools.cache
def token_for(number: str) -> str:
    """One link per application: a new token each second would make page checks miss."""
    return make_token(number)


def my_url(application, name="my_application"):  # type: ignore[no-untyped-def]
    return reverse(f"registration:{name}", kwargs={"token": token_for(application.number)})


@pytest.fixture
def drawn(db, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """A drawn edition: a venue winner and an online winner at Tama, one winner and one
    waitlisted parent for Central Tokyo's single venue seat, and a withdrawn Tama winner."""
    edition = closed_edition()
    tama = edition.sessions.get(code="tama")
    tama.online_url = ONLINE_URL
    tama.map_url = MAP_URL
    tama.save()
    center_venue = option(edition, "center:venue")
    center_venue.capacity = 1
    center_venue.save()
    venue = ApplicationFactory(edition=edition, adults=2, children=1)
    online = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    contenders = ApplicationFactory.create_batch(2, edition=edition, choice_1=center_venue)
    withdrawn = ApplicationFactory(edition=edition)
    lottery.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    with django_capture_on_commit_callbacks(execute=True):
        lottery.lottery_draw(
            edition=edition, actor=None, actor_label="staff", randomness="beacon 1"
        )
    services.application_withdraw(application=withdrawn)
    outcome = {r.application_id: r.outcome for r in LotteryResult.objects.all()}
    center_winner, waitlisted = sorted(contenders, key=lambda a: outcome[a.pk] != "won")
    assert outcome[waitlisted.pk] == "waitlisted"
    return SimpleNamespace(
        edition=edition,
        tama=tama,
        venue=venue,
        online=online,
        center_winner=center_winner,
        waitlisted=waitlisted,
        withdrawn=withdrawn,
    )


def test_it_shows_the_ticket_to_a_venue_winner(client, drawn):
    page = client.get(my_url(drawn.venue)).content.decode()
    svg = tickets.ticket_svg(tokens.make_ticket(drawn.venue.number))
    assert svg in page
    assert my_url(drawn.venue, "my_ticket") in page

    ticket = client.get(my_url(drawn.venue, "my_ticket"))
    assert ticket.status_code == 200
    html = ticket.content.decode()
    assert svg in html
    assert drawn.venue.number in html
    assert "@media print" in html
    assert "<script" not in html
    # The printed ticket names no one: the number is enough for reception.
    assert drawn.venue.family_name not in html and drawn.venue.email not in html


@pytest.mark.parametrize("who", ["online", "waitlisted", "withdrawn"])
def test_it_shows_no_ticket_to_online_winners_the_waitlisted_or_the_withdrawn(client, drawn, who):
    application = getattr(drawn, who)
    page = client.get(my_url(application)).content.decode()
    assert 'class="ticket-qr"' not in page
    assert my_url(application, "my_ticket") not in page

    ticket = client.get(my_url(application, "my_ticket"))
    assert ticket.status_code == 302
    assert ticket["Location"] == my_url(application)


def test_the_ticket_token_reads_back_to_the_application_number(drawn):
    token = tokens.make_ticket(drawn.venue.number)
    assert tokens.read_ticket(token) == drawn.venue.number
    assert tokens.read_ticket(f" {token}\n") == drawn.venue.number  # as a scanner types it
    # Nothing personal in the code: only the number and its signature.
    number, signature = token.split(":")
    assert number == drawn.venue.number
    assert drawn.venue.family_name not in token and drawn.venue.email not in token


def test_a_tampered_or_foreign_ticket_is_refused(drawn):
    token = tokens.make_ticket(drawn.venue.number)
    forged = token.replace(drawn.venue.number, drawn.online.number)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (forged, altered, drawn.venue.number, make_token(drawn.venue.number)):
        with pytest.raises(tokens.TicketInvalid):
            tokens.read_ticket(bad)
    # Reception catches the signing module's own exception.
    with pytest.raises(signing.BadSignature):
        tokens.read_ticket(forged)


def test_the_calendar_file_has_the_session_start_and_no_sensitive_word(client, drawn):
    response = client.get(my_url(drawn.venue, "my_calendar"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "attachment" in response["Content-Disposition"]
    body = response.content
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")

    calendar = icalendar.Calendar.from_ical(body)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == drawn.tama.starts()
    assert event.decoded("dtend") == drawn.tama.starts() + dt.timedelta(hours=3, minutes=30)
    assert str(event["uid"]).startswith(drawn.venue.number)
    assert "不登校" not in str(event["summary"])
    assert drawn.tama.venue in str(event["location"])
    assert str(event["url"]) == MAP_URL
    assert "dtstamp" in event


def test_an_online_winner_gets_a_calendar_file_too(client, drawn):
    response = client.get(my_url(drawn.online, "my_calendar"))
    (event,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert event.decoded("dtstart") == drawn.tama.starts()
    assert ONLINE_URL not in response.content.decode()  # calendars get shared


@pytest.mark.parametrize("who", ["waitlisted", "withdrawn"])
def test_it_offers_no_calendar_file_without_a_place(client, drawn, who):
    application = getattr(drawn, who)
    page = client.get(my_url(application)).content.decode()
    assert my_url(application, "my_calendar") not in page
    response = client.get(my_url(application, "my_calendar"))
    assert response.status_code == 302
    assert response["Location"] == my_url(application)


def test_my_application_shows_the_map_and_the_calendar_to_a_venue_winner(client, drawn):
    page = client.get(my_url(drawn.venue)).content.decode()
    assert MAP_URL in page
    assert my_url(drawn.venue, "my_calendar") in page


def test_the_online_link_is_hidden_before_its_default_time_and_shown_after(client, drawn):
    shown_from = drawn.tama.starts() - dt.timedelta(days=3)
    with time_machine.travel(shown_from - dt.timedelta(minutes=1), tick=False):
        page = client.get(my_url(drawn.online)).content.decode()
    assert ONLINE_URL not in page
    assert my_url(drawn.online, "my_calendar") in page
    with time_machine.travel(shown_from, tick=False):
        page = client.get(my_url(drawn.online)).content.decode()
    assert ONLINE_URL in page


def test_the_online_link_follows_the_time_staff_configured(client, drawn):
    drawn.tama.online_link_shown_from = drawn.tama.starts() - dt.timedelta(hours=2)
    drawn.tama.save()
    with time_machine.travel(drawn.tama.starts() - dt.timedelta(days=1), tick=False):
        assert ONLINE_URL not in client.get(my_url(drawn.online)).content.decode()
    with time_machine.travel(drawn.tama.starts() - dt.timedelta(hours=1), tick=False):
        assert ONLINE_URL in client.get(my_url(drawn.online)).content.decode()


@pytest.mark.parametrize("who", ["venue", "waitlisted", "withdrawn"])
def test_the_online_link_is_never_shown_to_anyone_but_online_winners(client, drawn, who):
    application = getattr(drawn, who)
    with time_machine.travel(drawn.tama.starts() - dt.timedelta(hours=1), tick=False):
        page = client.get(my_url(application)).content.decode()
    assert ONLINE_URL not in page


def test_an_online_place_loses_its_link_on_withdrawal(client, drawn):
    services.application_withdraw(application=drawn.online)
    with time_machine.travel(drawn.tama.starts() - dt.timedelta(hours=1), tick=False):
        assert ONLINE_URL not in client.get(my_url(drawn.online)).content.decode()


def _ticket_links(body: str) -> list[str]:
    return re.findall(r"https?://\S+/ticket/", body)


def _sent_to(application) -> EmailMultiAlternatives:  # type: ignore[no-untyped-def]
    """The message as the parent received it: the stored copy holds no working link."""
    (message,) = [m for m in mail.outbox if m.to == [application.email]][-1:]
    return message


def test_the_result_email_of_a_venue_winner_links_to_the_ticket(client, drawn):
    outbox.outbox_drain()
    message = _sent_to(drawn.venue)
    (link,) = _ticket_links(message.body)
    assert link in message.alternatives[0][0]
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert tickets.ticket_svg(tokens.make_ticket(drawn.venue.number)) in page.content.decode()

    for other in (drawn.online, drawn.waitlisted):
        email = OutboxEmail.objects.get(kind="result", application=other)
        assert _ticket_links(email.body_text) == []
        assert "/ticket/" not in email.body_html


def test_the_promotion_email_links_to_the_ticket(client, drawn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.application_withdraw(application=drawn.center_winner)
    promoted = OutboxEmail.objects.get(kind="promoted", application=drawn.waitlisted)
    assert promoted.status == "sent"
    (link,) = _ticket_links(_sent_to(drawn.waitlisted).body)
    assert client.get(link.removeprefix("http://testserver")).status_code == 200
