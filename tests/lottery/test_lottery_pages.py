"""The public lottery page, the staff console, and the result on My application."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from lottery import services
from lottery.models import LotteryRun
from registration.tokens import make_token
from tests.factories import ApplicationFactory, option
from tests.lottery import drawn

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_edition(db):  # type: ignore[no-untyped-def]
    """Registration closed an hour ago; the draw is due tomorrow."""
    return drawn.closed_edition()


def console(edition):  # type: ignore[no-untyped-def]
    return reverse("admin:lottery_console", args=[edition.code])


@pytest.fixture
def office(client):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username="office", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_lotteryrun", "change_lotteryrun", "view_edition"]
        )
    )
    client.force_login(user)
    return client


def test_the_public_page_shows_the_commitments_before_the_draw_but_not_the_secret(
    client, closed_edition
):
    ApplicationFactory(edition=closed_edition)
    run = services.lottery_freeze(edition=closed_edition, actor_label="staff")
    html = client.get(reverse("lottery:public", args=[closed_edition.code])).content.decode()
    assert run.roll_hash in html and run.commitment in html
    assert run.secret not in html
    assert client.get(reverse("lottery:audit_file", args=[closed_edition.code])).status_code == 404


def test_after_the_draw_everyone_sees_every_result_by_number_but_no_names(client, closed_edition):
    applications = ApplicationFactory.create_batch(3, edition=closed_edition)
    services.lottery_freeze(edition=closed_edition, actor_label="staff")
    services.lottery_draw(edition=closed_edition, actor_label="staff", randomness="beacon 9")
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


def test_staff_freeze_enter_randomness_preview_and_draw_from_the_console(office, closed_edition):
    ApplicationFactory.create_batch(3, edition=closed_edition)
    assert office.get(console(closed_edition)).status_code == 200
    office.post(console(closed_edition), {"action": "freeze"})
    run = LotteryRun.objects.get()
    page = office.get(console(closed_edition)).content.decode()
    assert run.roll_hash in page and run.commitment in page
    office.post(console(closed_edition), {"action": "randomness", "public_randomness": " 42 "})
    office.post(console(closed_edition), {"action": "dry_run"})
    preview = office.get(console(closed_edition))
    assert preview.context["dry_run"]["entries"] == 3
    assert LotteryRun.objects.get().state == "frozen"
    office.post(console(closed_edition), {"action": "draw"})
    run.refresh_from_db()
    assert run.state == "drawn" and run.public_randomness == "42" and run.drawn_by == "office"
    page = office.get(console(closed_edition))
    assert len(page.context["fairness"]) == 3 and page.context["page"].paginator.count == 3
    download = office.get(reverse("admin:lottery_audit", args=[closed_edition.code]))
    assert download.json()["roll_hash"] == run.roll_hash


def test_staff_without_the_lottery_permission_cannot_draw(client, closed_edition):
    user = get_user_model().objects.create(username="reception", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_lotteryrun"))
    client.force_login(user)
    ApplicationFactory(edition=closed_edition)
    assert client.post(console(closed_edition), {"action": "freeze"}).status_code == 403
    assert not LotteryRun.objects.exists()


def test_the_console_refuses_a_freeze_with_open_flags_unless_confirmed(office, closed_edition):
    from registration.models import DuplicateFlag

    a, b = ApplicationFactory.create_batch(2, edition=closed_edition)
    DuplicateFlag.objects.create(application=a, other=b, reason="name")
    office.post(console(closed_edition), {"action": "freeze"})
    assert not LotteryRun.objects.exists()
    office.post(console(closed_edition), {"action": "freeze", "confirm_duplicates": "on"})
    assert LotteryRun.objects.exists()


def test_my_application_shows_the_result_and_waitlist_number(client, closed_edition):
    venue = option(closed_edition, "tama:venue")
    venue.capacity = 2
    venue.save()
    applications = ApplicationFactory.create_batch(
        3, edition=closed_edition, adults=2, choice_2=option(closed_edition, "center:online")
    )
    services.lottery_freeze(edition=closed_edition, actor_label="staff")
    services.lottery_draw(edition=closed_edition, actor_label="staff")
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
