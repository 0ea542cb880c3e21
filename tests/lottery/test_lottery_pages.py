"""The public lottery page and the result on My application (the console: tests/office/)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from lottery import services
from lottery.models import LotteryRun
from registration import services as registration_services
from registration.models import Application
from registration.tokens import make_token
from tests.factories import ApplicationFactory, option
from tests.lottery import drawn

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_edition(db):  # type: ignore[no-untyped-def]
    """Registration closed an hour ago; the draw is due tomorrow."""
    return drawn.closed_edition()


def test_the_public_page_shows_the_commitments_before_the_draw_but_not_the_secret(
    client, closed_edition
):
    ApplicationFactory(edition=closed_edition)
    run = services.lottery_freeze(edition=closed_edition, actor=None, actor_label="staff")
    html = client.get(reverse("lottery:public", args=[closed_edition.code])).content.decode()
    assert run.roll_hash in html and run.commitment in html
    assert run.secret not in html
    assert client.get(reverse("lottery:audit_file", args=[closed_edition.code])).status_code == 404


def test_after_the_draw_everyone_sees_every_result_by_number_but_no_names(client, closed_edition):
    applications = ApplicationFactory.create_batch(3, edition=closed_edition)
    services.lottery_freeze(edition=closed_edition, actor=None, actor_label="staff")
    services.lottery_draw(
        edition=closed_edition, actor=None, actor_label="staff", randomness="beacon 9"
    )
    run = LotteryRun.objects.get()
    html = client.get(reverse("lottery:public", args=[closed_edition.code])).content.decode()
    assert run.secret in html and run.seed in html and "beacon 9" in html
    for a in applications:
        assert a.number in html and a.email not in html and a.given_name not in html
    found = client.get(
        reverse("lottery:public", args=[closed_edition.code]),
        {"number": applications[0].number.lower()},
    )
    assert found.context["found"].number == applications[0].number
    audit = client.get(reverse("lottery:audit_file", args=[closed_edition.code]))
    assert audit.status_code == 200 and audit.json()["seed"] == run.seed


def test_my_application_shows_the_result_and_waitlist_number(client, closed_edition):
    venue = option(closed_edition, "tama:venue")
    venue.capacity = 2
    venue.save()
    applications = ApplicationFactory.create_batch(
        3, edition=closed_edition, adults=2, choice_2=option(closed_edition, "center:online")
    )
    services.lottery_freeze(edition=closed_edition, actor=None, actor_label="staff")
    services.lottery_draw(edition=closed_edition, actor=None, actor_label="staff")
    pages = {
        a.number: client.get(
            reverse("registration:my_application", kwargs={"token": make_token(a.number)})
        )
        for a in applications
    }
    tama_winner = [
        n
        for n, p in pages.items()
        if p.context["result"].option and p.context["result"].option.code == "tama:venue"
    ]
    assert len(tama_winner) == 1
    others = [p for n, p in pages.items() if n not in tama_winner]
    for page in others:
        html = page.content.decode()
        assert page.context["result"].option.code == "center:online"
        assert page.context["waitlist"][0]["option"].code == "tama:venue"
        assert "number 1" in html or "number 2" in html or "1番" in html or "2番" in html


def test_the_public_page_tells_who_holds_each_place_now_and_what_changed_since_the_draw(client):
    edition = drawn.closed_edition(tama_venue=1)
    for number in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC"):
        drawn.applicant(edition, number, ["tama:venue"])
    drawn.draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC"])
    page = reverse("lottery:public", args=[edition.code])
    before = client.get(page)
    [tama] = [o for o in before.context["standing"].options if o.option.code == "tama:venue"]
    assert (tama.holders, tama.waiting) == (["AAAAAAAA"], ["BBBBBBBB", "CCCCCCCC"])
    assert "抽選後の繰り上げはまだありません。" in before.content.decode()

    registration_services.application_withdraw(
        application=Application.objects.get(number="AAAAAAAA")
    )

    after = client.get(page)
    [tama] = [o for o in after.context["standing"].options if o.option.code == "tama:venue"]
    assert (tama.holders, tama.waiting) == (["BBBBBBBB"], ["CCCCCCCC"])
    html = after.content.decode()
    assert "繰り上げ当選：" in html and "BBBBBBBB" in html
    [move] = after.context["standing"].moves
    assert (move.kind, move.number) == ("promoted", "BBBBBBBB")

    promoted = client.get(page, {"number": "bbbbbbbb"})
    text = " ".join(promoted.content.decode().split())
    assert "抽選時：抽選順位 2 — キャンセル待ち" in text
    assert "現在：" in text and "に当選中" in text
    withdrawn = client.get(page, {"number": "AAAAAAAA"}).content.decode()
    assert "現在：辞退または取消" in withdrawn
    waiting = client.get(reverse("lottery:public", args=[edition.code]) + "?number=CCCCCCCC")
    assert waiting.context["found_now"].waiting[0][1] == 1  # first in the waiting order now
