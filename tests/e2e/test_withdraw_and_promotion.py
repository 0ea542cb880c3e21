"""A winner withdraws from the link in the result e-mail; the first waitlisted parent who fits
gets a place and an e-mail with the admission ticket."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from lottery.models import Place
from registration.models import OutboxEmail
from registration.outbox.send import outbox_drain
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def link_in(text: str, live_url: str) -> str:
    return re.search(re.escape(live_url) + r"/my/[^/\s\"<]+/", text).group(0)


def test_a_winner_withdraws_and_the_first_waitlisted_parent_who_fits_is_promoted(
    live_server, phone_page, shot, settings
):
    settings.SITE_URL = live_server.url
    edition = closed_edition(tama_venue=3)
    applicant(edition, "AAAAAAAA", ["tama:venue"], adults=2)
    applicant(edition, "DDDDDDDD", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"], adults=2, children=1)  # 3 people: no fit
    applicant(edition, "CCCCCCCC", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "DDDDDDDD", "BBBBBBBB", "CCCCCCCC"])
    outbox_drain()  # the result e-mails, as the worker sends them after the draw
    result = next(m for m in mail.outbox if "DDDDDDDD" in m.subject)
    page = phone_page
    page.goto(link_in(result.body, live_server.url))
    assert "DDDDDDDD" in page.content()
    shot(page, "01-my-application-won")
    # The result e-mail's one-click withdraw link leads to the confirmation step.
    withdraw = re.search(re.escape(live_server.url) + r"/my/[^/\s]+/withdraw/", result.body)
    assert withdraw, result.body
    page.goto(withdraw.group(0))
    shot(page, "02-withdraw-confirm")
    page.locator("main input[name=confirm]").check()
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    shot(page, "03-withdrawn")

    assert set(Place.objects.values_list("application__number", flat=True)) == {
        "AAAAAAAA",
        "CCCCCCCC",
    }
    promotion = OutboxEmail.objects.get(kind="promoted")
    assert promotion.application.number == "CCCCCCCC" and promotion.status == "sent"
    sent = [m for m in mail.outbox if m.to == [promotion.to]][-1]
    assert sent.subject == promotion.subject  # rendered and stored when it was sent
    ticket = re.search(re.escape(live_server.url) + r"/my/[^\s\"<]+/ticket/", sent.body)
    assert ticket, sent.body
    page.goto(ticket.group(0))
    assert "CCCCCCCC" in page.content() and page.locator("svg").count() >= 1
    shot(page, "04-ticket")
    assert not OutboxEmail.objects.filter(kind="promoted", application__number="BBBBBBBB")
